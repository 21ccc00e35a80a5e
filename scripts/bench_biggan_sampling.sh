#!/usr/bin/env bash
# Times `longgan sample` on an imported BigGAN with dense attention and with SMYRF (issue 30).
#
# What: runs, on the CPU,
#   longgan sample --checkpoint RUN --n 8 --class 207 --seed 0 --out OUT/<variant>_rN.png --device cpu \
#       --attention dense
#   ... the same with --attention smyrf:hashes=4,q_cluster=1024,k_cluster=256
# REPEATS times each, interleaved (dense and SMYRF alternate; the first of each pair alternates too,
# so that a drift of the machine falls on both), each under /usr/bin/time -v (or, where that is
# missing, a Python wrapper reading resource.getrusage), and prints per run and as medians the wall
# seconds and the peak RSS, and the SMYRF/dense ratios. The whole command is timed: process start,
# checkpoint load, the forward of 8 images, PNG writing.
#
# The SMYRF spec fits the 256 model's G attention at 128x128 with key pooling: 16,384 queries /
# q_cluster 1024 = 16 clusters = 4,096 pooled keys / k_cluster 256 (sample refuses, exit 2, a spec
# whose cluster counts differ, e.g. k_cluster=512). It is the spec of docs/SMYRF_CELEBAHQ.md with 4
# hashes instead of 8.
#
# Why: to measure what the SMYRF swap saves on a full-size BigGAN (ch 96, 256x256, attention at
# 128x128) that BigGAN-PyTorch's weights imported into LongGAN (scripts/make_biggan_bench_weights.py
# makes such a G with random weights: the TF Hub weights are not at hand here, and timing does not
# need them).
#
# How to run it (not run by CI; run it on a quiet machine, the timings are the point):
#   scripts/bench_biggan_sampling.sh RUN [OUT]
#       RUN  a run directory, e.g. from
#            longgan import biggan-pytorch /work/measure/biggan256/G.pth --tfhub 256 --out RUN
#       OUT  where the images, logs and results.tsv go (default: a new directory under /tmp)
#   Environment: REPEATS (3), LONGGAN (build/bin/longgan of this checkout), CLASS (207; the tiny
#   fixture runs have 5 classes: CLASS=3), N (8), SEED (0), DEVICE (cpu),
#   SMYRF (hashes=4,q_cluster=1024,k_cluster=256), TIMER=python (use the fallback timer even where
#   /usr/bin/time exists), PYTHON (the fallback timer's interpreter: python3).
#   LibTorch uses every core unless OMP_NUM_THREADS says otherwise; the output records it.
# The ch-96 256 model is far slower per run than the fixture's ch-4 one (with dense attention a
# [8, 16384, 4096] fp32 score matrix is 2 GiB, if the batch is computed at once); a quick check of
# the script itself (seconds):
#   longgan import biggan-pytorch tests/fixtures/biggan/res256_gattn128 --out /tmp/tiny
#   REPEATS=1 CLASS=3 scripts/bench_biggan_sampling.sh /tmp/tiny
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
run="$1"
out="${2:-$(mktemp -d /tmp/bench_biggan_sampling.XXXXXX)}"
repeats="${REPEATS:-3}"
longgan="${LONGGAN:-$here/../build/bin/longgan}"
class="${CLASS:-207}"
n="${N:-8}"
seed="${SEED:-0}"
device="${DEVICE:-cpu}"
smyrf="smyrf:${SMYRF:-hashes=4,q_cluster=1024,k_cluster=256}"
python="${PYTHON:-python3}"

[[ -x "$longgan" ]] || { echo "no longgan at $longgan (set LONGGAN or build it)" >&2; exit 1; }
[[ -d "$run" ]] || { echo "$run: not a run directory" >&2; exit 1; }
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "REPEATS must be a positive integer" >&2; exit 2; }
mkdir -p "$out"
results="$out/results.tsv"
printf 'variant\trepeat\twall_s\tmax_rss_kb\tattention\n' > "$results"

source "$here/bench_lib.sh"
bench_timer_init "$python"
timer="$bench_timer"

echo "run: $run"
echo "longgan: $longgan"
echo "sample: --n $n --class $class --seed $seed --device $device; $repeats repeat(s), interleaved; timer: $timer"
if [[ -n "${OMP_NUM_THREADS:-}" ]]; then threads="$OMP_NUM_THREADS"; else threads="unset (LibTorch's default: all $(nproc) cores)"; fi
echo "OMP_NUM_THREADS: $threads; out: $out"
for ((r = 1; r <= repeats; r++)); do
  if ((r % 2)); then order=(dense smyrf); else order=(smyrf dense); fi
  for variant in "${order[@]}"; do
    if [[ $variant == dense ]]; then spec=dense; else spec="$smyrf"; fi
    base="$out/${variant}_r$r"
    read -r wall rss < <(timed "$base.log" "$base.time" "$longgan" sample --checkpoint "$run" --n "$n" \
      --class "$class" --seed "$seed" --out "$base.png" --device "$device" --attention "$spec") \
      || { echo "run $variant r$r failed; see $base.log" >&2; exit 1; }
    [[ -n "${wall:-}" && -n "${rss:-}" ]] || { echo "run $variant r$r: no timing in $base.time" >&2; exit 1; }
    printf '%s\t%d\t%s\t%s\t%s\n' "$variant" "$r" "$wall" "$rss" "$spec" >> "$results"
    printf '  %-5s repeat %d: %8.2f s  %8.0f MiB\n' "$variant" "$r" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
  done
done

echo
bench_medians "$results" "$out/medians.tsv" dense smyrf
echo "(smyrf: $smyrf)"
awk -v w="$(bench_median_of "$out/medians.tsv" smyrf wall_s)" -v wd="$(bench_median_of "$out/medians.tsv" dense wall_s)" \
    -v m="$(bench_median_of "$out/medians.tsv" smyrf rss_kb)" -v md="$(bench_median_of "$out/medians.tsv" dense rss_kb)" \
    'BEGIN { printf "SMYRF/dense: wall %.3f, peak RSS %.3f (medians)\n", w / wd, m / md }'
echo "raw: $results"
