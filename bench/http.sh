#!/usr/bin/env bash
# bench/http.sh: the HTTP hello benchmark (issue 6). weft's examples/http_hello.c
# (weft-http-hello) and Go's net/http (bench/peers/go/http.go, weftpeer-go-http)
# answer "Hello, World!\n" to wrk on loopback, with 10,000 keep-alive
# connections, at 1 and 2 workers; a second table gives each server's memory
# per idle connection (bench/conns.c, weft-bench-conns). Prints Markdown tables
# of medians of R runs.
#
# Usage: bench/http.sh [--runs R] [--build DIR] [--conns N] [--duration S]
#                      [--warmup S] [--weft PATH] [--retries N] [--no-header] [--verbose]
#
# Each run starts a fresh server pinned with taskset to CPUs 0..W-1 (W = its
# workers: --workers W for weft, GOMAXPROCS for Go), on a free port below the
# kernel's ephemeral range, waits until it accepts, runs wrk once for --warmup
# seconds (default 2) and once for --duration seconds (default 8, measured),
# then kills the server (also on error or interrupt). wrk is not pinned: it
# runs on all CPUs, with 2 threads, alike for both servers (at 1 worker it
# shares CPU 0 with the server). The runs alternate weft and Go, run by run.
# wrk gets --timeout 10s (its default, 2 s, drops slower responses from the
# latency histogram and counts them as timeouts only). Over each measured run the
# CPU time taken by other processes is summed (from /proc/*/stat): a run during
# which they took more than 5% of the CPUs is done again (--retries times at
# most, default 2), and a note says if one such run is left in the medians: the
# machine was not quiet, numbers from it are not to be recorded (--verbose
# prints every run).
#
# Idle memory: at 2 workers a fresh server serves one warm-up connection, then
# weft-bench-conns opens N connections, each makes one request and stays open
# and idle; (VmRSS after - VmRSS before) / N is the server's memory per idle
# connection; then all are closed and the server must release them.
#
# Connections: each side (wrk or weft-bench-conns, and the server) needs about
# N descriptors. The soft RLIMIT_NOFILE is raised to the hard limit (any user
# may); when the hard limit (or the ephemeral port range) is too small for N,
# the largest N that fits is used and the tables say so.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
build=_build/release
conns=10000
duration=8
warmup=2
weft=
header=1
verbose=0
retries=2
busy_pct=5
usage() {
  echo "usage: bench/http.sh [--runs R] [--build DIR] [--conns N] [--duration S] [--warmup S] [--weft PATH] [--retries N] [--no-header] [--verbose]" >&2
  exit 2
}
posint() { [[ $1 =~ ^[1-9][0-9]*$ ]] || usage; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || usage; posint "$2"; runs=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --conns) [ $# -ge 2 ] || usage; posint "$2"; conns=$2; shift 2 ;;
    --duration) [ $# -ge 2 ] || usage; posint "$2"; duration=$2; shift 2 ;;
    --warmup) [ $# -ge 2 ] || usage; [[ $2 =~ ^[0-9]+$ ]] || usage; warmup=$2; shift 2 ;;
    --weft) [ $# -ge 2 ] || usage; weft=$2; shift 2 ;;
    --no-header) header=0; shift ;;
    --verbose) verbose=1; shift ;;
    --retries) [ $# -ge 2 ] || usage; [[ $2 =~ ^[0-9]+$ ]] || usage; retries=$2; shift 2 ;;
    *) usage ;;
  esac
done
workers_list=(1 2)
mem_workers=2
wrk_threads=2

[ "$header" -eq 0 ] ||
  echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r); medians of $runs runs"
echo
if ! command -v wrk >/dev/null; then
  echo "http: wrk is not installed (Debian package wrk: scripts/deps.sh --bench), no HTTP table"
  exit 0
fi

# The programs. weft-http-hello is built by the default build; a missing one
# leaves its cells "-".
if [ -z "$weft" ]; then
  for p in "$build/examples/weft-http-hello" "$build/weft-http-hello"; do
    [ -x "$p" ] && { weft=$p; break; }
  done
fi
if [ -z "$weft" ] || [ ! -x "$weft" ]; then
  echo "http.sh: weft-http-hello is not built in $build (cells show \"-\")" >&2
  weft=
fi
gopeer=$build/peers/weftpeer-go
gohttp=$gopeer-http
if [ ! -x "$gohttp" ] || [ -n "$(find bench/peers/go -name '*.go' -newer "$gohttp" | head -n 1)" ]; then
  bash bench/peers/go/build.sh "$gopeer" >/dev/null || echo "http.sh: the Go peer did not build" >&2
