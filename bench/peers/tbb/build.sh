#!/usr/bin/env bash
# Build the oneTBB peer benchmark program weftpeer-tbb (C++17, oneTBB 2021 from Debian's libtbb-dev).
#
#   bench/peers/tbb/build.sh [OUTPUT]     # default OUTPUT: bench/peers/tbb/weftpeer-tbb
#
# A relative OUTPUT is taken relative to the caller's directory. CXX overrides the compiler (g++).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/weftpeer-tbb}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;   # relative to the caller's directory, not to $here
esac

cxx="${CXX:-g++}"
command -v "$cxx" >/dev/null || { echo "build.sh: '$cxx' not found (Debian package g++)" >&2; exit 1; }
[ -f /usr/include/oneapi/tbb/flow_graph.h ] || { echo "build.sh: oneTBB headers not found (Debian package libtbb-dev)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
"$cxx" -std=c++17 -O2 -Wall -Wextra -o "$out" "$here/pipeline.cpp" -ltbb -pthread
echo "built $out"
