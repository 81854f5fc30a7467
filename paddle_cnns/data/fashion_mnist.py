"""Fashion-MNIST from its IDX files (.gz or not), downloaded from paddle's mirror when absent.

Train/eval: the official training set's last 10% (6,000 images; the file is in random order)
is the eval split, the rest trains; the official test set is the test split. Images stay at
28 x 28 in memory and are resized on the fly to the run's size (96 px for GoogLeNet, 224 for
AlexNet/VGG/NiN as in the d2l chapters): a 224 px copy of 70,000 images would take 3.5 GB.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib

import numpy as np

from ..errors import DataError
from .bundle import DataBundle
from .cache import channel_stats
from .dataset import ArrayDataset
from .download import download, file_digest
from .labels import first_per_class

DEFAULT_DIR = os.path.join("data", "fashion_mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
EVAL_FRACTION = 0.1
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned-byte data, 3 or 1 dimensions


def read_idx(path: str, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `dims` dimensions (3: images N x H x W, 1: labels N)."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path} ({str(e).splitlines()[0] if str(e) else type(e).__name__}); it is "
                        "truncated or damaged: download it again") from None
    if len(data) < 4 + 4 * dims or struct.unpack(">I", data[:4])[0] != IDX_MAGIC[dims]:
        raise DataError(f"{path} is not an IDX file of {dims}-d unsigned bytes (bad header); use the "
                        "original Fashion-MNIST files")
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    body = data[4 + 4 * dims:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path} holds {len(body)} bytes of data, its header says {int(np.prod(shape))} "
                        f"(shape {'x'.join(map(str, shape))}); it is truncated: download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def find_files(data_dir: str) -> dict[str, str | None]:
    """name -> path of each of the four files, .gz preferred; None when absent."""
    found = {}
    for names in FILES.values():
        for name in names:
            found[name] = next((os.path.join(data_dir, n) for n in (name + ".gz", name)
                                if os.path.isfile(os.path.join(data_dir, n))), None)
    return found


def download_fashion_mnist(dest_dir: str = DEFAULT_DIR) -> dict[str, str]:
    """The four .gz files from the mirror paddle.vision.datasets.FashionMNIST uses (md5-checked)."""
    from paddle.vision.datasets import FashionMNIST

    sources = {
        FILES["train"][0]: (FashionMNIST.TRAIN_IMAGE_URL, FashionMNIST.TRAIN_IMAGE_MD5),
        FILES["train"][1]: (FashionMNIST.TRAIN_LABEL_URL, FashionMNIST.TRAIN_LABEL_MD5),
        FILES["test"][0]: (FashionMNIST.TEST_IMAGE_URL, FashionMNIST.TEST_IMAGE_MD5),
        FILES["test"][1]: (FashionMNIST.TEST_LABEL_URL, FashionMNIST.TEST_LABEL_MD5),
    }
    return {name: download(url, dest_dir, filename=name + ".gz", md5=md5) for name, (url, md5) in sources.items()}


def read_split(paths: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images (N x 28 x 28 uint8) and labels from its two IDX files."""
    image_name, label_name = FILES[split]
    images = read_idx(paths[image_name], 3)
    labels = read_idx(paths[label_name], 1)
    if len(images) != len(labels):
        raise DataError(f"{paths[image_name]} has {len(images)} images but {paths[label_name]} has {len(labels)} "
                        "labels; use matching files")
    if len(images) == 0:
        raise DataError(f"{paths[image_name]} has no images; use the original Fashion-MNIST files")
    if labels.max() >= len(CLASS_NAMES):
        raise DataError(f"{paths[label_name]}: label {int(labels.max())} out of range 0..{len(CLASS_NAMES) - 1}; "
                        "use the original Fashion-MNIST files")
    return images, labels.astype(np.int64)


