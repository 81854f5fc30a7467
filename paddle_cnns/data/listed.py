"""A folder of label lists (Train/Eval/Test.txt, labels.txt, stats.json) plus an images folder or Images.zip.

This is both the layout prepare_caltech16 writes and the AI Studio layout the article used.
"""
from __future__ import annotations

import os

from ..errors import DataError, NotPrepared
from .bundle import DataBundle, cached_bundle, read_stats
from .labels import CLASS_FILE, LIST_NAMES, SPLITS, find_list, first_per_class, read_class_names, read_list
from .store import check_present, has_images, open_store

STATS_FILE = "stats.json"


def load_listed(dataset: str, data_dir: str, image_size: int, *, cache_dir, augment, max_per_class, seed,
                not_prepared: NotPrepared | None = None, info: dict | None = None, progress=None,
                builder=cached_bundle) -> DataBundle:
    """Datasets from the label lists in data_dir. not_prepared: the error raised when nothing is there."""
    lists = {split: find_list(data_dir, split) for split in SPLITS}
    if lists["train"] is None or lists["eval"] is None:
        if not_prepared:
            raise not_prepared
        raise DataError(f"{data_dir} has no label lists: expected {LIST_NAMES['train'][0]}, {LIST_NAMES['eval'][0]} "
                        f"and {LIST_NAMES['test'][0]} ('relative/path.jpg label' per line) and {CLASS_FILE}")
    class_file = os.path.join(data_dir, CLASS_FILE)
    class_names = read_class_names(class_file) if os.path.exists(class_file) else None
    num_classes = len(class_names) if class_names else None
    entries = {}
    for split, path in lists.items():
        if path is None:
            continue
        full = read_list(path, num_classes)
        entries[split] = [full[i] for i in first_per_class([label for _, label in full], max_per_class)]
    if class_names is None:  # no labels.txt: classes are the ids seen, named by number
        num = 1 + max(label for split_entries in entries.values() for _, label in split_entries)
        class_names = [str(i) for i in range(num)]
    store = open_store(data_dir, [p for p, _ in entries["train"]])
    if not_prepared and not has_images(data_dir) and not any(store.has(p) for p, _ in entries["train"][:5]):
        raise not_prepared
    for split, split_entries in entries.items():
        check_present(store, split_entries, lists[split])
    stats = read_stats(os.path.join(data_dir, STATS_FILE), 3)
    extra = {"data_dir": data_dir, "max_per_class": max_per_class, **(info or {})}
    return builder(dataset, store, entries, class_names, image_size, cache_dir=cache_dir, augment=augment,
                   seed=seed, stats=stats, info=extra, progress=progress)
