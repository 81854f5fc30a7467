"""ImageNet-style folders: train/<class>/*.jpg, val/<class>/*.jpg and optionally test/<class>/*.jpg."""
from __future__ import annotations

import os

from paddle.vision.datasets import DatasetFolder

from ..errors import DataError
from .bundle import DataBundle, cached_bundle
from .images import IMAGE_EXTENSIONS
from .labels import first_per_class
from .store import FolderStore

DEFAULT_DIR = os.path.join("data", "folder")
SPLIT_FOLDERS = {"train": "train", "eval": "val", "test": "test"}  # val is the eval split


def _scan(split_dir: str) -> tuple[list[str], list[tuple[str, str]], int]:
    """Classes, (path, class name) samples and the number of skipped non-image files."""
    try:
        folder = DatasetFolder(split_dir, extensions=IMAGE_EXTENSIONS)  # paddle's scan: sorted classes
    except RuntimeError:
        raise DataError(f"{split_dir} has no images ({', '.join(IMAGE_EXTENSIONS)}) in class subfolders; "
                        "expected <class>/<image> inside it") from None
    samples = [(path, folder.classes[label]) for path, label in folder.samples]
    empty = sorted(set(folder.classes) - {name for _, name in samples})
    if empty:  # it would be trained as one more class that never occurs
        raise DataError(f"class folder {os.path.join(split_dir, empty[0])} has no images "
                        f"({', '.join(IMAGE_EXTENSIONS)}){f' (nor have {len(empty) - 1} more)' if len(empty) > 1 else ''}; "
                        "add images or remove the folder")
    files = sum(len(names) for d in folder.classes for _, _, names in os.walk(os.path.join(split_dir, d)))
    return folder.classes, samples, files - len(samples)


def load_folder(data_dir: str | None, image_size: int, *, cache_dir, augment, max_per_class, seed,
                progress=None, builder=cached_bundle) -> DataBundle:
    """An ImageNet-style folder (train/<class>/*, val/<class>/*, optional test/) as a bundle:
    decoded into the cache, or streamed when `builder` is the streaming one."""
    data_dir = data_dir or DEFAULT_DIR
    for split in ("train", "eval"):
        if not os.path.isdir(os.path.join(data_dir, SPLIT_FOLDERS[split])):
            raise DataError(f"{data_dir} is not an image folder dataset: it needs train/<class>/*.jpg and "
                            f"val/<class>/*.jpg (missing {os.path.join(data_dir, SPLIT_FOLDERS[split])})")
    classes, train_samples, skipped = _scan(os.path.join(data_dir, "train"))
    if len(classes) < 2:
        raise DataError(f"{data_dir}/train has {len(classes)} class folder(s); a classifier needs at least 2")
    index = {name: i for i, name in enumerate(classes)}
    entries = {"train": train_samples}
    for split in ("eval", "test"):
        split_dir = os.path.join(data_dir, SPLIT_FOLDERS[split])
        if split == "test" and not os.path.isdir(split_dir):
            continue
        split_classes, entries[split], n_skipped = _scan(split_dir)
        skipped += n_skipped
        unknown = sorted(set(split_classes) - set(classes))
        if unknown:
            raise DataError(f"{split_dir} has class folder(s) not in train/: {', '.join(unknown[:3])}; "
                            "every class needs train images")
    for split, samples in entries.items():
        labeled = [(os.path.relpath(path, data_dir).replace(os.sep, "/"), index[name]) for path, name in samples]
        entries[split] = [labeled[i] for i in first_per_class([label for _, label in labeled], max_per_class)]
    return builder("folder", FolderStore(data_dir), entries, classes, image_size, cache_dir=cache_dir,
                   augment=augment, seed=seed, advice="replace the file or delete it from its class folder",
                   progress=progress,
                   info={"data_dir": data_dir, "max_per_class": max_per_class, "skipped_files": skipped})
