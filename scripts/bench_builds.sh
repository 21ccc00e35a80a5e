#!/usr/bin/env bash
# Times `longgan train` of two builds on the same commands, whole processes interleaved: did
# anything regress between a release and this checkout (issue 33)?
#
# What: on the CPU, for each case, REPEATS times, the OLD and the NEW build's
#   demo      longgan train --resolution 32 --ch 16 --batch 16 --g-attn 32 --d-attn 16 \
#                 --attention smyrf:hashes=2,q_cluster=256,k_cluster=64 --steps DEMO_STEPS (100)
#             (the README demo's training, scripts/demo.sh, on its 2,048 synthetic 32x32 images)
#   smyrf64   longgan train --resolution 64 --ch 16 --batch 16 --g-attn 64 --d-attn= \
#                 --attention smyrf:hashes=2,q_cluster=512,k_cluster=128 --steps STEPS (35)
#   dense64   the same with --attention dense (issue 33's 64x64 setting)
# with --seed 1 --device cpu, each run from scratch into OUT/runs/<case>_<build>_rN, under
# /usr/bin/time -v (or a Python getrusage wrapper). Within a repeat the cases run in turn and the
# two builds of a case back to back, the first of them alternating from repeat to repeat, so that a
# drift of the machine falls on both. Prints per run and as medians: wall seconds (the whole process:
# start-up and the final checkpoint included), images/s as the run reports it in-process (its last
# progress line's img/s: real images through D per second of training), peak RSS;
# and NEW/OLD ratios per case.
#
# How to run it (not run by CI; on a quiet machine, the timings are the point):
#   git worktree add /work/rel ad1ff57 && (cd /work/rel && scripts/build.sh)   # the release
#   scripts/bench_builds.sh /work/rel/build/bin/longgan build/bin/longgan [OUT]
#       OUT  where the data, runs, logs, results.tsv and medians.tsv go (default: a new /tmp dir)
#   Environment: REPEATS (3), STEPS (35), DEMO_STEPS (100), CASES ("demo smyrf64 dense64"),
#   PYTHON (the fallback timer's interpreter: python3), TIMER=python (use it even where
#   /usr/bin/time exists). LibTorch uses every core unless OMP_NUM_THREADS says otherwise.
# A quick check of the script itself: STEPS=2 DEMO_STEPS=2 REPEATS=1 scripts/bench_builds.sh A B
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 2 || $# -gt 3 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
old="$1"
new="$2"
out="${3:-$(mktemp -d /tmp/bench_builds.XXXXXX)}"
repeats="${REPEATS:-3}"
steps="${STEPS:-35}"
demo_steps="${DEMO_STEPS:-100}"
read -r -a cases <<< "${CASES:-demo smyrf64 dense64}"
source "$here/bench_lib.sh"
bench_timer_init "${PYTHON:-python3}"

for bin in "$old" "$new"; do [[ -x "$bin" ]] || { echo "no longgan at $bin" >&2; exit 1; }; done
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "REPEATS must be a positive integer" >&2; exit 2; }
[[ "$steps" =~ ^[1-9][0-9]*$ && "$demo_steps" =~ ^[1-9][0-9]*$ ]] \
  || { echo "STEPS and DEMO_STEPS must be positive integers" >&2; exit 2; }
for case in "${cases[@]}"; do
  [[ $case == demo || $case == smyrf64 || $case == dense64 ]] \
    || { echo "unknown case '$case' in CASES (demo, smyrf64, dense64)" >&2; exit 2; }
done
mkdir -p "$out/runs" "$out/logs"
results="$out/results.tsv"
printf 'variant\trepeat\twall_s\tmax_rss_kb\timages_per_s\n' > "$results"

echo "old: $old ($(cd "$(dirname "$old")" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "new: $new ($(cd "$(dirname "$new")" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
if [[ -n "${OMP_NUM_THREADS:-}" ]]; then threads="$OMP_NUM_THREADS"; else threads="unset (all $(nproc) cores)"; fi
echo "cases: ${cases[*]}; $repeats repeat(s), interleaved; timer: $bench_timer; OMP_NUM_THREADS: $threads; out: $out"

# The data, made once by the old build: a newer build reads an older data format, not the reverse.
for resolution in 32 64; do
  data="$out/synthetic$resolution.lgd"
  [[ -f "$data" ]] || "$old" prepare --synthetic 2048 --resolution "$resolution" --output "$data" \
    > "$out/logs/prepare$resolution.log" 2>&1 || { echo "prepare failed; see $out/logs/prepare$resolution.log" >&2; exit 1; }
done

case_args() {
  case "$1" in
    demo) echo "--data $out/synthetic32.lgd --resolution 32 --ch 16 --batch 16 --g-attn 32 --d-attn 16 --attention smyrf:hashes=2,q_cluster=256,k_cluster=64 --steps $demo_steps" ;;
    smyrf64) echo "--data $out/synthetic64.lgd --resolution 64 --ch 16 --batch 16 --g-attn 64 --d-attn= --attention smyrf:hashes=2,q_cluster=512,k_cluster=128 --steps $steps" ;;
    dense64) echo "--data $out/synthetic64.lgd --resolution 64 --ch 16 --batch 16 --g-attn 64 --d-attn= --attention dense --steps $steps" ;;
  esac
}

variants=()
for case in "${cases[@]}"; do variants+=("${case}_old" "${case}_new"); done
for ((r = 1; r <= repeats; r++)); do
  for case in "${cases[@]}"; do
    if ((r % 2)); then order=(old new); else order=(new old); fi
    for build in "${order[@]}"; do
      bin="$old"; [[ $build == new ]] && bin="$new"
      variant="${case}_$build"
      run="$out/runs/${variant}_r$r"
      base="$out/logs/${variant}_r$r"
      rm -rf "$run"
      read -r -a args <<< "$(case_args "$case")"
      read -r wall rss < <(timed "$base.log" "$base.time" "$bin" train "${args[@]}" --out "$run" --seed 1 --device cpu) \
        || { echo "run $variant r$r failed; see $base.log" >&2; exit 1; }
      # The last progress line's rate: every build prints one (older ones lack metrics.jsonl's).
      ips="$(sed -n 's/^step [0-9]*\/[0-9]*.* \([0-9.]*\) img\/s.*/\1/p' "$base.log" | tail -n 1)"
      [[ -n "$ips" ]] || { echo "run $variant r$r: no 'img/s' progress line in $base.log" >&2; exit 1; }
      bench_record "$results" "$variant" "$r" "$wall" "$rss" "$ips"
    done
  done
done

echo
bench_medians "$results" "$out/medians.tsv" "${variants[@]}"
echo
echo "NEW/OLD (medians; wall < 1 and images/s > 1 mean the new build is faster):"
for case in "${cases[@]}"; do
  get() { bench_median_of "$out/medians.tsv" "${case}_$1" "$2"; }
  awk -v c="$case" -v wn="$(get new wall_s)" -v wo="$(get old wall_s)" -v pn="$(get new images_per_s)" \
      -v po="$(get old images_per_s)" -v rn="$(get new rss_kb)" -v ro="$(get old rss_kb)" \
      'BEGIN { printf "  %-8s wall %.3f  img/s (in-process) %.3f  peak RSS %.3f\n", c, wn / wo, pn / po, rn / ro }'
done
echo "raw: $results"
