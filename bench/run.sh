#!/usr/bin/env bash
# bench/run.sh: runs weft-bench and the peer programs side by side, each
# benchmark R times (default 3) under taskset, and prints the medians as
# Markdown tables (core, then actors). Usage: bench/run.sh [--runs R] [--build DIR]
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
# The actor peers are built when missing or older than their source; one that
# does not build is left out (its cells show "-"), the run goes on.
erlpeer=$build/peers/weftpeer-erlang
cafpeer=$build/peers/weftpeer-caf
build_peer() { # system output source
  if [ ! -x "$2" ] || [ "$3" -nt "$2" ]; then
    bash "bench/peers/$1/build.sh" "$2" >/dev/null || echo "run.sh: the $1 peer did not build" >&2
  fi
}
build_peer erlang "$erlpeer" bench/peers/erlang/weftpeer.erl
build_peer caf "$cafpeer" bench/peers/caf/weftpeer.cpp

# "name workers" per row; BENCH.md fixes which worker counts each one runs at.
cases=("switch 1" "spawn 1" "spawn 2" "pingpong 1" "pingpong 2" "ring 1" "ring 2"
       "skynet 1" "skynet 2" "fanin 1" "fanin 2" "memory 1" "idle 2")
actor_cases=("mailbox 1" "mailbox 2" "actor-pingpong 1" "actor-pingpong 2" "actor-spawn 1"
             "actor-spawn 2" "actor-memory 1")

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

measure() { # program bench workers -> median of the last column
  local prog=$1 bench=$2 w=$3 cpus
  cpus=$(seq -s, 0 $((w - 1)))
  for _ in $(seq "$runs"); do
    taskset -c "$cpus" "$prog" "$bench" --workers "$w" | tail -n 1 | awk '{print $NF}'
  done | median
}

# measure_tolerant program bench workers -> "<median value> <median peak RSS in MB>"; the
# RSS is "-" unless the program prints "peak_rss_bytes <n>" on stderr (actor-spawn), and
# both are "-" when the program is missing, fails or prints an unexpected line.
measure_tolerant() {
  local prog=$1 bench=$2 w=$3 cpus out err line vals=() rss=() r
  if [ ! -x "$prog" ]; then echo "- -"; return; fi
  cpus=$(seq -s, 0 $((w - 1)))
  err=$(mktemp)
  for _ in $(seq "$runs"); do
    if ! out=$(taskset -c "$cpus" "$prog" "$bench" --workers "$w" 2>"$err"); then
      echo "run.sh: '$prog $bench --workers $w' failed: $(tail -n 3 "$err")" >&2
      rm -f "$err"; echo "- -"; return
    fi
    line=$(tail -n 1 <<<"$out")
    if ! awk -v b="$bench" -v w="$w" 'NF == 6 && $1 == b && $3 == w { ok = 1 } END { exit !ok }' <<<"$line"; then
      echo "run.sh: '$prog $bench --workers $w' printed '$line'" >&2
      rm -f "$err"; echo "- -"; return
    fi
    vals+=("$(awk '{print $NF}' <<<"$line")")
    r=$(awk '$1 == "peak_rss_bytes" { v = $2 } END { print v }' "$err")
    [ -z "$r" ] || rss+=("$r")
  done
  rm -f "$err"
  local med mr=-
  med=$(printf '%s\n' "${vals[@]}" | median)
  if [ ${#rss[@]} -eq "$runs" ]; then
    mr=$(printf '%s\n' "${rss[@]}" | median | awk '{ printf "%.0f", $1 / 1048576 }')
  fi
  echo "$med $mr"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.1fx", b / a; else print "-" }'; }

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
echo
echo "| bench | workers | weft | erlang | caf | erlang / weft | caf / weft | weft MB | erlang MB | caf MB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in "${actor_cases[@]}"; do
  read -r name w <<<"$c"
  read -r wv wm <<<"$(measure_tolerant "$weft" "$name" "$w")"
  read -r ev em <<<"$(measure_tolerant "$erlpeer" "$name" "$w")"
  read -r cv cm <<<"$(measure_tolerant "$cafpeer" "$name" "$w")"
  [ "$name" = actor-spawn ] || wm= em= cm=
  echo "| $name | $w | $wv | $ev | $cv | $(ratio "$wv" "$ev") | $(ratio "$wv" "$cv") | $wm | $em | $cm |"
done
echo
echo "units: mailbox (message), actor-pingpong (round trip), actor-spawn (actor, depth 20: 2^20-1"
echo "actors): ns per op; actor-memory: bytes per idle actor; MB: peak RSS (VmHWM) of actor-spawn"