def resolve_files(data_dir: str | None, allow_download: bool = True) -> tuple[str, dict]:
    """The folder and the four files; downloads them into the default folder only when data_dir is None."""
    folder = data_dir or DEFAULT_DIR
    paths = find_files(folder)
    missing = [name for name, path in paths.items() if path is None]
    if missing and data_dir is None and allow_download:
        try:
            download_fashion_mnist(folder)
        except DataError as e:
            raise DataError(f"Fashion-MNIST is not in {folder} and downloading it failed ({e}); copy "
                            f"{', '.join(n + '.gz' for n in missing)} there", fix="data_dir") from None
        paths = find_files(folder)
        missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise DataError(f"Fashion-MNIST files missing in {folder}: {', '.join(n + '.gz' for n in missing)}; "
                        "copy them there (or let them be downloaded into the default folder)")
    return folder, paths


def load_fashion_mnist(data_dir: str | None, image_size: int, *, augment, max_per_class, seed,
                       cache_dir=None) -> DataBundle:
    """Fashion-MNIST's train/eval/test bundle at image_size (1 channel), from data_dir or its download."""
    folder, paths = resolve_files(data_dir)
    train_images, train_labels = read_split(paths, "train")
    test_images, test_labels = read_split(paths, "test")
    n_eval = int(round(EVAL_FRACTION * len(train_images)))
    if n_eval < 1 or n_eval >= len(train_images):
        raise DataError(f"{paths[FILES['train'][0]]} has {len(train_images)} images, too few to hold out "
                        f"{EVAL_FRACTION:.0%} for eval; use the original Fashion-MNIST files")
    n_train = len(train_images) - n_eval
    splits = {"train": (train_images[:n_train], train_labels[:n_train]),
              "eval": (train_images[n_train:], train_labels[n_train:]),
              "test": (test_images, test_labels)}
    for split, (images, labels) in splits.items():
        keep = first_per_class(labels.tolist(), max_per_class)
        splits[split] = (images[keep][:, None], labels[keep])  # N x 1 x 28 x 28
    mean, std = channel_stats(splits["train"][0])
    datasets = {split: ArrayDataset(images, labels, mean, std, image_size=image_size,
                                    augment=augment and split == "train", seed=seed)
                for split, (images, labels) in splits.items()}
    digest = file_digest(paths[FILES["train"][0]])[:8] + file_digest(paths[FILES["test"][0]])[:8]
    info = {"dataset": "fashion_mnist", "image_size": image_size, "in_channels": 1, "num_classes": len(CLASS_NAMES),
            "splits": {s: len(d) for s, d in datasets.items()}, "source": folder, "source_checksum": digest,
            "data_dir": folder, "mean": [round(m, 6) for m in mean], "std": [round(s, 6) for s in std],
            "augment": augment, "seed": seed, "max_per_class": max_per_class, "skipped_files": 0,
            "stored_size": list(train_images.shape[1:])}
    return DataBundle(datasets["train"], datasets["eval"], datasets["test"], len(CLASS_NAMES), 1,
                      list(CLASS_NAMES), info)


def prepare_fashion_mnist(source: str | None = None, out_dir: str = DEFAULT_DIR, download: bool = True) -> dict:
    """Copy the four IDX files from folder `source` (or download them) into out_dir, checked readable."""
    if source is None:
        if not download:
            raise DataError("no Fashion-MNIST source given and downloading is off; give a source folder "
                            "holding the four IDX .gz files", fix="source")
        download_fashion_mnist(out_dir)
    folder, paths = resolve_files(source or out_dir, allow_download=False)
    sizes = {split: len(read_split(paths, split)[0]) for split in FILES}
    if os.path.abspath(folder) != os.path.abspath(out_dir):
        os.makedirs(out_dir, exist_ok=True)
        for path in paths.values():
            target = os.path.join(out_dir, os.path.basename(path))
            shutil.copyfile(path, f"{target}.tmp-{os.getpid()}")
            os.replace(f"{target}.tmp-{os.getpid()}", target)
    return {"out_dir": out_dir, "source": source or "download", "train_images": sizes["train"],
            "test_images": sizes["test"]}
