#!/usr/bin/env bash
# Runs on the GPU machine (the device tool), from the repository root, with .gpu_deps/ carried
# (made by scripts/pack_gpu_deps.sh): configures and builds LongGAN against the machine's python3
# torch, runs the kernel and attention tests (every fused path against its reference on CUDA, and
# the CPU tests of those suites) and the attention block's tests, then the attention benchmarks and
# the layer benchmark of G's attention block under bf16 autocast. Logs and JSON go to $OUT.
#   scripts/gpu.sh [all|build|test|bench]    (default all; the build dir persists on a warm machine)
set -uo pipefail
cd "$(dirname "$0")/.."
STEP="${1:-all}"
OUT="${OUT:-runs/gpu}"
BUILD_DIR="${LONGGAN_BUILD_DIR:-build}"
DEPS="$PWD/.gpu_deps"
mkdir -p "$OUT"

build() {
  [ -f "$DEPS/include/cxxopts.hpp" ] && [ -f "$DEPS/googletest/CMakeLists.txt" ] || {
    echo "gpu.sh: $DEPS is incomplete; run scripts/pack_gpu_deps.sh and carry .gpu_deps" >&2
    return 1
  }
  { nvidia-smi; command -v nvcc && nvcc --version
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
  } >"$OUT/env.log" 2>&1
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLONGGAN_PYTHON="$(which python3)" \
    -DLONGGAN_WITH_OPENCV=OFF -DLONGGAN_EXTRA_INCLUDE_DIR="$DEPS/include" \
    -DLONGGAN_GTEST_SOURCE_DIR="$DEPS/googletest" >"$OUT/configure.log" 2>&1 \
    || { tail -40 "$OUT/configure.log"; return 1; }
  grep -E "^-- LongGAN:" "$OUT/configure.log"
  local start=$SECONDS
  ninja -C "$BUILD_DIR" -j "${LONGGAN_JOBS:-16}" longgan longgan_kernels_tests longgan_attention_tests \
    longgan_gan_tests >"$OUT/build.log" 2>&1 \
    || { grep -B2 -A12 -m5 "error" "$OUT/build.log" | head -120; return 1; }
  echo "build: $((SECONDS - start)) s"
}

run_tests() {
  local status=0 suite
  for suite in kernels attention gan; do
    # gan: the attention block and spectral norm only (the trainer's tests are CPU tests).
    local filter='*'
    [ "$suite" = gan ] && filter='SelfAttention.*:SpectralNorm.*'
    "$BUILD_DIR/tests/longgan_${suite}_tests" --gtest_filter="$filter" --gtest_output="json:$OUT/${suite}_tests.json" \
      >"$OUT/${suite}_tests.log" 2>&1 || status=1
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|Failure|error:" "$OUT/${suite}_tests.log" | head -40
  done
  return $status
}

bench() {
  local types=dense,smyrf,clustered,improved_clustered status=0 longgan="$BUILD_DIR/bin/longgan"
  # BigGAN shapes in bf16: one head, Dqk 16, Dv 64, M = N / 4; SMYRF with the CelebA-HQ budget.
  "$longgan" bench attention --device cuda --dtype bf16 --types "$types" \
    --spec smyrf:hashes=4,q_cluster=2048,k_cluster=512 --spec smyrf:hashes=2,q_cluster=1024,k_cluster=256 \
    --n 16384,65536 --batch 8 --dqk 16 --dv 64 --phases \
    --json "$OUT/bench_biggan.json" >"$OUT/bench_biggan.log" 2>&1 || status=1
  # G's attention block as training runs it (bf16 autocast), at 128x128 and 256x256 (ch 64: C 64).
  "$longgan" bench layer --device cuda --resolution 128 --ch 64 --batch 8 --types "$types" \
    --spec smyrf:hashes=4,q_cluster=2048,k_cluster=512 --phases \
    --json "$OUT/bench_layer128.json" >"$OUT/bench_layer128.log" 2>&1 || status=1
  "$longgan" bench layer --device cuda --resolution 256 --ch 64 --batch 8 --types dense,smyrf \
    --spec smyrf:hashes=4,q_cluster=2048,k_cluster=512 --phases \
    --json "$OUT/bench_layer256.json" >"$OUT/bench_layer256.log" 2>&1 || status=1
  # Transformer shape: 8 heads of 64.
  "$longgan" bench attention --device cuda --dtype bf16 --types "$types" --n 4096,16384 --heads 8 --dqk 64 \
    --dv 64 --json "$OUT/bench_transformer.json" >"$OUT/bench_transformer.log" 2>&1 || status=1
  tail -30 "$OUT/bench_biggan.log" "$OUT/bench_transformer.log" "$OUT/bench_layer128.log" "$OUT/bench_layer256.log"
  return $status
}

case "$STEP" in
  build) build ;;
  test) run_tests ;;
  bench) bench ;;
  all)
    build || exit 1
    status=0
    run_tests || status=1
    bench || status=1
    exit $status
    ;;
  *) echo "gpu.sh: unknown step '$STEP' (use all, build, test or bench)" >&2; exit 2 ;;
esac
