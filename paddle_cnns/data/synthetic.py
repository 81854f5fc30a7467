"""A small generated dataset, learnable in a few dozen steps: for tests and offline smoke runs.

Class k is a sinusoidal grating at angle k*180/K degrees, tinted with hue k/K, at a random phase
and frequency, plus Gaussian noise. Generated from a fixed seed, so every run sees the same
images; it is only ever used when asked for by name, never in place of a missing dataset.
"""
from __future__ import annotations

import colorsys

import numpy as np

from .bundle import DataBundle
from .cache import channel_stats
from .dataset import ArrayDataset
from .labels import first_per_class

NUM_CLASSES = 10
PER_CLASS = {"train": 32, "eval": 8, "test": 8}
GENERATOR_SEED = 0
NOISE = 24.0  # std of the pixel noise, on the 0..255 scale


def generate(split: str, image_size: int, num_classes: int = NUM_CLASSES,
             per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 3, S, S] and int64 [N], classes in blocks of per_class images."""
    per_class = per_class or PER_CLASS[split]
    coords = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((num_classes * per_class, 3, image_size, image_size), dtype=np.uint8)
    for k in range(num_classes):
        rng = np.random.default_rng([GENERATOR_SEED, SPLIT_IDS[split], k])
        angle = np.pi * k / num_classes
        tint = np.asarray(colorsys.hsv_to_rgb(k / num_classes, 0.8, 1.0), dtype=np.float32)
        along = xx * np.cos(angle) + yy * np.sin(angle)  # S x S
        phase = rng.uniform(0, 2 * np.pi, per_class).astype(np.float32)
        cycles = rng.uniform(2.5, 4.0, per_class).astype(np.float32)
        wave = np.sin(2 * np.pi * cycles[:, None, None] * along + phase[:, None, None])  # n x S x S
        pixels = 128 + 50 * wave[:, None] * tint[None, :, None, None] + 40 * (tint[None, :, None, None] - 0.5)
        pixels += rng.normal(0, NOISE, pixels.shape).astype(np.float32)
        images[k * per_class:(k + 1) * per_class] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    return images, labels


SPLIT_IDS = {"train": 0, "eval": 1, "test": 2}


def load_synthetic(image_size: int, *, augment, max_per_class, seed) -> DataBundle:
    """A generated 10-class dataset of simple patterns (for smoke runs; never a stand-in for real data)."""
    splits = {}
    for split in PER_CLASS:
        images, labels = generate(split, image_size)
        keep = first_per_class(labels.tolist(), max_per_class)
        splits[split] = (images[keep], labels[keep])
    mean, std = channel_stats(splits["train"][0])
    datasets = {split: ArrayDataset(images, labels, mean, std, augment=augment and split == "train", seed=seed)
                for split, (images, labels) in splits.items()}
    names = [f"pattern_{k}" for k in range(NUM_CLASSES)]
    info = {"dataset": "synthetic", "image_size": image_size, "in_channels": 3, "num_classes": NUM_CLASSES,
            "splits": {s: len(d) for s, d in datasets.items()}, "source": "generated",
            "source_checksum": f"synthetic-seed{GENERATOR_SEED}", "mean": [round(m, 6) for m in mean],
            "std": [round(s, 6) for s in std], "augment": augment, "seed": seed, "max_per_class": max_per_class,
            "skipped_files": 0}
    return DataBundle(datasets["train"], datasets["eval"], datasets["test"], NUM_CLASSES, 3, names, info)
