#!/usr/bin/env bash
# Does attention help, and does SMYRF keep that help? The SMYRF paper's GAN claim in miniature, on the
# CPU: synthetic data with long-range rules (the left half mirrors the right, the bottom-right motif
# repeats the top-left one), one run per attention type, `none` among them (the control: the
# attention blocks return their input), two training seeds for none, dense and SMYRF. Every
# --eval-every steps (train --eval-every), FID and KID of G_ema and the structure scores: mirror error,
# corner error and the shares of images that keep each rule; G's attention weight gamma and its
# branch ratio every --log-every steps. Then
#   - the swap matrix: every trained model sampled with every attention type and with the ablation
#     `none` (metrics --compare-attention), FID, mean pixel difference and structure scores,
#   - the noise floor: the dense checkpoint's FID and structure scores under three sample seeds,
#   - images/s and peak memory of each run, from its own logs,
#   - a table, results JSON, the curves (fid.png: FID, mirror error, corner error, gamma) and the
#     final grids side by side (grids.png), and a plain reading of the numbers against the spreads.
# Every run is an ordinary run directory and every result a file: a second call continues where the
# first stopped (runs resume, finished parts are skipped), so it can be run in parts. Swap and
# noise-floor reports that lack a type asked for now or the structure scores are made again; runs
# finished by an older build keep their logs (no structure scores or gamma: '-' in the table).
#
#   scripts/quality.sh [--quick] [--out DIR] [--steps N] [--resolution R] [--ch C] [--batch B]
#                      [--types "T1;T2;..."] [--seeds "S1,S2,..."] [--seed-types "T1;T2;..."]
#                      [--images N] [--eval-every N] [--eval-n N] [--motif-size M] [--d-attn R]
#
# --seeds: the training seeds (default 1,2). The types named in --seed-types (a type name such as
# `dense` names every spec of that type, or give a whole spec; default "none;dense;smyrf") are
# trained once per seed, every other type with the first seed only. The first seed's run is
# runs/<type>, another seed's runs/<type>_seed<S> (logs named the same way), so runs made with one
# seed keep resuming. --seed S is --seeds S. --seed-types "" trains every type with the first seed only.
# Swap reports: each first-seed run with every type (and none); a later seed's run with none only.
#
# Defaults: 32x32 synthetic data (4,096 images) with an 8x8 corner motif, ch 16, batch 16, G
# attention at 32x32 (1,024 tokens), no D attention, 5,000 steps of none, dense,
# smyrf:hashes=2,q_cluster=128,k_cluster=32, improved_clustered (fitted to the block) and clustered
# (fitted), seeds 1 and 2 for none, dense and SMYRF; FID/KID on 500 samples every 1,000 steps,
# output in bench/quality/. Chosen because in one seed dense attention kept the long-range rules
# clearly better than none there (bench/explore32_m8; 32x32 with the default 4x4 motif did not,
# bench/explore32 and bench/explore32_5k); the full experiment with two seeds did not confirm it
# (bench/quality/README.md).
# About 5 hours on 2 quiet CPU cores (about 30 min per run, 8 runs; under an hour for the swap matrix
# and the noise floor), resumable.
# --motif-size M: the synthetic corner motif's side (prepare --synthetic --motif-size; default 8,
# prepare's own default is max(2, R/8)); the data file is synthetic<R>_<N>_motif<M>.lgd.
# --d-attn R: D attention at R (default: none).
# --quick: 32x32, 256 images, none, dense (seeds 1 and 2) and SMYRF, 20 steps, 32 samples: a few
# minutes (what the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/quality
STEPS=5000
RESOLUTION=32
CH=16
BATCH=16
TYPES="none;dense;smyrf:hashes=2,q_cluster=128,k_cluster=32;improved_clustered;clustered"
IMAGES=4096
EVAL_EVERY=1000
EVAL_N=500
SEEDS="1,2"
SEED_TYPES="none;dense;smyrf"
SEED_TYPES_GIVEN=0
QUICK=0
MOTIF=8
D_ATTN=""

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "quality.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "quality.sh: $1 takes a positive integer, got '$2'" >&2; exit 2; }; }

