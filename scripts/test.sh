#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it: the Criterion tests in a
# release build, under ASan+UBSan and under TSan; a subset under valgrind;
# the aarch64 context switch under qemu. Usage: scripts/test.sh [--quick]
# (--quick: release build only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
quick=0
[ "${1:-}" = "--quick" ] && quick=1
start=$(date +%s)

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  ninja -C "$dir" >/dev/null
}

stages=0
suite() { # dir, label
  echo "== tests: $2"
  (cd "$1" && ctest --output-on-failure)
  stages=$((stages + 1))
}

build _build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
suite _build/release release
if [ $quick -eq 0 ]; then
  # With the libFuzzer target: its CTest test fuzz-run fuzzes for 60 s.
  build _build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DWEFT_SANITIZE=address \
    -DWEFT_BUILD_FUZZ=ON
  ASAN_OPTIONS=detect_leaks=1 suite _build/asan "ASan+UBSan"
  build _build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DWEFT_SANITIZE=thread
  TSAN_OPTIONS=halt_on_error=1 suite _build/tsan TSan

  echo "== valgrind: examples and a small benchmark"
  for ex in hello embedded; do
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      "_build/release/examples/example-$ex" >/dev/null
  done
  valgrind -q --error-exitcode=1 _build/release/bench/weft-bench spawn --workers 2 --n 20000 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-sieve --n 100 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 _build/release/bench/weft-bench pingpong --workers 2 --n 20000 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-bank --accounts 20 --tellers 4 --transfers 2000 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-chameneos --n 600 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-wordfreq --mb 2 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-image_filter --size 256 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-graph_cancel --n 2000 --workers 2 >/dev/null
  # The servers: the poller, sockets and the offload pool. (valgrind 3.19
  # does not know epoll_pwait2 and warns once: the fallback runs.)
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-echo --self-test 20 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/weft-http-hello --self-test 10 --workers 2 >/dev/null
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    _build/release/examples/example-chat --self-test 8 --workers 2 >/dev/null
  echo "valgrind: 13 passed, 0 failed"
  stages=$((stages + 1))

  echo "== generic context switch (ucontext): switch test, processes, examples"
  build _build/generic -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_ARCH=generic
  (cd _build/generic && ctest --output-on-failure -R 'arch_switch|test-smoke|test-proc|test-fpenv')
  _build/generic/examples/example-hello >/dev/null
  stages=$((stages + 1))

  echo "== aarch64: cross build, context-switch test and examples under qemu"
  rc=0
  bash scripts/test-aarch64.sh _build/aarch64 || rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || exit $rc
  [ $rc -eq 0 ] && stages=$((stages + 1))
fi
echo "== all stages passed in $(( $(date +%s) - start )) s (any failure stops the script)"
echo "stages: $stages passed, 0 failed"
