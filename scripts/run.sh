#!/usr/bin/env bash
# run.sh: the main job. Installs what is missing, builds weft, runs the
# examples (each checks its own output), then prints the benchmark table of
# weft beside its peers (medians of 3 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --bench
cmake -S . -B _build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C _build/release >/dev/null
# philosophers runs in its default mode only: its --deadlock mode is a test
# of the deadlock detector (run by ctest) and writes a report on stderr.
for ex in hello parallel_sum embedded sieve power_series philosophers bounded_buffer \
          chameneos bank worker_pool image_filter graph_cancel; do
  echo "== example: $ex"
  "_build/release/examples/example-$ex"
done
# wordfreq on a 16 MiB corpus here; bench/run.sh times it on its default 64 MiB.
echo "== example: wordfreq"
_build/release/examples/example-wordfreq --mb 16
echo "== benchmarks"
bash bench/run.sh --build _build/release