fi
[ -x "$gohttp" ] || gohttp=

tmp=$(mktemp -d)
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

conns_tool=$build/bench/weft-bench-conns
if [ ! -x "$conns_tool" ] || [ bench/conns.c -nt "$conns_tool" ]; then
  conns_tool=$tmp/weft-bench-conns
  cc -std=c11 -O2 -Wall -Wextra -o "$conns_tool" bench/conns.c
fi

# Connections that fit: each process needs N + 64 descriptors, the client one
# ephemeral port per connection.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$((1 << 30))
ulimit -n "$hard" 2>/dev/null || true
soft=$(ulimit -n)
[ "$soft" = unlimited ] && soft=$((1 << 30))
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
fit=$((soft - 64))
[ $((port_hi - port_lo + 1 - 100)) -lt "$fit" ] && fit=$((port_hi - port_lo + 1 - 100))
limit_note=
if [ "$fit" -lt "$conns" ]; then
  fit=$((fit / 100 * 100))
  [ "$fit" -ge 100 ] || { echo "http: the descriptor limit ($soft) leaves room for too few connections, no HTTP table"; exit 0; }
  limit_note="only $fit of the $conns connections asked for fit: ulimit -Hn is $hard (each side needs N + 64 descriptors), ephemeral ports $port_lo-$port_hi"
  echo "http.sh: $limit_note" >&2
  conns=$fit
fi

# A free TCP port outside the ephemeral range (so that no client connection
# can hold it): none of /proc/net/tcp{,6} mentions it.
free_port() {
  local lo=10000 hi p hex
  if [ "$port_lo" -gt 11000 ]; then hi=$((port_lo - 1)); else lo=$((port_hi + 1)); hi=65535; fi
  [ "$lo" -lt "$hi" ] || { lo=10000; hi=65535; }
  for _ in $(seq 100); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    printf -v hex ':%04X ' "$p"
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q "$hex" || { echo "$p"; return; }
  done
  echo "http.sh: no free port found" >&2; return 1
}

# start_server system workers: starts it pinned on CPUs 0..W-1, sets server_pid
# and port, and waits (10 s at most) until it accepts; fails if it does not.
start_server() {
  local sys=$1 w=$2 prog cpus
  if [ "$sys" = weft ]; then prog=$weft; else prog=$gohttp; fi
  cpus=$(seq -s, 0 $((w - 1)))
  port=$(free_port)
  taskset -c "$cpus" "$prog" --port "$port" --workers "$w" </dev/null >"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "http.sh: '$prog --port $port --workers $w' exited: $(tail -n 3 "$tmp/server.log")" >&2
      wait "$server_pid" 2>/dev/null || true; server_pid=; return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "http.sh: '$prog --port $port --workers $w' does not accept connections after 10 s" >&2
  stop_server; return 1
}

# run_wrk seconds: runs wrk against the server and prints
# "<req/s> <p99 ms> <connect> <read> <write> <timeout> <non-2xx>" (nothing if the output is unexpected).
# The warm-up (run_wrk S quiet) prints nothing: a short one may end before a response came.
run_wrk() {
  wrk -t"$wrk_threads" -c"$conns" -d"$1"s --timeout 10s --latency "http://127.0.0.1:$port/" >"$tmp/wrk.out" 2>&1 || true
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
      if (v ~ /h$/) return substr(v, 1, length(v) - 1) * 3600000
      return -1
    }
    $1 == "Requests/sec:" { rps = $2 }
    $1 == "99%" { p99 = ms($2) }
    /Socket errors:/ { c = $4 + 0; r = $6 + 0; w = $8 + 0; t = $10 + 0 }
    /Non-2xx or 3xx responses:/ { n = $NF }
    / requests in / { reqs = $1 }
    END {
      if (rps == "" || p99 == "" || p99 < 0 || reqs + 0 == 0) exit 1
      printf "%s %.2f %d %d %d %d %d\n", rps, p99, c, r, w, t, n
    }' "$tmp/wrk.out" || [ "${2:-}" = quiet ] || echo "http.sh: unexpected wrk output: $(tail -n 5 "$tmp/wrk.out" | tr '\n' ' ')" >&2
}

