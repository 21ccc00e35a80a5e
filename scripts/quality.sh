#!/usr/bin/env bash
# Does SMYRF train as well as dense? The SMYRF paper's GAN claim in miniature, on the CPU:
# synthetic data with long-range structure, one run per attention type from the same seed, FID and
# KID of G_ema every --eval-every steps (train --eval-every), then
#   - the swap matrix: every trained model sampled with every attention type (metrics --compare-attention),
#   - the noise floor: one checkpoint's FID under three sample seeds,
#   - images/s and peak memory of each run, from its own logs,
#   - a table, results JSON, FID curves (fid.png) and the final grids side by side (grids.png).
# Every run is an ordinary run directory and every result a file: a second call continues where the
# first stopped (runs resume, finished parts are skipped), so it can be run in parts.
#
#   scripts/quality.sh [--quick] [--out DIR] [--steps N] [--resolution R] [--ch C] [--batch B]
#                      [--types "T1;T2;..."] [--images N] [--eval-every N] [--eval-n N] [--seed S]
#
# Defaults: 64x64 synthetic data (10,000 images), ch 16, batch 16, G attention at 64x64 (4,096
# tokens), no D attention, 3,000 steps of dense, smyrf:hashes=2,q_cluster=512,k_cluster=128,
# improved_clustered (fitted to the block) and clustered (fitted), FID/KID on 2,000 samples every
# 500 steps, output in bench/quality/. About 7-8 hours on 2 CPU cores (1.5 h per type, 1.5 h for the
# swap matrix and the noise floor), resumable. --quick: 32x32, 256 images,
# dense and SMYRF, 20 steps, 64 samples: a few minutes (what the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/quality
STEPS=3000
RESOLUTION=64
CH=16
BATCH=16
TYPES="dense;smyrf:hashes=2,q_cluster=512,k_cluster=128;improved_clustered;clustered"
IMAGES=10000
EVAL_EVERY=500
EVAL_N=2000
SEED=1
QUICK=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "quality.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "quality.sh: $1 takes a positive integer, got '$2'" >&2; exit 2; }; }

args=("$@")
# --quick first, so that explicit options after or before it override its settings.
for a in "$@"; do
  if [ "$a" = --quick ]; then
    QUICK=1 OUT=bench/quality-quick STEPS=20 RESOLUTION=32 CH=8 BATCH=8
    TYPES="dense;smyrf:hashes=2,q_cluster=128,k_cluster=32" IMAGES=256 EVAL_EVERY=10 EVAL_N=64
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
    --seed) need_value "$@"; [[ "$2" =~ ^[0-9]+$ ]] || { echo "quality.sh: --seed takes an integer >= 0" >&2; exit 2; }
            SEED="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "quality.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$RESOLUTION" in 32|64|128|256) ;; *) echo "quality.sh: --resolution takes 32, 64, 128 or 256" >&2; exit 2 ;; esac
IFS=';' read -r -a types <<<"$TYPES"
[ ${#types[@]} -ge 1 ] || { echo "quality.sh: --types is empty" >&2; exit 2; }

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
  "$BIN" info --model --resolution "$RESOLUTION" --ch "$CH" --g-attn "$RESOLUTION" --d-attn= --attention "$t" \
    >/dev/null || { echo "quality.sh: --types: '$t' does not give a valid model (see the message above)" >&2; exit 2; }
done

DATA="$OUT/synthetic${RESOLUTION}_${IMAGES}.lgd"
[ -f "$DATA" ] || "$BIN" prepare --synthetic "$IMAGES" --resolution "$RESOLUTION" --output "$DATA"

slug() { echo "$1" | tr ':=,' '___' ; }  # quality_report.py names runs the same way

# Training, resumed where a run stopped. Each call's log and /usr/bin/time report are kept.
for t in "${types[@]}"; do
  run="$OUT/runs/$(slug "$t")"
  resume=()
  if [ -f "$run/latest" ]; then
    done_step=$("$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" \
                "$run/$(cat "$run/latest")/manifest.json" 2>/dev/null || echo 0)
    if [ "$done_step" -ge "$STEPS" ]; then echo "quality: $t already trained to step $done_step"; continue; fi
    resume=(--resume)
  fi
  part=$(ls "$OUT/logs" | grep -c "^$(slug "$t")\.train\.[0-9]*\.log$" || true)
  echo "quality: training $t (part $part) -> $run"
  /usr/bin/time -v -o "$OUT/logs/$(slug "$t").train.$part.time" \
    "$BIN" train --data "$DATA" --out "$run" "${resume[@]}" --resolution "$RESOLUTION" --ch "$CH" \
      --g-attn "$RESOLUTION" --d-attn= --attention "$t" --batch "$BATCH" --steps "$STEPS" --seed "$SEED" \
      --device cpu --eval-every "$EVAL_EVERY" --eval-n "$EVAL_N" --sample-every "$EVAL_EVERY" \
      --checkpoint-every "$EVAL_EVERY" --keep 2 --log-every "$(( EVAL_EVERY < 50 ? EVAL_EVERY : 50 ))" \
      >"$OUT/logs/$(slug "$t").train.$part.log" 2>&1 \
    || { tail -20 "$OUT/logs/$(slug "$t").train.$part.log"; exit 1; }
done

# The swap matrix: each final model sampled with every type, on the same latents.
all_types=$(IFS=,; echo "${types[*]}")
for t in "${types[@]}"; do
  json="$OUT/logs/$(slug "$t").swap.json"
  [ -f "$json" ] && continue
  echo "quality: swap report of $t"
  /usr/bin/time -v -o "$OUT/logs/$(slug "$t").swap.time" \
    "$BIN" metrics --checkpoint "$OUT/runs/$(slug "$t")" --real "$DATA" --compare-attention "$all_types" \
    --n "$EVAL_N" --seed 0 --device cpu --json "$json.tmp" >"$OUT/logs/$(slug "$t").swap.log" 2>&1 \
    || { tail -20 "$OUT/logs/$(slug "$t").swap.log"; exit 1; }
  mv "$json.tmp" "$json"
done

# The noise floor: the first type's final checkpoint, three other sample seeds.
first="$(slug "${types[0]}")"
for s in 1 2 3; do
  json="$OUT/logs/$first.seed$s.json"
  [ -f "$json" ] && continue
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
"$VENV/bin/python" scripts/quality_report.py --out "$OUT" --types "$TYPES" --steps "$STEPS" --eval-n "$EVAL_N" \
  --command "scripts/quality.sh ${args[*]+"${args[*]}"}" --elapsed "$elapsed"
echo "quality: $OUT/README.md, $OUT/results.json, $OUT/fid.png, $OUT/grids.png"
