#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only, Debug-ish
# -O1 with frame pointers) into ${LONGGAN_SANITIZE_DIR:-build-sanitize} and runs it.
# A cold build of the whole project: ~20+ minutes on 2 cores. Extra arguments go to ctest
# (e.g. scripts/sanitize.sh -R PackedFormat).
#
# LibTorch itself is not instrumented, so ASan cannot see inside it; its allocator and intentional
# leaks at exit are why leak detection is off (detect_leaks=0). Any ASan/UBSan report fails the run
# (halt_on_error=1, UBSan -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${LONGGAN_SANITIZE_DIR:-build-sanitize}"
JOBS="${LONGGAN_JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLONGGAN_WITH_CUDA=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# GPU tests skip on a CPU build; the suite runs single-threaded per test binary to keep memory low.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${LONGGAN_TEST_JOBS:-2}" "$@"
