#!/usr/bin/env bash
# bench/run.sh: runs weft-bench and the peer programs side by side, each
# benchmark R times (default 3) under taskset, and prints the medians as a
# Markdown table. Usage: bench/run.sh [--runs R] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
build=_build/release
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--runs R] [--build DIR]" >&2; exit 2 ;;
  esac
done
weft=$build/bench/weft-bench
gopeer=$build/peers/weftpeer-go
[ -x "$gopeer" ] || bash bench/peers/go/build.sh "$gopeer" >/dev/null

# "name workers" per row; BENCH.md fixes which worker counts each one runs at.
cases=("switch 1" "spawn 1" "spawn 2" "pingpong 1" "pingpong 2" "ring 1" "ring 2"
       "skynet 1" "skynet 2" "fanin 1" "fanin 2" "memory 1" "idle 2")

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

measure() { # program bench workers -> median of the last column
  local prog=$1 bench=$2 w=$3 cpus
  cpus=$(seq -s, 0 $((w - 1)))
  for _ in $(seq "$runs"); do
    taskset -c "$cpus" "$prog" "$bench" --workers "$w" | tail -n 1 | awk '{print $NF}'
  done | median
}

echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r); medians of $runs runs"
echo
echo "| bench | workers | weft | go | go / weft |"
echo "|---|---|---|---|---|"
for c in "${cases[@]}"; do
  read -r name w <<<"$c"
  wv=$(measure "$weft" "$name" "$w")
  gv=$(measure "$gopeer" "$name" "$w")
  ratio=$(awk -v a="$wv" -v b="$gv" 'BEGIN { if (a > 0) printf "%.1fx", b / a; else print "-" }')
  echo "| $name | $w | $wv | $gv | $ratio |"
done
echo
echo "units: switch, spawn, pingpong (round trip), ring (hop), skynet (leaf), fanin (message): ns per op;"
echo "memory: bytes per blocked process; idle: CPU % of one core"
