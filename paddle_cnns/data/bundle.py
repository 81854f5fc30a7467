"""DataBundle, and turning split lists of image files into cached ArrayDatasets."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .cache import cache_key, channel_stats, load_or_build
from .dataset import ArrayDataset
from .images import decode_image
from .labels import SPLITS
from .store import fingerprint

DEFAULT_CACHE_DIR = os.path.join("data", "cache")


@dataclass
class DataBundle:
    """The splits of one dataset at one image size, and what a model and a report need to know."""
    train: ArrayDataset
    eval: ArrayDataset
    test: ArrayDataset | None
    num_classes: int
    in_channels: int
    class_names: list[str]
    info: dict = field(default_factory=dict)


def read_stats(path: str, channels: int) -> tuple[list[float], list[float]] | None:
    """mean/std from a stats.json next to the lists, or None when there is none."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
        mean = [float(v) for v in stats["mean"]]
        std = [float(v) for v in stats["std"]]
    except (OSError, ValueError, KeyError, TypeError):
        mean = std = []
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise DataError(f"{path} is malformed: expected {channels} means and {channels} positive stds; "
                        "delete it to recompute them from the train split")
    return mean, std


def data_fingerprint(bundle: DataBundle) -> str:
    """What makes two datasets the same data for a run: the class names, every split's labels, and
    the split lists (paths, file sizes) or, for generated and IDX data, the source's own checksum.

    File modification times are left out on purpose: a copied data folder is the same data.
    """
    h = hashlib.sha256(json.dumps({"classes": list(bundle.class_names),
                                   "lists": bundle.info.get("lists_digest") or bundle.info.get("source_checksum")},
                                  sort_keys=True).encode())
    for split in SPLITS:
        data = getattr(bundle, split)
        if data is not None:
            h.update(split.encode() + np.ascontiguousarray(data.labels, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


def _lists_digest(store, split_entries: dict) -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        for path, label in split_entries.get(split) or ():
            h.update(f"{split}\t{path}\t{label}\t{store.size(path)}\n".encode())
    return h.hexdigest()


def cached_bundle(dataset: str, store, split_entries: dict, class_names: list[str], image_size: int, *,
                  cache_dir: str | None, augment: bool, seed: int, stats=None, channels: int = 3,
                  info: dict | None = None, advice: str = "remove it from the label list",
                  progress=None) -> DataBundle:
    """Decode each split (or read it from the cache) and wrap it as ArrayDatasets.

    split_entries: split -> [(path in store, label)] (test may be missing). stats: (mean, std) or
    None to compute them on the train split (kept in the train cache's metadata). advice: what
    to do about an image that cannot be decoded, in terms of the dataset's kind. progress: as
    load_or_build's.
    """
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    arrays, metas, checksums = {}, {}, {}
    for split in SPLITS:
        entries = split_entries.get(split)
        if entries is None:
            continue
        checksums[split] = fingerprint(store, entries)
        key = cache_key(dataset=dataset, split=split, image_size=image_size, channels=channels,
                        checksum=checksums[split])
        where = store.description

        def decode(i, entries=entries, where=where):
            path = entries[i][0]
            return decode_image(store.read(path), f"{path} (in {where})", image_size, channels, advice=advice)

        arrays[split], metas[split] = load_or_build(
            cache_dir, f"{dataset}-{split}-{image_size}px", key, (len(entries), channels, image_size, image_size),
            decode, {"dataset": dataset, "split": split, "image_size": image_size, "source": where},
            with_stats=split == "train" and stats is None, progress=progress)
    if stats is None:
        meta = metas["train"]
        stats = (meta["mean"], meta["std"]) if "mean" in meta else channel_stats(arrays["train"])
    mean, std = stats
    datasets = {split: ArrayDataset(arrays[split], [label for _, label in split_entries[split]], mean, std,
                                    augment=augment and split == "train", seed=seed)
                for split in arrays}
    checksum = hashlib.sha256("".join(checksums[s] for s in checksums).encode()).hexdigest()[:16]
    info = {
        "dataset": dataset, "image_size": image_size, "in_channels": channels,
        "num_classes": len(class_names), "splits": {s: len(d) for s, d in datasets.items()},
        "source": store.description, "source_checksum": checksum,
        "lists_digest": _lists_digest(store, split_entries),
        "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std],
        "augment": augment, "seed": seed,
        "cache": {s: {"built": m["built"], "build_seconds": m.get("build_seconds"),
                      "bytes": int(np.prod(arrays[s].shape)), **({"repaired": m["repaired"]} if "repaired" in m else {})}
                  for s, m in metas.items()},
        "skipped_files": 0, **(info or {}),
    }
    return DataBundle(datasets["train"], datasets["eval"], datasets.get("test"), len(class_names),
                      channels, list(class_names), info)
