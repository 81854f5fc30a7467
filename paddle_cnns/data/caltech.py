"""Caltech-16: the 16 largest Caltech-101 object categories, split 70/15/15 into committed label lists.

prepare_caltech16 reads the official caltech-101.zip, its inner 101_ObjectCategories.tar.gz or
the extracted folder; picks the classes; splits each class with a fixed, hash-based order (the
same on every numpy and OS); checks every selected JPEG decodes; computes the train split's
per-channel mean/std; and writes `images/<class>/<file>`, Train.txt, Eval.txt, Test.txt,
labels.txt and stats.json into out_dir, all or nothing. Reading the source is caltech_source.py.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time

import numpy as np
from PIL import Image

from ..errors import DataError
from .cache import stats_from_histogram
from .caltech_source import ROOT, SOURCE_HELP, Progress, Scan, is_caltech_source, scan_source  # noqa: F401
from .download import DOWNLOAD_DIR, download, file_digest
from .images import open_image
from .labels import CLASS_FILE, LIST_NAMES, SPLITS, format_class_names, format_list

__all__ = ["prepare_caltech16", "prepared_from", "source_fingerprint", "is_caltech_source", "scan_source",
           "select_classes", "split_class", "DEFAULT_DIR", "ROOT"]

CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"
DEFAULT_DIR = os.path.join("data", "caltech16")
# BACKGROUND_Google is clutter, not a class; Faces shows the same photos as Faces_easy.
EXCLUDED = ("BACKGROUND_Google", "Faces")
NUM_CLASSES = 16
EVAL_PERCENT = TEST_PERCENT = 15  # the rest (70%) trains; rounded half up per class
SPLIT_SEED = 0
STATS_FILE = "stats.json"
PREPARED_FILE = ".prepared.json"  # inside images/, so git ignores it: where the images came from


def select_classes(counts: dict[str, int], k: int = NUM_CLASSES) -> list[str]:
    """The k largest categories (ties by name), excluding clutter and duplicates; in class-id order.

    Class ids follow the case-insensitive alphabetical order of the names.
    """
    candidates = sorted((c for c in counts if c not in EXCLUDED), key=lambda c: (-counts[c], c.lower(), c))
    if len(candidates) < k:
        raise DataError(f"found {len(candidates)} object categories besides {', '.join(EXCLUDED)}; "
                        f"Caltech-16 needs {k}: {SOURCE_HELP}")
    return sorted(candidates[:k], key=lambda c: (c.lower(), c))


def split_class(category: str, names: list[str]) -> dict[str, list[str]]:
    """Per-class 70/15/15 split in a fixed order: sha256 of (SPLIT_SEED, category, file name)."""
    n = len(names)
    n_eval = (EVAL_PERCENT * n + 50) // 100
    n_test = (TEST_PERCENT * n + 50) // 100
    if min(n_eval, n_test, n - n_eval - n_test) < 1:
        raise DataError(f"class {category!r} has {n} image(s), too few to split 70/15/15 (at least 4 "
                        "are needed, one each for eval and test); add images or drop the class")
    order = sorted(names, key=lambda f: hashlib.sha256(f"{SPLIT_SEED}/{category}/{f}".encode()).hexdigest())
    n_train = n - n_eval - n_test
    return {"train": order[:n_train], "eval": order[n_train:n_train + n_eval], "test": order[n_train + n_eval:]}


def make_splits(scan: Scan, classes: list[str]) -> dict[str, list[tuple[str, int]]]:
    """Every image of the chosen classes, by split: (relative path, class id), in a fixed order."""
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for label, category in enumerate(classes):
        for split, names in split_class(category, sorted(scan.files[category])).items():
            splits[split] += [(f"images/{category}/{name}", label) for name in sorted(names)]
    return splits


def _decode_all(scan: Scan, splits, report) -> tuple[dict, int]:
    """Decode every selected image (a bad one raises, named); mean/std of the train split.

    The statistics are over every pixel of the train images at their native resolution (about
    300 x 200), after conversion to RGB, so they do not depend on the run's image size; they
    are exact integer sums, rounded to 4 decimals (robust to tiny JPEG-decoder differences).
    """
    histogram = np.zeros((3, 256), dtype=np.int64)
    grayscale, done, total = 0, 0, sum(len(entries) for entries in splits.values())
    advice = "replace the file" if scan.kind == "folder" else "the archive is damaged, download it again"
    for split, entries in splits.items():
        for rel, _ in entries:
            report("checking the selected images", done, total, "images")
            done += 1
            _, category, name = rel.split("/")
            image = open_image(scan.files[category][name][0](), f"{ROOT}/{category}/{name} in {scan.source}",
                               advice)
            grayscale += image.mode == "L"
            if split == "train":
                rgb = np.asarray(image.convert("RGB"))
                for c in range(3):
                    histogram[c] += np.bincount(rgb[..., c].ravel(), minlength=256)
    mean, std = stats_from_histogram(histogram)
    stats = {"mean": [round(m, 4) for m in mean], "std": [round(s, 4) for s in std],
             "computed_on": "train split, every pixel at native resolution, RGB, scale 0..1",
             "images": len(splits["train"]), "pixels": int(histogram[0].sum())}
    return stats, grayscale


def _count_grayscale(scan: Scan) -> int:
    """Grayscale images in the whole source, from the JPEG headers only (cheap)."""
    count = 0
    for files in scan.files.values():
        for read, _ in files.values():
            try:
                count += Image.open(io.BytesIO(read())).mode == "L"
            except (OSError, ValueError, SyntaxError):
                pass  # undecodable files of unselected classes do not matter
    return count


def prepare_caltech16(source: str | None = None, out_dir: str = DEFAULT_DIR, download: bool = True,
                      progress: Progress = None) -> dict:
    """Prepare Caltech-16 from `source` (or the official download) into out_dir; return a summary.

    About 10 s from the official archive on a 2-core machine: progress(stage, done, total, unit),
    if given, hears the download, the reading and the image check as they go."""
    start = time.perf_counter()
    if progress is not None:
        told = progress
        progress = lambda stage, *how_far: told(f"Caltech-16: {stage}", *how_far)  # noqa: E731
    report = progress or (lambda *args: None)
    if source is None:
        if not download:
            raise DataError(f"no Caltech-101 source given and downloading is off; {SOURCE_HELP} as the source",
                            fix="source")
        source = download_caltech101(progress=progress)
    scan = scan_source(source, progress)
    counts = {c: len(files) for c, files in scan.files.items()}
    classes = select_classes(counts)
    splits = make_splits(scan, classes)
    stats, grayscale_selected = _decode_all(scan, splits, report)
    summary = {
        "out_dir": out_dir, "source": source, "source_kind": scan.kind,
        "source_sha256": file_digest(source) if os.path.isfile(source) else None,
        "classes": classes, "class_counts": {c: counts[c] for c in classes},
        "splits": {s: len(e) for s, e in splits.items()}, "images": sum(len(e) for e in splits.values()),
        "source_categories": len(counts), "source_images": sum(counts.values()),
        "grayscale_source": _count_grayscale(scan), "grayscale_selected": grayscale_selected,
        "skipped_files": sorted(scan.stray), "mean": stats["mean"], "std": stats["std"],
    }
    _write_prepared(out_dir, scan, classes, splits, stats, summary)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def download_caltech101(dest_dir: str = DOWNLOAD_DIR, progress: Progress = None) -> str:
    """The official caltech-101.zip in dest_dir (downloaded unless it is there already)."""
    return download(CALTECH101_URL, dest_dir, filename="caltech-101.zip", progress=progress)


def source_fingerprint(source: str) -> str:
    """Cheap identity of a source, to tell whether out_dir was prepared from it: path, sizes, mtimes."""
    if os.path.isfile(source):
        st = os.stat(source)
        return f"{os.path.abspath(source)}:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256(os.path.abspath(source).encode())
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{os.path.relpath(os.path.join(dirpath, name), source)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def prepared_from(out_dir: str) -> dict | None:
    """Where out_dir's images were prepared from (its .prepared.json), or None."""
    try:
        with open(os.path.join(out_dir, "images", PREPARED_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_prepared(out_dir, scan, classes, splits, stats, summary) -> None:
    """Write images and lists under temporary names, then rename: a failure leaves out_dir as it was."""
    os.makedirs(out_dir, exist_ok=True)
    pid = os.getpid()
    images_tmp = os.path.join(out_dir, f".images.tmp-{pid}")
    images_old = os.path.join(out_dir, f".images.old-{pid}")
    texts = {LIST_NAMES[s][0]: format_list(splits[s]) for s in SPLITS}
    texts[CLASS_FILE] = format_class_names(classes)
    texts[STATS_FILE] = json.dumps(stats, indent=2) + "\n"
    written = []
    try:
        for category in classes:
            os.makedirs(os.path.join(images_tmp, category))
        for entries in splits.values():
            for rel, _ in entries:
                _, category, name = rel.split("/")
                read, mtime_ns = scan.files[category][name]
                path = os.path.join(images_tmp, category, name)
                with open(path, "wb") as f:
                    f.write(read())
                os.utime(path, ns=(mtime_ns, mtime_ns))  # same mtime on every prepare: cache keys hold
        provenance = {k: summary[k] for k in ("source", "source_kind", "source_sha256", "skipped_files",
                                               "grayscale_source", "grayscale_selected")}
        provenance["fingerprint"] = source_fingerprint(summary["source"])
        with open(os.path.join(images_tmp, PREPARED_FILE), "w", encoding="utf-8") as f:
            json.dump(provenance, f, indent=1)
        for name, text in texts.items():
            tmp = os.path.join(out_dir, f".{name}.tmp-{pid}")
            written.append(tmp)
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        final_images = os.path.join(out_dir, "images")
        if os.path.exists(final_images):
            os.replace(final_images, images_old)
        os.replace(images_tmp, final_images)
        for name in texts:
            os.replace(os.path.join(out_dir, f".{name}.tmp-{pid}"), os.path.join(out_dir, name))
    except OSError as e:
        if e.filename is None:  # a write (a full disk, say) names no file: say where it was preparing
            raise OSError(e.errno, e.strerror, out_dir) from None
        raise
    finally:
        for path in written:
            if os.path.exists(path):
                os.remove(path)
        for path in (images_tmp, images_old):
            if os.path.exists(path):
                shutil.rmtree(path, ignore_errors=True)
