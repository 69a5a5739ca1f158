#!/usr/bin/env bash
# bench/run.sh: runs weft-bench and the peer programs side by side, each
# benchmark R times (default 3) under taskset, and prints the medians as
# Markdown tables (core, actors, dataflow, word frequency, HTTP).
# Usage: bench/run.sh [--runs R] [--build DIR] [--only TABLES]
# TABLES is a comma-separated list of core, actors, dataflow, wordfreq, http
# (default: all of them). The dataflow table runs pipeline (weft, Go, oneTBB) and the
# wordfreq table the example examples/example-wordfreq (at 1 and 2 workers and
# sequentially); both alternate the systems run by run, so that drift on a
# shared machine hits them alike. The http tables come from bench/http.sh (the
# HTTP hello example and Go's net/http under wrk with 10,000 connections, and
# their memory per idle connection; about 3 minutes at 3 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
build=_build/release
only=core,actors,dataflow,wordfreq,http
usage() { echo "usage: bench/run.sh [--runs R] [--build DIR] [--only core,actors,dataflow,wordfreq,http]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    *) usage ;;
  esac
done
for t in ${only//,/ }; do
  case $t in core|actors|dataflow|wordfreq|http) ;; *) usage ;; esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
weft=$build/bench/weft-bench
gopeer=$build/peers/weftpeer-go
# Rebuilt when missing or older than one of its sources (a new benchmark needs it).
if { want core || want dataflow; } &&
   { [ ! -x "$gopeer" ] || [ -n "$(find bench/peers/go -name '*.go' -newer "$gopeer" | head -n 1)" ]; }; then
  bash bench/peers/go/build.sh "$gopeer" >/dev/null
fi
# The actor and dataflow peers are built, for the tables asked for, when missing
# or older than their source; one that does not build is left out (its cells
# show "-"), the run goes on.
erlpeer=$build/peers/weftpeer-erlang
cafpeer=$build/peers/weftpeer-caf
build_peer() { # system output source
  if [ ! -x "$2" ] || [ "$3" -nt "$2" ]; then
    bash "bench/peers/$1/build.sh" "$2" >/dev/null || echo "run.sh: the $1 peer did not build" >&2
  fi
}
tbbpeer=$build/peers/weftpeer-tbb
if want actors; then
  build_peer erlang "$erlpeer" bench/peers/erlang/weftpeer.erl
  build_peer caf "$cafpeer" bench/peers/caf/weftpeer.cpp
fi
want dataflow && build_peer tbb "$tbbpeer" bench/peers/tbb/pipeline.cpp
wordfreq=$build/examples/example-wordfreq

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

# measure_alternating: runs the commands of the arrays alt_cpus (taskset CPU list), alt_cmd
# (the command line, split at spaces) and alt_key (what the first fields of the last line
# must be, e.g. "pipeline go 2") $runs times each, one after the other in turn, and sets
# alt_med[i] to the median of the last column of command i ("-" if it is missing, fails or
# prints another line: it is not run again) and alt_words[i] to the 4th field of its last
# line (N, or the number of words).
measure_alternating() {
  local n=${#alt_cmd[@]} i r out line err prog
  local -a vals failed
  alt_med=() alt_words=()
  err=$(mktemp)
  for ((i = 0; i < n; i++)); do
    vals[i]='' failed[i]=0 alt_words[i]=-
    read -r prog _ <<<"${alt_cmd[i]}"
    [ -x "$prog" ] || { echo "run.sh: $prog is missing" >&2; failed[i]=1; }
  done
  for ((r = 0; r < runs; r++)); do
    for ((i = 0; i < n; i++)); do
      [ "${failed[i]}" -eq 0 ] || continue
      # shellcheck disable=SC2086 # alt_cmd[i] is a command line to split
      if ! out=$(taskset -c "${alt_cpus[i]}" ${alt_cmd[i]} 2>"$err"); then
        echo "run.sh: '${alt_cmd[i]}' failed: $(tail -n 3 "$err")" >&2
        failed[i]=1; continue
      fi
      line=$(tail -n 1 <<<"$out")
      if ! awk -v k="${alt_key[i]}" 'NF == 6 && index($0 " ", k " ") == 1 { ok = 1 } END { exit !ok }' <<<"$line"; then
        echo "run.sh: '${alt_cmd[i]}' printed '$line'" >&2
        failed[i]=1; continue
      fi
      vals[i]+="$(awk '{print $NF}' <<<"$line") "
      alt_words[i]=$(awk '{print $4}' <<<"$line")
    done
  done
  rm -f "$err"
  for ((i = 0; i < n; i++)); do
    if [ "${failed[i]}" -eq 0 ]; then
      alt_med[i]=$(tr ' ' '\n' <<<"${vals[i]}" | grep . | median)
    else
      alt_med[i]=-
    fi
  done
}

ratio2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.2fx", b / a; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.1fx", b / a; else print "-" }'; }

echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r); medians of $runs runs"
if want core; then
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
fi
if want actors; then
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
fi

if want dataflow; then
echo
echo "| bench | workers | weft | go | tbb | go / weft | tbb / weft |"
echo "|---|---|---|---|---|---|---|"
for w in 1 2; do
  cpus=$(seq -s, 0 $((w - 1)))
  alt_cpus=("$cpus" "$cpus" "$cpus")
  alt_cmd=("$weft pipeline --workers $w" "$gopeer pipeline --workers $w" "$tbbpeer pipeline --workers $w")
  alt_key=("pipeline weft $w" "pipeline go $w" "pipeline tbb $w")
  measure_alternating
  echo "| pipeline | $w | ${alt_med[0]} | ${alt_med[1]} | ${alt_med[2]} | $(ratio "${alt_med[0]}" "${alt_med[1]}") | $(ratio "${alt_med[0]}" "${alt_med[2]}") |"
done
echo
echo "units: ns per item through 4 stages (source, *3, +1, sink) joined by capacity-64 edges, N 10,000,000;"
echo "weft: a weft_graph; go: goroutines and chan int64; tbb: oneTBB flow graph (bench/peers/tbb/README.md)"
fi

if want wordfreq; then
echo
if [ ! -x "$wordfreq" ]; then
  echo "wordfreq: $wordfreq is not built, no word-frequency table"
else
  alt_cpus=(0 0-1 0)
  alt_cmd=("$wordfreq --workers 1" "$wordfreq --workers 2" "$wordfreq --workers 1 --sequential")
  alt_key=("wordfreq weft" "wordfreq weft" "wordfreq sequential")
  measure_alternating
  echo "| wordfreq | workers | words | ns per word | M words/s |"
  echo "|---|---|---|---|---|"
  labels=(weft weft sequential)
  workers=(1 2 1)
  for i in 0 1 2; do
    mws=$(awk -v v="${alt_med[i]}" 'BEGIN { if (v != "-" && v > 0) printf "%.1f", 1000 / v; else print "-" }')
    echo "| ${labels[i]} | ${workers[i]} | ${alt_words[i]} | ${alt_med[i]} | $mws |"
  done
  echo
  echo "2-worker / 1-worker throughput: $(ratio2 "${alt_med[1]}" "${alt_med[0]}") (goal >= 1.8x);" \
       "2-worker / sequential: $(ratio2 "${alt_med[1]}" "${alt_med[2]}"); 1-worker / sequential: $(ratio2 "${alt_med[0]}" "${alt_med[2]}")"
fi
fi

# The HTTP tables (weft-http-hello and Go's net/http under wrk, idle connection
# memory): bench/http.sh, which pins the servers and alternates them itself.
if want http; then
  bash bench/http.sh --runs "$runs" --build "$build" --no-header
fi
