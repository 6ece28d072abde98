#!/usr/bin/env bash
# Install Detectron2 into the active Python environment, offline-friendly (package index only).
#
# Detectron2 has no release on the package index. sal-detectron2 0.7.2 is a wheel of the
# pure-Python Detectron2 0.7 code, tagged cp310; its compiled _C (for 3.10) is unused:
# Faster/Mask R-CNN C4 and FPN, NMS, ROIAlign and the COCO/VOC evaluators work without it
# (rotated boxes and deformable convolution do not). With a CUDA toolchain you may build
# the official release from source instead:
#   pip install 'git+https://github.com/facebookresearch/detectron2.git'
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d "$tmp" sal-detectron2==0.7.2
# The code is pure Python: retag the wheel so pip installs it for any Python 3.
mv "$tmp"/sal_detectron2-0.7.2-cp310-none-any.whl "$tmp"/sal_detectron2-0.7.2-py3-none-any.whl
pip install -q --no-deps "$tmp"/sal_detectron2-0.7.2-py3-none-any.whl
# Its pure-Python requirements (it was installed --no-deps: its metadata asks for numpy<2,
# which the rest of the stack does not need); setuptools<81 for pkg_resources.
pip install -q pycocotools termcolor yacs tabulate cloudpickle "omegaconf>=2.1,<2.4" "hydra-core>=1.1" \
    fvcore iopath "setuptools<81"
python -c "import detectron2; print('detectron2', detectron2.__version__, 'installed')"
