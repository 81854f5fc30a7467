"""The streaming data path: JPEGs read and decoded per batch by paddle.io.DataLoader workers, no decoded cache.

For folders whose decoded cache would be too large (ImageNet at 224 px is ~190 GB as uint8).
Memory stays bounded whatever the folder's size: the datasets hold file names and labels only,
and the loader keeps at most prefetch_factor x workers batches in flight.

Preprocessing is the ImageNet GoogLeNet-BN write-up's: for training (augment) a random resized
crop (Szegedy et al. 2014's "inception crop": 8-100% of the area, aspect ratio 3/4-4/3), a
horizontal flip with probability 1/2 and a small rotation (+-10 degrees); for evaluation (and
training without augment) the shorter side resized to S / 0.875 (256 for 224) and the centre
S x S cropped. Every random choice is drawn from np.random.default_rng([seed, epoch, index]),
so the images of an epoch do not depend on the number of workers, on which worker reads
which image, or on the number of ranks: deterministic by seed and epoch, and resumable.
"""
from __future__ import annotations

import math
import os

import numpy as np
import paddle
from PIL import Image, ImageOps

from .bundle import DataBundle, _lists_digest
from .cache import stats_from_histogram
from .dataset import ROTATION_DEGREES
from .images import IMAGE_EXTENSIONS, open_image
from .labels import SPLITS, find_list, read_list
from .loader import BatchLoader
from .store import FolderStore, ZipStore

CROP_SCALE = (0.08, 1.0)            # fraction of the image's area a random crop keeps
CROP_RATIO = (3 / 4, 4 / 3)         # its aspect ratio range
EVAL_CROP = 0.875                   # centre crop S of the shorter side resized to S / 0.875
STATS_SAMPLE = 256                  # train images mean/std are estimated from when no stats.json exists


