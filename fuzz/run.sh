#!/usr/bin/env bash
# run.sh <build-dir> <seconds>: fuzzes for the given time with weft-fuzz,
# which must already be built in <build-dir> (configure with clang and
# -DWEFT_BUILD_FUZZ=ON; this script builds nothing).
#
# It works in <build-dir>/fuzz-run/ (or $FUZZ_WORK): corpus/ starts as a copy
# of fuzz/corpus/ and keeps what earlier runs found; crashes/ receives the
# input of any crash, leak or timeout; fuzz.log is libFuzzer's output.
# Exits 0 when the time ran out without a finding, 1 after a finding (and
# prints where its input went and how to replay and minimize it), 2 on a
# usage error. Environment: FUZZ_TIMEOUT (s per input, 20), FUZZ_RSS_MB
# (2048), FUZZ_CHUNK (s, 240), FUZZ_JOBS (parallel fuzzers, 1), and the
# interpreter's FUZZ_AVOID and FUZZ_MAX_WORKERS (program.h, run.c).
# Long runs go in chunks of FUZZ_CHUNK seconds, each a new weft-fuzz on the
# same corpus: under ASan the fuzzer's RSS grows by ~10 KB a run (shadow of
# process stacks mapped at fresh addresses; a plain build stays flat), which
# would otherwise reach the RSS limit after about 8 minutes.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 <build-dir> <seconds>" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$build/fuzz/weft-fuzz
if [ ! -x "$fuzzer" ]; then
  echo "run.sh: no $fuzzer: configure $build with clang and -DWEFT_BUILD_FUZZ=ON, then build it" >&2
  exit 2
fi
work=${FUZZ_WORK:-$build/fuzz-run}
mkdir -p "$work/corpus" "$work/crashes"
cp -n "$here"/corpus/* "$work/corpus/"
jobs=${FUZZ_JOBS:-1}

before=$(ls "$work/crashes" | wc -l)
rc=0
left=$seconds
: >"$work/fuzz.log"
while [ "$left" -gt 0 ] && [ $rc -eq 0 ]; do
  chunk=$(( left < ${FUZZ_CHUNK:-240} ? left : ${FUZZ_CHUNK:-240} ))
  left=$(( left - chunk ))
  # -max_len: a header and 8 bodies of 64 ops of 3 bytes fit in 1600 bytes.
  "$fuzzer" "$work/corpus" \
    -max_total_time="$chunk" -timeout="${FUZZ_TIMEOUT:-20}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -max_len=1600 -artifact_prefix="$work/crashes/" -print_final_stats=1 \
    $([ "$jobs" -gt 1 ] && echo "-jobs=$jobs -workers=$jobs") \
    >>"$work/fuzz.log" 2>&1 || rc=$?
done
grep -E '^(#[0-9]+.*(DONE|pulse)|stat::)' "$work/fuzz.log" | tail -8 || true
after=$(ls "$work/crashes" | wc -l)
if [ $rc -eq 0 ] && [ "$after" -eq "$before" ]; then
  echo "run.sh: ${seconds}s of fuzzing, no finding; corpus: $(ls "$work/corpus" | wc -l) inputs in $work/corpus"
  exit 0
fi
echo "run.sh: weft-fuzz found a bug (exit $rc). The end of $work/fuzz.log:"
grep -v '^    trace' "$work/fuzz.log" | tail -40
for f in $(ls -t "$work/crashes" | head -n $((after - before > 0 ? after - before : 1))); do
  echo "run.sh: the input is $work/crashes/$f"
done
cat <<EOF
run.sh: replay it:   $build/fuzz/weft-fuzz-replay -v <input>
        minimize it: $fuzzer -minimize_crash=1 -runs=20000 -exact_artifact_path=<out> <input>
        then save it as fuzz/regressions/<what-it-found> (see docs/testing.md).
EOF
exit 1