args=("$@")
# --quick first, so that explicit options after or before it override its settings.
for a in "$@"; do
  if [ "$a" = --quick ]; then
    QUICK=1 OUT=bench/quality-quick STEPS=20 RESOLUTION=32 CH=8 BATCH=8
    TYPES="none;dense;smyrf:hashes=2,q_cluster=128,k_cluster=32" SEED_TYPES="dense" IMAGES=256 EVAL_EVERY=10 EVAL_N=32
  fi
done
set -- "${args[@]+"${args[@]}"}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) shift ;;
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --steps) need_value "$@"; positive "$1" "$2"; STEPS="$2"; shift 2 ;;
    --resolution) need_value "$@"; RESOLUTION="$2"; shift 2 ;;
    --ch) need_value "$@"; positive "$1" "$2"; CH="$2"; shift 2 ;;
    --batch) need_value "$@"; positive "$1" "$2"; BATCH="$2"; shift 2 ;;
    --types) need_value "$@"; TYPES="$2"; shift 2 ;;
    --images) need_value "$@"; positive "$1" "$2"; IMAGES="$2"; shift 2 ;;
    --eval-every) need_value "$@"; positive "$1" "$2"; EVAL_EVERY="$2"; shift 2 ;;
    --eval-n) need_value "$@"; positive "$1" "$2"; EVAL_N="$2"; shift 2 ;;
    --motif-size) need_value "$@"; positive "$1" "$2"; MOTIF="$2"; shift 2 ;;
    --d-attn) need_value "$@"; positive "$1" "$2"; D_ATTN="$2"; shift 2 ;;
    --seed) need_value "$@"; [[ "$2" =~ ^[0-9]+$ ]] || { echo "quality.sh: --seed takes an integer >= 0" >&2; exit 2; }
            SEEDS="$2"; shift 2 ;;
    --seeds) need_value "$@"; [[ "$2" =~ ^[0-9]+(,[0-9]+)*$ ]] \
               || { echo "quality.sh: --seeds takes integers >= 0 separated by commas, got '$2'" >&2; exit 2; }
             SEEDS="$2"; shift 2 ;;
    --seed-types) [ $# -ge 2 ] || { echo "quality.sh: --seed-types needs a value (see --help)" >&2; exit 2; }
                  SEED_TYPES="$2" SEED_TYPES_GIVEN=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "quality.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$RESOLUTION" in 32|64|128|256) ;; *) echo "quality.sh: --resolution takes 32, 64, 128 or 256" >&2; exit 2 ;; esac
