#!/usr/bin/env bash
# G_ema's two forms on the demo's 32x32 settings (ch 16, batch 16, SMYRF in G and D, seed 1) with
# more data: FID of G_ema with BigGAN's former default (decay 0.9999 per step from step 1,000) and
# with the half-life default (docs/TRAINING.md: G_ema), and of G itself, at several steps; the grids of the
# last step side by side. Writes $OUT/results.md (the table) and $OUT/grids_stepNNNNNN.png.
#   LONGGAN_EMA_DIR     output folder (default ema_fid/)
#   LONGGAN_EMA_STEPS   steps scored, comma-separated, ascending (default 500,1000,2000,3000)
#   LONGGAN_EMA_IMAGES  synthetic images (default 8192)
#   LONGGAN_FID_N       samples per FID (default 1000)
# Both runs train the same G (the EMA does not feed back into training; the script checks that G.pt
# is byte-identical), so G is scored once. Runs resume where they stopped. On 2 CPU cores, the full
# setting: two trainings of 3,000 steps (~30 min each), the data's features once (~15 min), 12
# scores of 1,000 samples (~80 s each): about 1.5 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${LONGGAN_EMA_DIR:-ema_fid}"
STEPS="${LONGGAN_EMA_STEPS:-500,1000,2000,3000}"
IMAGES="${LONGGAN_EMA_IMAGES:-8192}"
N="${LONGGAN_FID_N:-1000}"
scripts/setup.sh
scripts/build.sh
BIN="${LONGGAN_BUILD_DIR:-build}/bin/longgan"
PYTHON="${LONGGAN_VENV:-$HOME/.cache/longgan/venv}/bin/python"
mkdir -p "$OUT"

IFS=, read -r -a steps <<<"$STEPS"
last="${steps[-1]}"
gcd() { local a=$1 b=$2; while [ "$b" -ne 0 ]; do set -- "$b" $((a % b)); a=$1; b=$2; done; echo "$a"; }
every="${steps[0]}"
for s in "${steps[@]}"; do every=$(gcd "$every" "$s"); done
step_dir() { printf 'step-%06d' "$1"; }

data="$OUT/synthetic32.lgd"
[ -f "$data" ] || "$BIN" prepare --synthetic "$IMAGES" --resolution 32 --output "$data"

train() {  # train RUN [flags...]: the demo's settings up to the last step, keeping every scored step
  local run="$OUT/$1"; shift
  local resume=()
  [ -f "$run/latest" ] && resume=(--resume)
  "$BIN" train --data "$data" --out "$run" "${resume[@]}" \
    --resolution 32 --ch 16 --batch 16 --steps "$last" --seed 1 --device cpu \
    --g-attn 32 --d-attn 16 --attention smyrf:hashes=2,q_cluster=256,k_cluster=64 \
    --sample-every "$every" --sample-weights g_ema,g --checkpoint-every "$every" --keep-every "$every" "$@"
}
train old --ema-decay 0.9999 --ema-start 1000
train new

for s in "${steps[@]}"; do
  if ! cmp -s "$OUT/old/$(step_dir "$s")/G.pt" "$OUT/new/$(step_dir "$s")/G.pt"; then
    echo "ema_fid.sh: G differs between the runs at step $s (it should not: the EMA does not feed back)" >&2
    exit 1
  fi
done

score() {  # score NAME RUN STEP WEIGHTS -> $OUT/fid/NAME_stepNNNNNN.json
  local json="$OUT/fid/$1_$(step_dir "$3").json"
  mkdir -p "$OUT/fid"
  [ -f "$json" ] || "$BIN" metrics --fake "$OUT/$2/$(step_dir "$3")" --real "$data" --weights "$4" \
    --n "$N" --seed 0 --truncation 0 --device cpu --json "$json" >/dev/null
  "$PYTHON" -c 'import json, sys; print("%.1f" % json.load(open(sys.argv[1]))["fid"])' "$json"
}

{
  echo "FID of $N samples against the $IMAGES training images (32x32, ch 16, batch 16, SMYRF; seed 1)."
  echo
  echo "| step | G_ema, decay 0.9999 from step 1,000 (old default) | G_ema, half-life (new default) | G |"
  echo "|---|---|---|---|"
  for s in "${steps[@]}"; do
    echo "| $s | $(score old old "$s" g_ema) | $(score new new "$s" g_ema) | $(score g new "$s" g) |"
  done
} >"$OUT/results.md"

# The grids of the last step: old G_ema | new G_ema | G, the same 36 latents.
for pair in "old old g_ema" "new new g_ema" "g new g"; do
  read -r name run weights <<<"$pair"
  "$BIN" sample --checkpoint "$OUT/$run/$(step_dir "$last")" --out "$OUT/grid_${name}.png" --weights "$weights" \
    --n 36 --seed 7 --truncation 0 --device cpu >/dev/null
done
grids="$OUT/grids_$(step_dir "$last").png"
"$PYTHON" - "$grids" "$OUT/grid_old.png" "$OUT/grid_new.png" "$OUT/grid_g.png" <<'EOF'
import sys
from PIL import Image
images = [Image.open(path).convert("RGB") for path in sys.argv[2:]]
gap = 8
out = Image.new("RGB", (sum(i.width for i in images) + gap * (len(images) - 1), max(i.height for i in images)), "white")
x = 0
for image in images:
    out.paste(image, (x, 0))
    x += image.width + gap
out.save(sys.argv[1])
EOF
echo "grids of step $last, left to right: G_ema old default | G_ema new default | G: $grids" >>"$OUT/results.md"
cat "$OUT/results.md"