def inception_crop(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """A random (left, top, right, bottom) box of 8-100% of the area, aspect 3/4-4/3; the centre square after 10 misses."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return centre_box(width, height, min(width, height))


def centre_box(width: int, height: int, side: float) -> tuple[float, float, float, float]:
    """The side x side box in the middle of a width x height image."""
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def train_image(image: Image.Image, size: int, rng: np.random.Generator, fill) -> Image.Image:
    """Random resized crop to size x size, flip with probability 1/2, rotation uniform in +-10 degrees."""
    image = image.resize((size, size), Image.BILINEAR, box=inception_crop(rng, *image.size))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return image.rotate(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES), resample=Image.BILINEAR, fillcolor=fill)


def eval_image(image: Image.Image, size: int) -> Image.Image:
    """The centre size x size crop of the image resized to a shorter side of size / 0.875, in one resampling."""
    width, height = image.size
    return image.resize((size, size), Image.BILINEAR, box=centre_box(width, height, min(width, height) * EVAL_CROP))


class StreamDataset(paddle.io.Dataset):
    """Images read from a folder or zip by (relative path, label), served as float32 [3, S, S] and int64.

    An item is an index or (epoch, index): the loader passes the epoch along with each index so
    that worker processes never depend on state set in the parent after they started.
    """

    streamed = True  # make_loader gives these a StreamLoader

    def __init__(self, store, entries: list, image_size: int, mean, std, *, augment: bool = False,
                 seed: int = 0, workers: int = 0):
        super().__init__()
        # A zip is reopened in each process (a ZipFile shared across fork shares one file offset).
        self._store_spec = ("zip", store.description) if isinstance(store, ZipStore) else ("folder", store.root)
        self._store, self._pid = None, None
        self.description = store.description
        self.paths = [path for path, _ in entries]
        self.labels = np.asarray([label for _, label in entries], dtype=np.int64)
        self.image_size, self.augment, self.seed, self.epoch = int(image_size), bool(augment), int(seed), 0
        self.workers = int(workers)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3)  # per channel, as ArrayDataset's
        self.std = np.maximum(np.asarray(std, dtype=np.float32).reshape(3), 1 / 255)
        self.fill = tuple(int(round(255 * m)) for m in self.mean)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation pixels() draws when it is not given one."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def _open(self):
        if self._store is None or self._pid != os.getpid():
            kind, where = self._store_spec
            self._store, self._pid = (ZipStore(where) if kind == "zip" else FolderStore(where)), os.getpid()
        return self._store

    def pixels(self, index: int, epoch: int | None = None) -> np.ndarray:
        """uint8 [3, S, S]: image `index` as the model sees it in `epoch` (before normalising)."""
        path = self.paths[index]
        image = open_image(self._open().read(path), f"{path} (in {self.description})").convert("RGB")
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch, int(index)])
            image = train_image(image, self.image_size, rng, self.fill)
        else:
            image = eval_image(image, self.image_size)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)

    def __getitem__(self, item):
        epoch, index = item if isinstance(item, tuple) else (None, item)
        x = (self.pixels(int(index), epoch).astype(np.float32) / 255.0 - self.mean[:, None, None]) / self.std[:, None, None]
        return x.astype(np.float32), self.labels[int(index)]


class StreamLoader(BatchLoader):
    """Batches of a StreamDataset from paddle.io.DataLoader workers, in BatchLoader's order.

    BatchLoader's global batches (a function of seed and epoch) and slicing per rank, the same
    (x float32 [B, 3, S, S], y int64 [B]) tensors; only the decoding moves to the workers.
    """

    def __init__(self, dataset: StreamDataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1, workers: int | None = None):
        super().__init__(dataset, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last,
                         rank=rank, world_size=world_size)
        self.workers = dataset.workers if workers is None else int(workers)

    def __iter__(self):
        self.dataset.set_epoch(self.epoch)
        sampler = [[(self.epoch, int(i)) for i in part] for part in self.batches()]
        # A fresh DataLoader per epoch: its workers start from this epoch's sampler and end with it.
        loader = paddle.io.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.workers,
                                      return_list=True)
        for x, y in loader:
            yield x, y.reshape([-1])


def sample_stats(dataset: StreamDataset, sample: int = STATS_SAMPLE) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of up to `sample` train images (a fixed choice), centre-cropped."""
    n = len(dataset)
    chosen = np.sort(np.random.default_rng(0).choice(n, size=min(sample, n), replace=False))
    counts = np.zeros((3, 256), dtype=np.int64)
    augment, dataset.augment = dataset.augment, False
    try:
        for i in chosen:
            pixels = dataset.pixels(int(i))
            for c in range(3):
                counts[c] += np.bincount(pixels[c].ravel(), minlength=256)
    finally:
        dataset.augment = augment
    return stats_from_histogram(counts)


def streamed_bundle(dataset: str, store, split_entries: dict, class_names: list, image_size: int, *,
                    cache_dir=None, augment: bool, seed: int, stats=None, channels: int = 3,
                    info: dict | None = None, advice: str = "", progress=None, workers: int = 0) -> DataBundle:
    """StreamDatasets for each split: cached_bundle's counterpart, decoding nothing up front.

    stats: (mean, std), or None to estimate them from a fixed sample of train images. The
    split lists are fingerprinted as cached_bundle does (the same data is the same data).
    """
    del cache_dir, advice, progress  # nothing is cached or decoded here; cached_bundle's signature
    if channels != 3:
        raise ValueError("the streaming data path reads RGB images only")
    splits = {s: e for s, e in split_entries.items() if e is not None}
    make = lambda entries, mean, std, aug: StreamDataset(store, entries, image_size, mean, std,  # noqa: E731
                                                          augment=aug, seed=seed, workers=workers)
    if stats is None:
        stats = sample_stats(make(splits["train"], [0.5] * 3, [1.0] * 3, False))
    mean, std = stats
    datasets = {s: make(e, mean, std, augment and s == "train") for s, e in splits.items()}
    full = {
        "dataset": dataset, "image_size": image_size, "in_channels": 3, "num_classes": len(class_names),
        "splits": {s: len(d) for s, d in datasets.items()}, "source": store.description,
        "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std],
        "augment": augment, "seed": seed, "pipeline": "stream", "loader_workers": workers,
        "lists_digest": _lists_digest(store, splits),
        "skipped_files": 0, **(info or {}),
    }
    return DataBundle(datasets["train"], datasets["eval"], datasets.get("test"), len(class_names), 3,
                      list(class_names), full)


def decoded_bytes(name: str, data_dir: str | None, image_size: int, max_per_class: int | None = None) -> int | None:
    """What the decoded uint8 cache of every split would take, counted from the file names alone.

    For 'folder' (ImageNet-style class folders) and label-list datasets ('caltech16' prepared or in
    the AI Studio layout); None for the others, whose caches are small.
    """
    from .folder import DEFAULT_DIR as FOLDER_DIR, SPLIT_FOLDERS

    def capped(counts) -> int:
        return sum(min(c, max_per_class) if max_per_class else c for c in counts)

    per_image = 3 * image_size * image_size
    if name == "folder":
        root, total = data_dir or FOLDER_DIR, 0
        for split in SPLIT_FOLDERS.values():
            split_dir = os.path.join(root, split)
            if not os.path.isdir(split_dir):
                continue
            with os.scandir(split_dir) as classes:
                total += capped(sum(1 for _, _, files in os.walk(c.path) for f in files
                                    if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
                                for c in classes if c.is_dir())
        return total * per_image
    if name == "caltech16" and data_dir and os.path.isdir(data_dir):
        lists = [find_list(data_dir, split) for split in SPLITS]
        if None in lists[:2]:
            return None
        total = 0
        for path in filter(None, lists):
            labels = [label for _, label in read_list(path, None)]
            total += capped(np.bincount(labels).tolist() if labels else [])
        return total * per_image
    return None