IFS=';' read -r -a types <<<"$TYPES"
[ ${#types[@]} -ge 1 ] || { echo "quality.sh: --types is empty" >&2; exit 2; }
IFS=',' read -r -a seeds <<<"$SEEDS"
[ "$(printf '%s\n' "${seeds[@]}" | sort -u | wc -l)" -eq ${#seeds[@]} ] \
  || { echo "quality.sh: --seeds '$SEEDS' names a seed twice" >&2; exit 2; }
IFS=';' read -r -a seed_types <<<"$SEED_TYPES"
# A type named in --seed-types that is none of --types is a typo (the defaults may name absent types).
for st in "${seed_types[@]+"${seed_types[@]}"}"; do
  [ "$SEED_TYPES_GIVEN" = 1 ] || break
  found=0
  for t in "${types[@]}"; do [ "$st" = "$t" ] || [ "$st" = "${t%%:*}" ] && found=1; done
  [ $found = 1 ] || [ -z "$st" ] || { echo "quality.sh: --seed-types: '$st' is none of --types" >&2; exit 2; }
done

start=$(date +%s)
# LONGGAN_BIN: a built longgan to use as it is (the tests); else set up and build here.
if [ -n "${LONGGAN_BIN:-}" ]; then
  BIN="$LONGGAN_BIN"
else
  scripts/setup.sh
  scripts/build.sh >/dev/null
  BIN="$PWD/${LONGGAN_BUILD_DIR:-build}/bin/longgan"
fi
VENV="${LONGGAN_VENV:-$HOME/.cache/longgan/venv}"
# matplotlib draws the plots: installed here, when this script runs, not by setup.sh.
if ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  echo "quality: installing matplotlib==3.10.8 into $VENV (for the plots)"
  "$VENV/bin/python" -m pip install -q matplotlib==3.10.8
fi

mkdir -p "$OUT/runs" "$OUT/logs"
# Every type's spec is checked before hours of training start.
for t in "${types[@]}"; do
  "$BIN" info --model --resolution "$RESOLUTION" --ch "$CH" --g-attn "$RESOLUTION" --d-attn="$D_ATTN" --attention "$t" \
    >/dev/null || { echo "quality.sh: --types: '$t' does not give a valid model (see the message above)" >&2; exit 2; }
done

if [ -n "$MOTIF" ]; then
  DATA="$OUT/synthetic${RESOLUTION}_${IMAGES}_motif${MOTIF}.lgd"
  [ -f "$DATA" ] || "$BIN" prepare --synthetic "$IMAGES" --resolution "$RESOLUTION" --motif-size "$MOTIF" --output "$DATA"
else
  DATA="$OUT/synthetic${RESOLUTION}_${IMAGES}.lgd"
  [ -f "$DATA" ] || "$BIN" prepare --synthetic "$IMAGES" --resolution "$RESOLUTION" --output "$DATA"
fi

slug() { echo "$1" | tr ':=,' '___' ; }  # quality_report.py names runs the same way
# The seeds a type is trained with: all of them for the types in --seed-types (by type name or whole
# spec), else the first.
seeds_of() {
  local st
  for st in "${seed_types[@]+"${seed_types[@]}"}"; do
    if [ -n "$st" ] && { [ "$st" = "$1" ] || [ "$st" = "${1%%:*}" ]; }; then echo "${seeds[@]}"; return; fi
  done
  echo "${seeds[0]}"
}
# A run's name (its folder under runs/ and its logs' prefix): the first seed's as before seeds
# existed, <slug>_seed<S> for the others.
run_name() { if [ "$2" = "${seeds[0]}" ]; then slug "$1"; else echo "$(slug "$1")_seed$2"; fi; }
# Every run: "spec<TAB>seed", first seeds in --types order, then the other seeds.
runs=()
for t in "${types[@]}"; do runs+=("$t"$'\t'"${seeds[0]}"); done
for s in "${seeds[@]:1}"; do
  for t in "${types[@]}"; do
    for ts in $(seeds_of "$t"); do [ "$ts" = "$s" ] && runs+=("$t"$'\t'"$s"); done
  done
done

# Training, resumed where a run stopped. Each call's log and /usr/bin/time report are kept.
for r in "${runs[@]}"; do
  t="${r%%$'\t'*}" seed="${r##*$'\t'}"
  name=$(run_name "$t" "$seed")
  what="$t"; [ "$seed" = "${seeds[0]}" ] || what="$t (seed $seed)"
  run="$OUT/runs/$name"
  resume=()
  if [ -f "$run/latest" ]; then
    done_step=$("$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" \
                "$run/$(cat "$run/latest")/manifest.json" 2>/dev/null || echo 0)
    if [ "$done_step" -ge "$STEPS" ]; then echo "quality: $what already trained to step $done_step"; continue; fi
    resume=(--resume)
  fi
  part=$(find "$OUT/logs" -maxdepth 1 -name "$name.train.*.log" | wc -l)
  echo "quality: training $what (part $part) -> $run"
  /usr/bin/time -v -o "$OUT/logs/$name.train.$part.time" \
    "$BIN" train --data "$DATA" --out "$run" "${resume[@]}" --resolution "$RESOLUTION" --ch "$CH" \
      --g-attn "$RESOLUTION" --d-attn="$D_ATTN" --attention "$t" --batch "$BATCH" --steps "$STEPS" --seed "$seed" \
      --device cpu --eval-every "$EVAL_EVERY" --eval-n "$EVAL_N" --sample-every "$EVAL_EVERY" \
      --checkpoint-every "$EVAL_EVERY" --keep 2 --log-every "$(( EVAL_EVERY < 50 ? EVAL_EVERY : 50 ))" \
      >"$OUT/logs/$name.train.$part.log" 2>&1 \
    || { tail -20 "$OUT/logs/$name.train.$part.log"; exit 1; }
done

# The swap matrix: each first-seed model sampled with every type and the ablation none (the
# metrics command adds it), on the same latents; a later seed's model with none only. A report
# that lacks a type asked for now (written before that type was added) is made again.
# none (the metrics command's ablation row) is left out of the list so that it comes last.
others=(); for t in "${types[@]}"; do [ "$t" = none ] || others+=("$t"); done
all_types=$(IFS=,; echo "${others[*]+"${others[*]}"}"); all_types=${all_types:-none}
has_rows() {  # has_rows JSON TYPE...: the report has a row of each type (by type name)
  "$VENV/bin/python" - "$@" <<'PY'
import json, sys
rows = {e["attention"].split(":", 1)[0] for e in json.load(open(sys.argv[1]))["attention"]}
sys.exit(0 if {t.split(":", 1)[0] for t in sys.argv[2:]} <= rows else 1)
PY
}
for r in "${runs[@]}"; do
  t="${r%%$'\t'*}" seed="${r##*$'\t'}"
  name=$(run_name "$t" "$seed")
  if [ "$seed" = "${seeds[0]}" ]; then
    compare="$all_types" what="$t" wanted=("${types[@]}")
  else
    compare=none what="$t (seed $seed)" wanted=()
  fi
  json="$OUT/logs/$name.swap.json"
  [ -f "$json" ] && has_rows "$json" none "${wanted[@]+"${wanted[@]}"}" && continue
  echo "quality: swap report of $what"
  /usr/bin/time -v -o "$OUT/logs/$name.swap.time" \
    "$BIN" metrics --checkpoint "$OUT/runs/$name" --real "$DATA" --compare-attention "$compare" \
    --n "$EVAL_N" --seed 0 --device cpu --json "$json.tmp" >"$OUT/logs/$name.swap.log" 2>&1 \
    || { tail -20 "$OUT/logs/$name.swap.log"; exit 1; }
  mv "$json.tmp" "$json"
done

# The noise floor: the dense run's final checkpoint (the first type's where no type is dense),
# three other sample seeds; FID and structure scores (a report without them, from an older build, is
# made again).
first="$(slug "${types[0]}")"
for t in "${types[@]}"; do [ "${t%%:*}" = dense ] && { first="$(slug "$t")"; break; }; done
for s in 1 2 3; do
  json="$OUT/logs/$first.seed$s.json"
  [ -f "$json" ] && "$VENV/bin/python" -c "import json,sys; sys.exit('structure' not in json.load(open(sys.argv[1])))" \
    "$json" && continue
  echo "quality: noise floor, seed $s"
  /usr/bin/time -v -o "$OUT/logs/$first.seed$s.time" \
    "$BIN" metrics --checkpoint "$OUT/runs/$first" --real "$DATA" --n "$EVAL_N" --seed "$s" --device cpu \
      --json "$json.tmp" >"$OUT/logs/$first.seed$s.log" 2>&1 || { tail -20 "$OUT/logs/$first.seed$s.log"; exit 1; }
  mv "$json.tmp" "$json"
done

# The final grids (same latents for every run).
for t in "${types[@]}"; do
  grid="$OUT/grid_$(slug "$t").png"
  [ -f "$grid" ] || "$BIN" sample --checkpoint "$OUT/runs/$(slug "$t")" --out "$grid" --n 16 --seed 7 --truncation 0 \
    >/dev/null
done

elapsed=$(( $(date +%s) - start ))
"$VENV/bin/python" scripts/quality_report.py --out "$OUT" --types "$TYPES" --seeds "$SEEDS" --seed-types "$SEED_TYPES" \
  --steps "$STEPS" --eval-n "$EVAL_N" \
  --command "scripts/quality.sh ${args[*]+"${args[*]}"}" --elapsed "$elapsed"
echo "quality: $OUT/README.md, $OUT/results.json, $OUT/fid.png, $OUT/grids.png"
