#!/usr/bin/env bash
# The README's main command: on a fresh machine, installs dependencies, builds, makes a synthetic
# 32x32 dataset, trains the small 32 preset with SMYRF attention over all 1,024 positions of the
# 32x32 feature maps for a few minutes on the CPU, then samples a grid with the trained attention
# type and with dense attention. Output in ${LONGGAN_DEMO_DIR:-demo/}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${LONGGAN_DEMO_DIR:-demo}"
STEPS="${LONGGAN_DEMO_STEPS:-600}"
scripts/setup.sh
scripts/build.sh
BIN="${LONGGAN_BUILD_DIR:-build}/bin/longgan"
mkdir -p "$OUT"

[ -f "$OUT/synthetic32.lgd" ] || "$BIN" prepare --synthetic 2048 --resolution 32 --output "$OUT/synthetic32.lgd"

resume=()
[ -f "$OUT/run/latest" ] && resume=(--resume)
"$BIN" train --data "$OUT/synthetic32.lgd" --out "$OUT/run" "${resume[@]}" \
  --resolution 32 --ch 16 --batch 16 --steps "$STEPS" --seed 1 --device cpu \
  --g-attn 32 --d-attn 16 --attention smyrf:hashes=2,q_cluster=256,k_cluster=64 \
  --sample-every 50 --checkpoint-every 100 --keep-every 300

# No truncation: it trades variety for fidelity on a well-trained model; a few minutes' model
# shows what it learned better at full variety.
"$BIN" sample --checkpoint "$OUT/run" --out "$OUT/samples_smyrf.png" --n 36 --seed 7 --truncation 0
"$BIN" sample --checkpoint "$OUT/run" --out "$OUT/samples_dense.png" --n 36 --seed 7 --truncation 0 --attention dense
"$BIN" sample --checkpoint "$OUT/run" --out "$OUT/compare.png" --n 8 --seed 7 --truncation 0 \
  --compare-attention smyrf,dense

echo
echo "Training samples over time: $OUT/run/samples/"
echo "Trained (smyrf) attention:  $OUT/samples_smyrf.png"
echo "Same z, dense attention:    $OUT/samples_dense.png"
echo "Side by side:               $OUT/compare.png"
