#!/usr/bin/env bash
# Copies the header-only dependencies and GoogleTest's sources, which the GPU machine lacks, into
# .gpu_deps/ (git-ignored) so that a device call can carry that folder:
#   .gpu_deps/include/{nlohmann/,cxxopts.hpp,stb/,gloo/,xxhash.h} -> -DLONGGAN_EXTRA_INCLUDE_DIR
#   .gpu_deps/googletest/                            -> -DLONGGAN_GTEST_SOURCE_DIR
# Then run scripts/gpu.sh on the GPU machine (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.gpu_deps}"
for path in /usr/include/nlohmann /usr/include/cxxopts.hpp /usr/include/xxhash.h /usr/include/stb /usr/include/gloo \
    /usr/src/googletest; do
  [ -e "$path" ] || { echo "pack_gpu_deps.sh: $path is missing; run scripts/setup.sh first" >&2; exit 1; }
done
rm -rf "$DEST"
mkdir -p "$DEST/include"
cp -r /usr/include/nlohmann "$DEST/include/"
cp /usr/include/cxxopts.hpp "$DEST/include/"
cp /usr/include/xxhash.h "$DEST/include/"  # header-only (XXH_INLINE_ALL)
cp -r /usr/include/stb "$DEST/include/"
cp -r /usr/include/gloo "$DEST/include/"  # c10d Gloo backend (multi-process CPU training)
cp -r /usr/src/googletest "$DEST/googletest"
du -sh "$DEST"
