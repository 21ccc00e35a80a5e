#!/usr/bin/env bash
# FID/KID of the README demo's model at 300 and 600 steps, with its SMYRF attention and swapped to
# dense (bench/RESULTS.md records the figures): runs scripts/demo.sh (which keeps every 300th
# step's checkpoint), then `longgan metrics` swap reports against the demo's synthetic data.
#   LONGGAN_FID_N   samples per attention type (default 1000)
# On 2 CPU cores: the demo (~6 min), the data's 2,048 features once (cached beside the data), then
# 4 x LONGGAN_FID_N images through Inception.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${LONGGAN_DEMO_DIR:-demo}"
N="${LONGGAN_FID_N:-1000}"
scripts/demo.sh
BIN="${LONGGAN_BUILD_DIR:-build}/bin/longgan"
for step in 300 600; do
  checkpoint="$OUT/run/step-000$step"
  if [ ! -d "$checkpoint" ]; then
    echo "demo_fid.sh: $checkpoint is missing (a demo run made before it kept every 300th step):" \
         "remove $OUT/run and run this again" >&2
    exit 1
  fi
  "$BIN" metrics --checkpoint "$checkpoint" --real "$OUT/synthetic32.lgd" --compare-attention dense \
    --n "$N" --seed 0 --truncation 0 --device cpu --json "$OUT/fid_step$step.json"
done
echo "JSON: $OUT/fid_step300.json $OUT/fid_step600.json"