# cpu_mark: sets cm_t (the time, in µs), cm_srv (the server's CPU time), cm_all (the CPU time, in clock ticks, of all
# processes: each one's own and its waited-for children's, so that the time of one that
# ended and was waited for stays counted) and cm_ours (this shell's with its children's,
# wrk's among them, plus the server's and the kernel's ksoftirqd threads', which carry
# part of the loopback traffic). Over a measured run, all - ours is what other
# processes took. (/proc/stat is not used: on some VMs its idle time does not advance.)
hz=$(getconf CLK_TCK)
ksoftirqd=$(grep -l '^ksoftirqd/' /proc/[0-9]*/comm 2>/dev/null | sed 's|^/proc/||; s|/comm$||' | tr '\n' ' ')
cpu_mark() {
  cm_t=${EPOCHREALTIME/[.,]/}
  # shellcheck disable=SC2002 # cat goes on past a process that ended meanwhile; awk may not
  read -r cm_all cm_ours cm_srv < <(cat /proc/[0-9]*/stat 2>/dev/null |
    awk -v srv="$server_pid" -v me="$$" -v ks="$ksoftirqd" '
      BEGIN { n = split(ks, k, " "); for (i = 1; i <= n; i++) kp[k[i]] = 1 }
      { pid = $1; line = $0; sub(/.*\) /, "", line); split(line, f, " ")
        own = f[12] + f[13]; cum = own + f[14] + f[15]; all += cum
        if (pid == me) ours += cum; else if (pid == srv || pid in kp) ours += own
        if (pid == srv) server = own }
      END { print all + 0, ours + 0, server + 0 }')
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "-"; else print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# rates[sys,w] and p99s[sys,w]: the values of the runs; errs[sys,w]: "c r w t n" summed over
# the runs; mems[sys]: bytes per idle connection, one value a run.
declare -A rates p99s errs mems failed
for sys in weft go; do
  for w in "${workers_list[@]}"; do rates[$sys,$w]="" p99s[$sys,$w]="" errs[$sys,$w]="0 0 0 0 0"; done
  mems[$sys]=
done
[ -n "$weft" ] || failed[weft]=1
[ -n "$gohttp" ] || failed[go]=1

# measure_run system workers: one measured run on a fresh server; sets out (run_wrk's line)
# and other (the % of the CPUs that other processes took meanwhile); fails if the server
# does not start, dies or wrk's output is unexpected.
measure_run() {
  local sys=$1 w=$2 b_t b_all b_ours b_srv
  start_server "$sys" "$w" || return 1
  [ "$warmup" -eq 0 ] || run_wrk "$warmup" quiet >/dev/null
  cpu_mark
  read -r b_t b_all b_ours b_srv <<<"$cm_t $cm_all $cm_ours $cm_srv"
  out=$(run_wrk "$duration")
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "http.sh: the $sys server died under wrk: $(tail -n 3 "$tmp/server.log")" >&2
    wait "$server_pid" 2>/dev/null || true; server_pid=; return 1
  fi
  cpu_mark
  stop_server
  other=$(awk -v o=$((cm_all - b_all - (cm_ours - b_ours))) -v us=$((cm_t - b_t)) -v hz="$hz" -v n="$(nproc)" \
              'BEGIN { printf "%.0f", (us > 0 && o > 0) ? 100 * o / hz / (us / 1e6 * n) : 0 }')
  [ "$verbose" -eq 0 ] || echo "http.sh: CPU ticks over $(((cm_t - b_t) / 1000)) ms: all processes $((cm_all - b_all)), ours $((cm_ours - b_ours)) (the server $((cm_srv - b_srv)))" >&2
  [ -n "$out" ]
}

max_other=0 repeated=0
for ((r = 0; r < runs; r++)); do
  for w in "${workers_list[@]}"; do
    for sys in weft go; do
      [ -z "${failed[$sys]:-}" ] || continue
      # A run during which other processes took more than $busy_pct% of the CPUs is
      # repeated, --retries times at most.
      for ((a = 0; ; a++)); do
        measure_run "$sys" "$w" || { failed[$sys]=1; break; }
        { [ "$other" -gt "$busy_pct" ] && [ "$a" -lt "$retries" ]; } || break
        echo "http.sh: run $((r + 1)) $sys $w workers: other processes took $other% of the CPUs, once more" >&2
        repeated=$((repeated + 1))
      done
      [ -z "${failed[$sys]:-}" ] || continue
      [ "$other" -le "$max_other" ] || max_other=$other
      read -r rps p99 ec er ew et en <<<"$out"
      [ "$verbose" -eq 0 ] || echo "http.sh: run $((r + 1)) $sys $w workers: $rps req/s, p99 $p99 ms, errors c/r/w/t/non-2xx $ec/$er/$ew/$et/$en, other processes $other% of the CPUs" >&2
      rates[$sys,$w]+="$rps " p99s[$sys,$w]+="$p99 "
      read -r c0 r0 w0 t0 n0 <<<"${errs[$sys,$w]}"
      errs[$sys,$w]="$((c0 + ec)) $((r0 + er)) $((w0 + ew)) $((t0 + et)) $((n0 + en))"
    done
  done
  for sys in weft go; do
    [ -z "${failed[$sys]:-}" ] || continue
    start_server "$sys" "$mem_workers" || { failed[$sys]=1; continue; }
    if out=$("$conns_tool" --port "$port" --n "$conns" --pid "$server_pid" 2>"$tmp/conns.err"); then
      mems[$sys]+="$(awk '$1 == "conns" { print $5 }' <<<"$out") "
      [ "$verbose" -eq 0 ] || echo "http.sh: run $((r + 1)) $sys idle: $out; $(tr '\n' ' ' <"$tmp/conns.err")" >&2
    else
      echo "http.sh: idle connections on the $sys server: $(tail -n 3 "$tmp/conns.err")" >&2
    fi
    stop_server
  done
done

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
fmt_errs() { # "c r w t n" -> "0" or "connect 12, timeout 3"
  local c r w t n s=
  read -r c r w t n <<<"$1"
  [ "$c" -eq 0 ] || s+="connect $c, "
  [ "$r" -eq 0 ] || s+="read $r, "
  [ "$w" -eq 0 ] || s+="write $w, "
  [ "$t" -eq 0 ] || s+="timeout $t, "
  [ "$n" -eq 0 ] || s+="non-2xx $n, "
  if [ -n "$s" ]; then echo "${s%, }"; else echo 0; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2fx", a / b; else print "-" }'; }
ms1() { awk -v v="$1" 'BEGIN { if (v == "-") print v; else printf "%.1f", v }'; }
thousands() { awk -v v="$1" 'BEGIN { if (v == "-") { print v; exit } s = sprintf("%.0f", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s }'; }

echo "| http hello | workers | conns | weft req/s | go req/s | weft / go | weft p99 ms | go p99 ms | weft errors | go errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in "${workers_list[@]}"; do
  wr=$(med "${rates[weft,$w]}") gr=$(med "${rates[go,$w]}")
  wp=$(med "${p99s[weft,$w]}") gp=$(med "${p99s[go,$w]}")
  we=- ge=-
  [ "$wr" = - ] || we=$(fmt_errs "${errs[weft,$w]}")
  [ "$gr" = - ] || ge=$(fmt_errs "${errs[go,$w]}")
  echo "| wrk | $w | $conns | $(thousands "$wr") | $(thousands "$gr") | $(ratio "$wr" "$gr") | $(ms1 "$wp") | $(ms1 "$gp") | $we | $ge |"
  [ "$w" -ne 2 ] || { goal_rate=$(ratio "$wr" "$gr"); goal_p99="$(ms1 "$wp") vs $(ms1 "$gp")"; }
done
wm=$(med "${mems[weft]}") gm=$(med "${mems[go]}")
echo
echo "| idle keep-alive connections | workers | conns | weft B/conn | go B/conn | go / weft |"
echo "|---|---|---|---|---|---|"
echo "| server VmRSS growth / conns | $mem_workers | $conns | $(thousands "$wm") | $(thousands "$gm") | $(ratio "$gm" "$wm") |"
echo
echo "wrk -t$wrk_threads -c$conns -d${duration}s --timeout 10s --latency (after a ${warmup}s warm-up on the same server), a fresh"
echo "server per run pinned to CPUs 0..W-1, wrk unpinned; errors: wrk's socket errors and non-2xx responses summed over"
echo "the $runs runs. Goal at 2 workers: weft / go >= 1.50x (got ${goal_rate:--}), weft p99 <= go p99 (ms: ${goal_p99:--});"
echo "<= 8192 B per idle connection (weft: $(thousands "$wm"))."
[ -z "$limit_note" ] || echo "NOTE: $limit_note."
note="$repeated measured runs were repeated because other processes took more than $busy_pct% of the CPUs"
if [ "$max_other" -gt "$busy_pct" ]; then
  echo "NOTE: other processes took up to $max_other% of the CPUs during a measured run: the machine was not quiet ($note)."
else
  echo "Other processes took at most $max_other% of the CPUs during a measured run ($note)."
fi
