#!/usr/bin/env bash
# check.sh: verifies the Promela models of models/ exhaustively with spin.
#
# Each .pml names its runs in its header comment, one per line:
#     * CHECK: pass|fail [np] [-DNAME[=VALUE]...]
# pass: the exhaustive search must complete with 0 errors; fail: it must
# report at least one error (a BUG_ variant that the model has to catch).
# np: a non-progress-cycle search (pan -l) instead of the safety search
# (assertions and invalid end states). Every file must have a plain
# "CHECK: pass" line: with no flag, every model verifies.
#
# Usage: models/check.sh [file.pml...]   (default: every models/*.pml)
# Prints one line per run and a summary. Exit 0 if every run went as
# expected, 1 if not, 77 (skip) if spin or a C compiler is missing.
# Runs JOBS searches at once (default: the number of CPUs); builds the
# verifiers with WEFT_MODELS_CC (default: gcc, cc or clang, for the host,
# also when the project is cross-built) at WEFT_MODELS_OPT (default -O0).
# Works in a temporary directory; nothing is written to the source tree.
set -u

here=$(cd "$(dirname "$0")" && pwd)

if ! command -v spin >/dev/null 2>&1; then
    echo "spin-models: SKIPPED: spin is not installed (Debian package spin; scripts/deps.sh installs it)"
    exit 77
fi
cc=${WEFT_MODELS_CC:-}
if [ -z "$cc" ]; then
    for c in gcc cc clang; do
        if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
    done
fi
if [ -z "$cc" ]; then
    echo "spin-models: SKIPPED: no C compiler to build spin's verifier"
    exit 77
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=("$here"/*.pml)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-models.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Bounds for one run: every model needs far less (see README.md).
memlim_mb=2048
depth=1000000
run_timeout=300
# -O0: compiling pan.c at -O1 takes longer than almost every search here
# (1.4 s against 0.4 s for park.pml; its searches run 1.7 times slower).
optlevel=${WEFT_MODELS_OPT:--O0}

jobs=${JOBS:-$(nproc 2>/dev/null || echo 1)}
runs=0
bad=0
start_all=$(date +%s)

# run_one N FILE EXPECT MODE FLAGS...: run N's line goes to $tmp/runN/result
run_one() {
    local n=$1 pml=$2 expect=$3 mode=$4
    shift 4
    local name dir cdef panarg out verdict detail
    name=$(basename "$pml")
    dir="$tmp/run$n"
    mkdir -p "$dir"
    cp "$pml" "$dir/"
    if [ "$mode" = np ]; then
        cdef=-DNP
        panarg=-l
    else
        cdef=-DSAFETY
        panarg=
    fi
    local t0 t1
    t0=$(date +%s.%N)
    if ! (cd "$dir" && spin -a "$@" "$name" >spin.out 2>&1); then
        verdict=FAIL
        detail="spin -a failed: $(grep -m1 -i error "$dir/spin.out")"
    elif ! (cd "$dir" && "$cc" $optlevel -w $cdef -DMEMLIM=$memlim_mb -o pan pan.c >cc.out 2>&1); then
        verdict=FAIL
        detail="compiling pan failed: $(head -c 200 "$dir/cc.out")"
    else
        (cd "$dir" && timeout $run_timeout ./pan $panarg -m$depth >pan.out 2>&1)
        local rc=$?
        t1=$(date +%s.%N)
        out="$dir/pan.out"
        local errors states incomplete first secs search
        errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
        states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -1)
        first=$(grep -m1 '^pan:1: ' "$out" | sed 's/^pan:1: //; s/ (at depth [0-9]*)//')
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        search=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$out" | tail -1)
        secs="search ${search:-?}s, with build ${secs}s"
        incomplete=
        if grep -q -e 'max search depth too small' -e 'out of memory' -e 'reached -DMEMLIM' "$out"; then
            incomplete="search incomplete (depth or memory bound)"
        fi
        if [ $rc -eq 124 ]; then
            incomplete="timed out after ${run_timeout}s"
        fi
        if [ -z "$errors" ]; then
            verdict=FAIL
            detail="no result from pan (exit $rc) ${incomplete}"
        elif [ "$expect" = pass ]; then
            if [ "$errors" = 0 ] && [ -z "$incomplete" ]; then
                verdict=ok
                detail="0 errors, $states states, $secs"
            else
                verdict=FAIL
                detail="$errors errors${first:+ ($first)}${incomplete:+, $incomplete}, $states states, $secs"
            fi
        else
            if [ "$errors" -ge 1 ]; then
                verdict=ok
                detail="caught: $first, $states states, $secs"
            else
                verdict=FAIL
                detail="bug not caught: 0 errors${incomplete:+, $incomplete}, $states states, $secs"
            fi
        fi
    fi
    local what="$*"
    [ "$mode" = np ] && what="np${what:+ $what}"
    printf '%-4s %-15s %-5s %-36s %s\n' "$verdict" "$name" "$expect" "${what:--}" "$detail" \
        >"$dir/result"
}

for pml in "${files[@]}"; do
    if [ ! -f "$pml" ]; then
        echo "FAIL $pml: no such file"
        bad=$((bad + 1))
        continue
    fi
    lines=$(sed -n 's/^[ /]*\* CHECK: *//p' "$pml")
    if ! printf '%s\n' "$lines" | grep -qx 'pass'; then
        echo "FAIL $(basename "$pml"): no plain 'CHECK: pass' line (a model must verify with no flag)"
        bad=$((bad + 1))
    fi
    while read -r expect rest; do
        [ -n "$expect" ] || continue
        case $expect in
        pass | fail) ;;
        *)
            echo "FAIL $(basename "$pml"): bad CHECK line: $expect $rest"
            bad=$((bad + 1))
            continue
            ;;
        esac
        mode=safety
        set -- $rest
        if [ "${1:-}" = np ]; then
            mode=np
            shift
        fi
        runs=$((runs + 1))
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
            wait -n
        done
        run_one "$runs" "$pml" "$expect" "$mode" "$@" &
    done <<<"$lines"
done
wait

for ((n = 1; n <= runs; n++)); do
    if [ -f "$tmp/run$n/result" ]; then
        cat "$tmp/run$n/result"
        grep -q '^ok ' "$tmp/run$n/result" || bad=$((bad + 1))
    else
        echo "FAIL run $n left no result"
        bad=$((bad + 1))
    fi
done
echo "spin-models: $runs runs, $((runs - bad)) as expected, $bad not, in $(($(date +%s) - start_all)) s"
[ $bad -eq 0 ]
