"""Caltech-16: the 16 largest Caltech-101 object categories, split 70/15/15 into committed label lists.

prepare_caltech16 reads the official caltech-101.zip, its inner 101_ObjectCategories.tar.gz or
the extracted folder; picks the classes; splits each class with a fixed, hash-based order (the
same on every numpy and OS); checks every selected JPEG decodes; computes the train split's
per-channel mean/std; and writes `images/<class>/<file>`, Train.txt, Eval.txt, Test.txt,
labels.txt and stats.json into out_dir, all or nothing.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import DataError
from .cache import stats_from_histogram
from .download import DOWNLOAD_DIR, download, file_digest
from .images import MAX_IMAGE_BYTES, is_image_name, open_image
from .labels import CLASS_FILE, LIST_NAMES, SPLITS, format_class_names, format_list

CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"
ROOT = "101_ObjectCategories"
DEFAULT_DIR = os.path.join("data", "caltech16")
# BACKGROUND_Google is clutter, not a class; Faces shows the same photos as Faces_easy.
EXCLUDED = ("BACKGROUND_Google", "Faces")
NUM_CLASSES = 16
EVAL_PERCENT = TEST_PERCENT = 15  # the rest (70%) trains; rounded half up per class
SPLIT_SEED = 0
STATS_FILE = "stats.json"
PREPARED_FILE = ".prepared.json"  # inside images/, so git ignores it: where the images came from
SOURCE_HELP = "pass the official caltech-101.zip, its 101_ObjectCategories.tar.gz or the extracted 101_ObjectCategories folder"
# Archive members are held in memory while scanning, so an archive can ask for a lot: caps far
# above the real thing (its largest image is well under 1 MB, all 9,146 about 130 MB) stop a
# damaged or hostile archive (a 2.5 MB .tar.gz can hold a 1 GiB member) before it is read.
MAX_MEMBER_BYTES = MAX_IMAGE_BYTES
MAX_TOTAL_BYTES = 2 << 30


@dataclass
class Scan:
    """What a Caltech-101 source holds: category -> file name -> (read bytes, mtime in ns)."""
    source: str
    kind: str
    files: dict[str, dict[str, tuple[Callable[[], bytes], int]]] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)  # non-image files, skipped
    total: int = 0  # bytes of the members read into memory so far

    def wants(self, rel_parts: list[str]) -> bool:
        """Whether a member at rel_parts is an image of a category (the only members read)."""
        return len(rel_parts) == 2 and is_image_name(rel_parts[1])

    def add(self, rel_parts: list[str], read: Callable[[], bytes], mtime_ns: int) -> None:
        if self.wants(rel_parts):
            self.files.setdefault(rel_parts[0], {})[rel_parts[1]] = (read, mtime_ns)
        else:
            self.stray.append("/".join([ROOT, *rel_parts]))

    def read_capped(self, name: str, size: int, stream) -> bytes:
        """Read a member of `size` bytes (as its header says) from stream, within the caps."""
        if size > MAX_MEMBER_BYTES or self.total + size > MAX_TOTAL_BYTES:
            what = (f"is {_size(size)}" if size > MAX_MEMBER_BYTES else
                    f"takes the images past {_size(MAX_TOTAL_BYTES)} in all")
            raise DataError(f"{self.source}: member {name} {what}, more than any Caltech-101 download holds "
                            f"(limits {_size(MAX_MEMBER_BYTES)} an image, {_size(MAX_TOTAL_BYTES)} in all); "
                            f"refusing the archive: {SOURCE_HELP}")
        data = stream.read(size + 1)  # one byte more than announced: a lying header shows here
        if len(data) > size:
            raise DataError(f"{self.source}: member {name} holds more data than its header says; the archive "
                            "is damaged or not a Caltech-101 download: download it again")
        self.total += len(data)
        return data


def _size(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def is_caltech_source(path: str) -> bool:
    """Whether path looks like a Caltech-101 source (an archive or a folder with 101_ObjectCategories)."""
    if os.path.isfile(path):
        return True
    return _find_root_folder(path) is not None


def _find_root_folder(path: str) -> str | None:
    for candidate in (path, os.path.join(path, ROOT), os.path.join(path, "caltech-101", ROOT)):
        if os.path.basename(os.path.normpath(candidate)) == ROOT and os.path.isdir(candidate):
            return candidate
    return None


def scan_source(source: str) -> Scan:
    """Read a zip, tar(.gz) or folder; raise DataError when it is missing, unreadable or not Caltech-101."""
    if not os.path.exists(source):
        raise DataError(f"Caltech-101 source {source} does not exist; {SOURCE_HELP}")
    if os.path.isdir(source):
        root = _find_root_folder(source)
        if root is None:
            raise DataError(f"folder {source} has no {ROOT} folder; {SOURCE_HELP}")
        return _scan_folder(source, root)
    try:
        if zipfile.is_zipfile(source):
            scan = _scan_zip(source)
        else:
            with open(source, "rb") as f:
                scan = _scan_tar(source, "tar", f)
    except DataError:
        raise
    except PermissionError:
        raise DataError(f"cannot read {source}: permission denied; make it readable or copy it somewhere "
                        "you can read") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read {source} as a zip or tar.gz archive ({reason}); it is truncated, "
                        f"damaged or not an archive: download it again") from None
    if not scan.files:
        raise DataError(f"{source} has no {ROOT} folder with images; {SOURCE_HELP}")
    return scan


def _relative_parts(name: str, source: str = "") -> list[str] | None:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ROOT not in parts or parts[0] == "__MACOSX":
        return None
    if ".." in parts:  # a path out of the folder it unpacks into: never a real archive's
        raise DataError(f"{source}: member {name!r} has a '..' in its path; refusing the archive (it is not a "
                        f"Caltech-101 download): {SOURCE_HELP}")
    return parts[parts.index(ROOT) + 1:]


class _CountingReader:
    """A read-only stream that counts the bytes read through it."""

    def __init__(self, stream):
        self.stream, self.count = stream, 0

    def read(self, size=-1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def _decompressed(fileobj):
    """fileobj decompressed by its magic bytes (gzip, bzip2, xz) or as is, counting the bytes read.

    Decompressing ourselves rather than with tarfile's "r|*" makes a truncated .gz raise (the
    gzip module checks the end-of-stream marker and CRC; tarfile's stream reader does not).
    """
    magic = fileobj.peek(6)[:6] if hasattr(fileobj, "peek") else b""
    if magic.startswith(b"\x1f\x8b"):
        fileobj = gzip.GzipFile(fileobj=fileobj, mode="rb")
    elif magic.startswith(b"BZh"):
        fileobj = bz2.BZ2File(fileobj, mode="rb")
    elif magic.startswith(b"\xfd7zXZ"):
        fileobj = lzma.LZMAFile(fileobj, mode="rb")
    return _CountingReader(fileobj)


def _scan_tar(source: str, kind: str, fileobj) -> Scan:
    scan = Scan(source, kind)
    stream = _decompressed(fileobj)
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # streamed: one pass, no seeking
        for member in tar:
            rel = _relative_parts(member.name, source)
            if rel is None or member.isdir():
                continue
            if not member.isfile():
                scan.stray.append(member.name)
                continue
            if not scan.wants(rel):
                scan.add(rel, None, 0)  # counted as skipped, never read
                continue
            data = scan.read_capped(member.name, member.size, tar.extractfile(member))
            scan.add(rel, lambda data=data: data, int(member.mtime) * 10**9)
        end = tar.offset
    while stream.read(1 << 20):  # to the end: a truncated .gz raises EOFError here
        pass
    # tarfile takes an archive cut at a member boundary for a complete one; a complete archive
    # ends with two zero blocks (1024 bytes) after its last member.
    if stream.count < end + 2 * tarfile.BLOCKSIZE:
        raise DataError(f"cannot read {source}: the archive ends without its end-of-archive marker, it is "
                        "truncated: download it again")
    return scan


def _scan_zip(source: str) -> Scan:
    with zipfile.ZipFile(source) as zf:
        infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
        inner = [i for i in infos if os.path.basename(i.filename) in (ROOT + ".tar.gz", ROOT + ".tgz", ROOT + ".tar")]
        if inner:  # the official caltech-101.zip: caltech-101/101_ObjectCategories.tar.gz
            with zf.open(inner[0]) as stream:
                scan = _scan_tar(source, f"zip ({inner[0].filename})", stream)
            return scan
        scan = Scan(source, "zip")
        for info in infos:
            rel = _relative_parts(info.filename, source)
            if rel is None or info.is_dir():
                continue
            if not scan.wants(rel):
                scan.add(rel, None, 0)
                continue
            with zf.open(info) as member:
                data = scan.read_capped(info.filename, info.file_size, member)
            scan.add(rel, lambda data=data: data, int(time.mktime(info.date_time + (0, 0, -1))) * 10**9)
    if not scan.files:
        raise DataError(f"zip {source} has neither {ROOT}.tar.gz nor a {ROOT} folder; {SOURCE_HELP}")
    return scan


def _scan_folder(source: str, root: str) -> Scan:
    scan = Scan(source, "folder")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        prefix = [] if rel_dir == "." else rel_dir.split(os.sep)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            scan.add(prefix + [name], lambda path=path: _read_file(path), os.stat(path).st_mtime_ns)
    return scan


def _read_file(path: str) -> bytes:
    try:
        if os.path.getsize(path) > MAX_MEMBER_BYTES:
            raise DataError(f"{path} is {_size(os.path.getsize(path))}, more than any Caltech-101 image "
                            f"(limit {_size(MAX_MEMBER_BYTES)}); remove it or {SOURCE_HELP}")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check the file's permissions") from None


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
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for label, category in enumerate(classes):
        for split, names in split_class(category, sorted(scan.files[category])).items():
            splits[split] += [(f"images/{category}/{name}", label) for name in sorted(names)]
    return splits


def _decode_all(scan: Scan, splits) -> tuple[dict, int]:
    """Decode every selected image (a bad one raises, named); mean/std of the train split.

    The statistics are over every pixel of the train images at their native resolution (about
    300 x 200), after conversion to RGB, so they do not depend on the run's image size; they
    are exact integer sums, rounded to 4 decimals (robust to tiny JPEG-decoder differences).
    """
    histogram = np.zeros((3, 256), dtype=np.int64)
    grayscale = 0
    advice = "replace the file" if scan.kind == "folder" else "the archive is damaged, download it again"
    for split, entries in splits.items():
        for rel, _ in entries:
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


def prepare_caltech16(source: str | None = None, out_dir: str = DEFAULT_DIR, download: bool = True) -> dict:
    """Prepare Caltech-16 from `source` (or the official download) into out_dir; return a summary."""
    start = time.perf_counter()
    if source is None:
        if not download:
            raise DataError(f"no Caltech-101 source given and downloading is off; {SOURCE_HELP} as the source",
                            fix="source")
        source = download_caltech101()
    scan = scan_source(source)
    counts = {c: len(files) for c, files in scan.files.items()}
    classes = select_classes(counts)
    splits = make_splits(scan, classes)
    stats, grayscale_selected = _decode_all(scan, splits)
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


def download_caltech101(dest_dir: str = DOWNLOAD_DIR) -> str:
    return download(CALTECH101_URL, dest_dir, filename="caltech-101.zip")


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
    finally:
        for path in written:
            if os.path.exists(path):
                os.remove(path)
        for path in (images_tmp, images_old):
            if os.path.exists(path):
                shutil.rmtree(path, ignore_errors=True)
