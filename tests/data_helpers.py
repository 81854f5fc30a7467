"""Small generated inputs for the data tests: tiny JPEGs, fake Caltech-101 trees and archives, IDX files."""
import gzip
import io
import os
import struct
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = os.path.join(REPO, "data", "caltech16")

# A fake Caltech-101: clutter and Faces bigger than every class (both must be left out), 15 clear
# winners, then a three-way tie at 4 images for the 16th place that 'kangaroo' wins by name.
FAKE_COUNTS = {
    "BACKGROUND_Google": 12, "Faces": 11, "Faces_easy": 11, "airplanes": 10, "Motorbikes": 10, "watch": 9,
    "Leopards": 8, "bonsai": 7, "car_side": 7, "ketch": 6, "chandelier": 6, "hawksbill": 6, "grand_piano": 5,
    "brain": 5, "butterfly": 5, "helicopter": 5, "menorah": 5, "starfish": 4, "kangaroo": 4, "trilobite": 4,
    "ant": 3,
}
FAKE_CLASSES = ["airplanes", "bonsai", "brain", "butterfly", "car_side", "chandelier", "Faces_easy", "grand_piano",
                "hawksbill", "helicopter", "kangaroo", "ketch", "Leopards", "menorah", "Motorbikes", "watch"]


def jpeg_bytes(seed: int, size=(12, 10), mode: str = "RGB") -> bytes:
    """A tiny JPEG whose content depends on seed (a flat colour plus a little structure)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=3)
    pixels = np.clip(base + rng.integers(-20, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode == "L":
        image = image.convert("L")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_caltech_tree(root: str, counts=None, grayscale=("watch",), stray=True) -> str:
    """root/101_ObjectCategories/<category>/image_NNNN.jpg; the first image of each `grayscale` class is L."""
    counts = FAKE_COUNTS if counts is None else counts
    top = os.path.join(root, "101_ObjectCategories")
    for c, (category, n) in enumerate(sorted(counts.items())):
        os.makedirs(os.path.join(top, category), exist_ok=True)
        for i in range(1, n + 1):
            mode = "L" if category in grayscale and i == 1 else "RGB"
            with open(os.path.join(top, category, f"image_{i:04d}.jpg"), "wb") as f:
                f.write(jpeg_bytes(1000 * c + i, mode=mode))
    if stray and "BACKGROUND_Google" in counts:  # as in the real archive: a JPEG without extension
        with open(os.path.join(top, "BACKGROUND_Google", "tmp"), "wb") as f:
            f.write(jpeg_bytes(99))
    return top


def make_tar_gz(folder: str, path: str) -> str:
    """Pack folder (a 101_ObjectCategories tree) as the official inner archive does."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="101_ObjectCategories")
    return path


def make_official_zip(tar_path: str, path: str) -> str:
    """caltech-101.zip's layout: caltech-101/101_ObjectCategories.tar.gz plus annotations."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(tar_path, "caltech-101/101_ObjectCategories.tar.gz")
        zf.writestr("caltech-101/Annotations.tar", b"not used")
        zf.writestr("__MACOSX/caltech-101/._101_ObjectCategories.tar.gz", b"resource fork")
    return path


def write_idx(path: str, array: np.ndarray) -> str:
    """An IDX file of unsigned bytes (gzipped when path ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def make_fashion_mnist(folder: str, n_train: int = 50, n_test: int = 20, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), rng.integers(0, 256, (n, 28, 28)))
        write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), np.arange(n) % 10)
    return folder


def make_ai_studio(folder: str, classes=("cat", "dog", "owl"), per_split=None, as_zip=False,
                   grayscale_first=False) -> str:
    """An AI Studio dataset: Train/Eval/Test.txt + labels.txt, images in Images.zip or an images folder.

    List paths are `<class>/<file>.jpg`; in the zip the files sit under Images/ (the list omits it).
    """
    per_split = per_split or {"Train": 4, "Eval": 2, "Test": 2}
    os.makedirs(folder, exist_ok=True)
    files = {}
    for split, n in per_split.items():
        lines = []
        for label, name in enumerate(classes):
            for i in range(n):
                rel = f"{name}/{split.lower()}_{i}.jpg"
                mode = "L" if grayscale_first and i == 0 and label == 0 else "RGB"
                files[rel] = jpeg_bytes(zlib.crc32(rel.encode()), mode=mode)
                lines.append(f"{rel} {label}\n")
        with open(os.path.join(folder, f"{split}.txt"), "w") as f:
            f.writelines(lines)
    with open(os.path.join(folder, "labels.txt"), "w") as f:
        f.writelines(f"{name}\n" for name in classes)
    if as_zip:
        with zipfile.ZipFile(os.path.join(folder, "Images.zip"), "w") as zf:
            for rel, data in files.items():
                zf.writestr(f"Images/{rel}", data)
    else:
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(folder, "images", rel)), exist_ok=True)
            with open(os.path.join(folder, "images", rel), "wb") as f:
                f.write(data)
    return folder


def make_image_folder(root: str, classes=("cat", "dog"), counts=None, stray=True) -> str:
    """ImageNet-style train/<class>/*.jpg and val/<class>/*.jpg (plus a stray README)."""
    counts = counts or {"train": 3, "val": 2}
    for s, (split, n) in enumerate(counts.items()):
        for c, name in enumerate(classes):
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(n):
                with open(os.path.join(root, split, name, f"{i}.jpg"), "wb") as f:
                    f.write(jpeg_bytes(100 * s + 10 * c + i))
    if stray:
        with open(os.path.join(root, "train", classes[0], "README.txt"), "w") as f:
            f.write("not an image\n")
    return root


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def list_snapshot(folder: str) -> dict:
    """The committed-file contents of a prepared folder (lists, labels, stats), for before/after checks."""
    names = ("Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json")
    return {n: read(os.path.join(folder, n)) for n in names if os.path.exists(os.path.join(folder, n))}
