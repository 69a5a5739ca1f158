#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages weft's build, tests and benchmarks
# need, if any is missing (as root, or through sudo). --bench adds the peers
# of the actor and dataflow benchmarks (Erlang/OTP, CAF, oneTBB), gnuplot
# for bench/plot-pipeline.sh and wrk for bench/http.sh, which only
# scripts/run.sh and those scripts need.
set -euo pipefail
pkgs=(cmake ninja-build gcc clang libclang-rt-14-dev libcriterion-dev pkg-config valgrind
      golang-go gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user util-linux spin)
[ "${1:-}" = "--bench" ] && pkgs+=(erlang-nox libcaf-dev g++ libtbb-dev gnuplot-nox wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq "${missing[@]}"
