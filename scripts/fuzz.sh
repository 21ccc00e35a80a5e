#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (+ ASan and UBSan) into
# ${LONGGAN_FUZZ_DIR:-build-fuzz} and runs each for ${LONGGAN_FUZZ_SECONDS:-60} seconds, starting
# from the seed corpus in tests/fuzz/corpus/<name> (new inputs go to build-fuzz/corpus/<name>;
# crashes to build-fuzz/findings/<name>/). Exit status: non-zero when a harness found a crash.
#
# Needs clang and libFuzzer (Debian: apt-get install clang; scripts/setup.sh does not install it,
# since the normal build uses g++). The libraries are compiled again with clang: a cold build.
# Usage: scripts/fuzz.sh [harness...]   (default: lgd manifest attention_spec config)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null; then
  echo "scripts/fuzz.sh needs clang++ with libFuzzer: sudo apt-get install clang" >&2
  exit 2
fi
BUILD_DIR="${LONGGAN_FUZZ_DIR:-build-fuzz}"
JOBS="${LONGGAN_JOBS:-$(nproc)}"
SECONDS_EACH="${LONGGAN_FUZZ_SECONDS:-60}"
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(lgd manifest attention_spec config)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLONGGAN_WITH_CUDA=OFF -DLONGGAN_BUILD_TESTS=OFF -DLONGGAN_BUILD_FUZZERS=ON \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target $(printf '%s_fuzz ' "${harnesses[@]}")
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
status=0
for name in "${harnesses[@]}"; do
  mkdir -p "$BUILD_DIR/corpus/$name" "$BUILD_DIR/findings/$name"
  echo "== $name: ${SECONDS_EACH}s"
  if ! "$BUILD_DIR/fuzz/${name}_fuzz" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 \
      -artifact_prefix="$BUILD_DIR/findings/$name/" "$BUILD_DIR/corpus/$name" "tests/fuzz/corpus/$name"; then
    echo "== $name: FINDING, see $BUILD_DIR/findings/$name/" >&2
    status=1
  fi
done
exit $status
