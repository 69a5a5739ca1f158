#!/usr/bin/env bash
# test-aarch64.sh: cross-builds weft for aarch64 and runs the context-switch
# test (tests/arch/switch_test.c) under qemu-user.
#
# Usage: scripts/test-aarch64.sh [--switch-only] [BUILD_DIR]
#   BUILD_DIR      where to build (default: build-aarch64 in the repository)
#   --switch-only  skip step 1, the cross-build of the whole library
# Needs aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross) and, to run the test, qemu-aarch64 (qemu-user).
# Exit status: 0 passed, 77 skipped (a tool is missing), anything else failed.
# Override the tools with AARCH64_CC, QEMU_AARCH64, AARCH64_ROOT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
switch_only=0
if [[ ${1:-} == --switch-only ]]; then
    switch_only=1
    shift
fi
if [[ $# -gt 1 || ${1:-} == -* ]]; then
    echo "usage: $0 [--switch-only] [BUILD_DIR]" >&2
    exit 2
fi
build=${1:-$root/build-aarch64}
mkdir -p "$build"
build=$(cd "$build" && pwd)

cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
cross_root=${AARCH64_ROOT:-/usr/aarch64-linux-gnu}

step() { printf '\n== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

if ! command -v "$cc" >/dev/null; then
    echo "test-aarch64: $cc not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross); skipping"
    exit 77
fi

# 1. The library, cross-built with the toolchain file.
if [[ $switch_only == 0 ]]; then
    step "1. cross-building the weft library for aarch64 in $build/lib"
    generator=()
    if command -v ninja >/dev/null && [[ ! -f $build/lib/CMakeCache.txt ]]; then
        generator=(-G Ninja)
    fi
    run cmake -S "$root" -B "$build/lib" "${generator[@]}" \
        -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
        -DWEFT_ARCH=aarch64 \
        -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=ON
    run cmake --build "$build/lib" --parallel
else
    step "1. cross-building the weft library: skipped (--switch-only)"
fi

# 2. The context-switch test alone: the asm switch at -O0 and -O2, then the
# generic ucontext one, each linked statically so qemu needs no loader.
step "2. building tests/arch/switch_test.c for aarch64 in $build/arch"
mkdir -p "$build/arch"
cflags=(-std=c11 -Wall -Wextra -g -static)
arch_src=("$root/src/arch/aarch64/switch.S" "$root/src/arch/aarch64/context.c")
generic_src=("$root/src/arch/generic/context.c")
tests=(switch_test_O0 switch_test_O2 switch_test_generic)
run "$cc" "${cflags[@]}" -O0 "$root/tests/arch/switch_test.c" "${arch_src[@]}" -lm \
    -o "$build/arch/switch_test_O0"
run "$cc" "${cflags[@]}" -O2 "$root/tests/arch/switch_test.c" "${arch_src[@]}" -lm \
    -o "$build/arch/switch_test_O2"
run "$cc" "${cflags[@]}" -O2 -DWEFT_ARCH_GENERIC "$root/tests/arch/switch_test.c" \
    "${generic_src[@]}" -lm -o "$build/arch/switch_test_generic"

if ! command -v "$qemu" >/dev/null; then
    echo "test-aarch64: $qemu not found (apt-get install qemu-user); built but not run, skipping"
    exit 77
fi

step "3. running them under $qemu"
echo "(entry_return_traps kills a child on purpose: qemu reports it as"
echo " 'uncaught target signal 5 (Trace/breakpoint trap)', which is expected)"
timeout_cmd=()
if command -v timeout >/dev/null; then
    timeout_cmd=(timeout 120)
fi
for t in "${tests[@]}"; do
    # qemu-user writes core files of its own into the current directory.
    (cd "$build/arch" && run "${timeout_cmd[@]}" "$qemu" -L "$cross_root" "./$t")
done
if [[ $switch_only == 0 ]]; then
    step "4. running the whole runtime under $qemu: the examples check their own output"
    # The channel examples too: aarch64's weaker memory order checks the
    # channel and wait protocols' fences. (--deadlock writes its report on
    # stderr and exits 0 only when the detector found the deadlock.)
    for ex in "hello" "embedded" "sieve --n 100" "power_series" "philosophers --meals 50" \
              "philosophers --deadlock" "bounded_buffer --items 2000" "echo --self-test 10"; do
        read -r name args <<<"$ex"
        # shellcheck disable=SC2086 # args is a word list
        run "${timeout_cmd[@]}" "$qemu" -L "$cross_root" "$build/lib/examples/example-$name" $args \
            >/dev/null 2>&1
    done
fi
step "aarch64: all context-switch tests and examples passed"
