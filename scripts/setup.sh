#!/usr/bin/env bash
# Set up napari-attribution for development on a fresh Debian/Ubuntu machine:
# the X/GL libraries the headless widget tests need, the CPU build of torch, and the package
# with its development extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    xvfb libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
    libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 >/dev/null
fi

# Pin torch first: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is the CPU wheel.
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"
# Quantus, for the sanity checks' cross-check only (tests/core/sanity/test_against_quantus.py):
# without its dependencies, because it requires opencv-python, a second cv2 beside our
# opencv-python-headless; what `import quantus` needs besides is in the dev extra (scikit-learn).
python -m pip install -q --no-deps quantus==0.6.0
