"""Throwaway measurement (issue 31 item 5): MoCo v2's augmentation as the project runs it (PIL) against
the same steps as torchvision v2 transforms on uint8 tensors, on one 500 x 375 image, one thread,
alternating rounds of 40 views, median images/s. Not used by training.

    python docs/results/loader_amd/tensor_vs_pil.py
"""

import time

import numpy as np
import torch
import torchvision.transforms.v2 as v2
from PIL import Image

from distill.data import mocov2_transform

torch.set_num_threads(1)
image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (375, 500, 3), dtype=np.uint8))
for size in (64, 224):
    pil = mocov2_transform(size)
    kernel = int(0.1 * size) // 2 * 2 + 1
    tensor = v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    pil(image), tensor(image)
    pil_rates, tensor_rates = [], []
    for _ in range(5):
        tic = time.perf_counter()
        for _ in range(40):
            pil(image)
        pil_rates.append(40 / (time.perf_counter() - tic))
        tic = time.perf_counter()
        for _ in range(40):
            tensor(image)
        tensor_rates.append(40 / (time.perf_counter() - tic))
    pil_rate, tensor_rate = np.median(pil_rates), np.median(tensor_rates)
    print(f"{size} px: PIL {pil_rate:.0f}, uint8 tensors {tensor_rate:.0f} images/s ({tensor_rate / pil_rate:.2f}x)")
