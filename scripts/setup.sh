#!/usr/bin/env bash
# Installs everything LongGAN builds against. Idempotent: quiet when all is in place.
#   Debian packages: OpenCV (core, imgproc, imgcodecs), cxxopts, stb, GoogleTest, nlohmann-json, ninja.
#   LibTorch: the pinned torch wheel from the Python registry, in a virtual environment
#   outside the clone ($LONGGAN_VENV, default ~/.cache/longgan/venv) so CI runs reuse it.
set -euo pipefail

TORCH_VERSION="2.11.0"
VENV="${LONGGAN_VENV:-$HOME/.cache/longgan/venv}"
DEB_PACKAGES=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
              libcxxopts-dev libstb-dev libgtest-dev nlohmann-json3-dev ninja-build)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"
fi
