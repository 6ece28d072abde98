#!/usr/bin/env bash
# Teacher centring, second distillation seed (train.seed=1): plain and centred SEED at step 512 of
# the 2,048-step schedule, the same cached teacher views, then the stamps probe of both. Resumable.
set -euo pipefail
cd /work/main; . .venv/bin/activate
E=/root/exp/center2
common="data.num_workers=1 train.tensorboard=false optim.epochs=256 optim.warmup_epochs=4 train.max_steps=512 train.seed=1 teacher.cache_dir=$E/tcache"
python tools/distill.py --config configs/distill/stamps.yaml --resume $common train.output_dir=$E/seed_s1
python tools/distill.py --config configs/distill/stamps.yaml --resume $common distill.teacher_centering=true train.output_dir=$E/seed_center_s1
for r in seed_s1 seed_center_s1; do
  python tools/transfer_cls.py --config configs/transfer/cls/stamps.yaml model.weights=$E/$r/student.pth \
      model.name=${r}_2048sched_at512 output_dir=$E/cls linear.n_jobs=2
done
