#!/usr/bin/env bash
# The test command: installs dependencies (scripts/setup.sh), builds, runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
start=$(date +%s)
scripts/build.sh
echo "build: $(( $(date +%s) - start )) s"
ctest --test-dir "${LONGGAN_BUILD_DIR:-build}" --output-on-failure -j "${LONGGAN_JOBS:-$(nproc)}"
