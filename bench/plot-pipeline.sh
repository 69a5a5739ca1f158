#!/usr/bin/env bash
# bench/plot-pipeline.sh: throughput of the pipeline benchmark per stage count, plotted.
#
#   bench/plot-pipeline.sh [--n N] [--runs R] [--build DIR] [--max-stages S] [--out OUTDIR]
#
# Runs `pipeline --stages S` for S = 2..8 (source, S-2 maps, sink; edges of capacity 64; see
# /work/shared/BENCH.md) at 1 worker (taskset -c 0) and 2 workers (taskset -c 0-1) for weft
# (DIR/bench/weft-bench), Go (bench/peers/go) and oneTBB (bench/peers/tbb), R times each (default
# 3; the systems take turns run by run), N items per run (default 2,000,000). The peers are built
# into DIR/peers/ when missing or older than their sources; weft-bench must be built already
# (default DIR: _build/release). A program that is missing or fails leaves its points out.
#
# Writes OUTDIR/pipeline-stages.dat (default OUTDIR: bench; one row per stage count: the median
# throughput in M items/s of weft, Go and TBB at 1 worker, then at 2 workers; "-" for a missing
# point) and plots it into OUTDIR/pipeline.png with gnuplot (Debian package gnuplot-nox): M items/s
# against the stage count, one line per system and worker count. --max-stages S ends the sweep at S
# instead of 8. Not part of CI; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
n=2000000
runs=3
build=_build/release
max_stages=8
outdir=bench
usage() { echo "usage: bench/plot-pipeline.sh [--n N] [--runs R] [--build DIR] [--max-stages S] [--out OUTDIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --n) n=$2 ;;
    --runs) runs=$2 ;;
    --build) build=$2 ;;
    --max-stages) max_stages=$2 ;;
    --out) outdir=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[[ $n =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ && $max_stages =~ ^[1-9][0-9]*$ ]] || usage
[ "$max_stages" -ge 2 ] || usage
command -v gnuplot >/dev/null || { echo "plot-pipeline.sh: gnuplot not found (Debian package gnuplot-nox)" >&2; exit 1; }

weft=$build/bench/weft-bench
gopeer=$build/peers/weftpeer-go
tbbpeer=$build/peers/weftpeer-tbb
[ -x "$weft" ] || echo "plot-pipeline.sh: $weft is not built: no weft points" >&2
if [ ! -x "$gopeer" ] || [ -n "$(find bench/peers/go -name '*.go' -newer "$gopeer" | head -n 1)" ]; then
  bash bench/peers/go/build.sh "$gopeer" >/dev/null || echo "plot-pipeline.sh: the Go peer did not build" >&2
fi
if [ ! -x "$tbbpeer" ] || [ bench/peers/tbb/pipeline.cpp -nt "$tbbpeer" ]; then
  bash bench/peers/tbb/build.sh "$tbbpeer" >/dev/null || echo "plot-pipeline.sh: the TBB peer did not build" >&2
fi

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# point STAGES WORKERS: prints "weft go tbb", each the median throughput in M items/s or "-".
point() {
  local s=$1 w=$2 cpus i r out line err
  local -a progs=("$weft" "$gopeer" "$tbbpeer") names=(weft go tbb) vals=("" "" "") ok=(1 1 1)
  cpus=$(seq -s, 0 $((w - 1)))
  err=$(mktemp)
  for i in 0 1 2; do [ -x "${progs[i]}" ] || ok[i]=0; done
  for ((r = 0; r < runs; r++)); do
    for i in 0 1 2; do
      [ "${ok[i]}" -eq 1 ] || continue
      if ! out=$(taskset -c "$cpus" "${progs[i]}" pipeline --workers "$w" --n "$n" --stages "$s" 2>"$err"); then
        echo "plot-pipeline.sh: ${names[i]} at $s stages, $w workers failed: $(tail -n 3 "$err")" >&2
        ok[i]=0; continue
      fi
      line=$(tail -n 1 <<<"$out")
      if ! awk -v k="pipeline ${names[i]} $w $n" 'NF == 6 && index($0, k " ") == 1 { ok = 1 } END { exit !ok }' <<<"$line"; then
        echo "plot-pipeline.sh: ${names[i]} at $s stages, $w workers printed '$line'" >&2
        ok[i]=0; continue
      fi
      vals[i]+="$(awk '{print $NF}' <<<"$line") "
    done
  done
  rm -f "$err"
  for i in 0 1 2; do
    if [ "${ok[i]}" -eq 1 ]; then
      tr ' ' '\n' <<<"${vals[i]}" | grep . | median | awk '{ printf "%.3f", 1000 / $1 }'
    else
      printf -- -
    fi
    [ "$i" -eq 2 ] || printf ' '
  done
  echo
}

mkdir -p "$outdir"
dat=$outdir/pipeline-stages.dat
png=$outdir/pipeline.png
tmp=$(mktemp)
{
  echo "# pipeline throughput (M items/s, medians of $runs runs, N $n) per stage count S"
  echo "# machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r); $(date -u +%Y-%m-%d)"
  echo "# S weft_1w go_1w tbb_1w weft_2w go_2w tbb_2w"
} >"$tmp"
for ((s = 2; s <= max_stages; s++)); do
  row="$s $(point "$s" 1) $(point "$s" 2)"
  echo "$row" >>"$tmp"
  echo "plot-pipeline.sh: $row" >&2
done
mv "$tmp" "$dat"

gnuplot <<GNUPLOT
set terminal pngcairo size 960,600 font "sans,11"
set output "$png"
set datafile missing "-"
set title "pipeline: items through S stages joined by capacity-64 edges (N $n, medians of $runs)"
set xlabel "stages S (source, S-2 maps, sink)"
set ylabel "M items/s"
set xrange [1.8:$max_stages.2]
set xtics 1
set yrange [0:*]
set grid
set key outside right top
plot "$dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1b7837" title "weft, 1 worker", \
     "$dat" using 1:5 with linespoints lw 2 pt 5 dt 2 lc rgb "#1b7837" title "weft, 2 workers", \
     "$dat" using 1:3 with linespoints lw 2 pt 7 lc rgb "#2166ac" title "Go, 1 worker", \
     "$dat" using 1:6 with linespoints lw 2 pt 5 dt 2 lc rgb "#2166ac" title "Go, 2 workers", \
     "$dat" using 1:4 with linespoints lw 2 pt 7 lc rgb "#b2182b" title "TBB, 1 worker", \
     "$dat" using 1:7 with linespoints lw 2 pt 5 dt 2 lc rgb "#b2182b" title "TBB, 2 workers"
GNUPLOT
echo "plot-pipeline.sh: wrote $dat and $png"
