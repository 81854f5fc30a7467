"""The decoded cache: each split decoded and resized once into a uint8 .npy, memory-mapped after.

A cache entry is two files, `<stem>.npy` (uint8 [N, C, S, S]) and `<stem>.json` (its metadata).
Both are written under temporary names and renamed, the .npy first and the .json last, so the
.json is the done-marker: an .npy without it, or of another size than it records, is a build
that was killed and is rebuilt, never read. The .json also records the .npy's sha256, checked on
every load: a file damaged at rest (bit-rot at the same size) is rebuilt, not trained on.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import time
from typing import Callable

import numpy as np

CACHE_VERSION = 1  # bump when decoding or resizing changes, so old entries are not reused
_last_problem: dict = {}  # stem -> why load() refused it (for the rebuilt entry's metadata)


def cache_key(**parts) -> str:
    """The cache entry's key: a hash of what the decoded arrays depend on."""
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def channel_stats(images: np.ndarray, chunk: int = 256) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 [N, C, H, W] on the 0..1 scale, exact (integer sums)."""
    channels = images.shape[1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start:start + chunk])
        for c in range(channels):
            counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    return stats_from_histogram(counts)


def stats_from_histogram(counts: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and std per channel from a [C, 256] histogram of pixel values."""
    values = np.arange(256, dtype=np.int64)
    n = counts.sum(axis=1)
    s1 = (counts * values).sum(axis=1)
    s2 = (counts * values * values).sum(axis=1)
    mean = s1 / n
    var = s2 / n - mean * mean
    return [float(m) / 255 for m in mean], [float(np.sqrt(max(v, 0.0))) / 255 for v in var]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(stem: str) -> None:
    """Delete temporaries of builds whose process is gone (killed mid-build)."""
    for path in glob.glob(glob.escape(stem) + ".*.tmp-*"):
        try:
            if not _pid_alive(int(path.rsplit("-", 1)[1])):
                os.remove(path)
        except (ValueError, OSError):
            pass


def file_sha256(path: str) -> str:
    """sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load(stem: str, key: str, shape: tuple) -> tuple[np.ndarray, dict] | None:
    """The cached array (memory-mapped, read-only) and its metadata, or None if absent, incomplete
    or damaged (its sha256 is not the one recorded when it was built)."""
    _last_problem.pop(stem, None)
    try:
        with open(stem + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("key") != key or tuple(meta.get("shape", ())) != tuple(shape):
            return None
        if os.path.getsize(stem + ".npy") != meta.get("npy_bytes"):
            return None
        if meta.get("sha256") != file_sha256(stem + ".npy"):  # entries of before the checksum: rebuilt once
            _last_problem[stem] = "checksum" if meta.get("sha256") else "no checksum recorded"
            return None
        array = np.load(stem + ".npy", mmap_mode="r")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if array.shape != tuple(shape) or array.dtype != np.uint8:
        return None
    return array, meta


def _reserve(path: str, where: str) -> None:
    """Claim path's blocks on disk now. open_memmap makes a sparse file, and filling a page the disk
    has no room for kills the process with SIGBUS, without a word; allocated first, a full disk is
    an OSError (naming `where`) before any image is decoded."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows: no such call, the sparse file stays
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):  # a filesystem that cannot:
                return  # keep the sparse file, as before
            raise OSError(e.errno, e.strerror, where) from None


def load_or_build(cache_dir: str, name: str, key: str, shape: tuple,
                  decode: Callable[[int], np.ndarray], meta: dict, with_stats: bool = False,
                  progress=None) -> tuple[np.ndarray, dict]:
    """Return the cached uint8 array of `shape` for `key`, building it with decode(i) -> row i if needed.

    `meta` is stored alongside (plus the build time and, with_stats, the per-channel mean/std).
    The returned metadata has `built` True when this call built the entry, and `repaired` says
    why an entry that was there could not be used ("checksum": damaged on disk). progress(stage,
    done, total, unit), if given, hears a build as it goes (the first run at a new size decodes
    every image).
    """
    stem = os.path.join(cache_dir, f"{name}-{key}")
    found = load(stem, key, shape)
    if found is not None:
        return found[0], {**found[1], "built": False}
    repaired = _last_problem.pop(stem, None)
    os.makedirs(cache_dir, exist_ok=True)
    _remove_stale_temporaries(stem)
    for suffix in (".json", ".npy"):  # an old or partial entry: the .json goes first
        if os.path.exists(stem + suffix):
            os.remove(stem + suffix)
    start = time.perf_counter()
    npy_tmp = f"{stem}.npy.tmp-{os.getpid()}"
    json_tmp = f"{stem}.json.tmp-{os.getpid()}"
    try:
        array = np.lib.format.open_memmap(npy_tmp, mode="w+", dtype=np.uint8, shape=tuple(shape))
        _reserve(npy_tmp, cache_dir)
        for i in range(shape[0]):
            if progress is not None:
                progress(f"caching {name}", i, shape[0], "images")
            array[i] = decode(i)
        array.flush()
        stats = channel_stats(array) if with_stats else None
        del array
        record = {**meta, "key": key, "shape": list(shape), "npy_bytes": os.path.getsize(npy_tmp),
                  "sha256": file_sha256(npy_tmp), "build_seconds": round(time.perf_counter() - start, 3)}
        os.replace(npy_tmp, stem + ".npy")
        if stats is not None:
            record["mean"], record["std"] = stats
        with open(json_tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(json_tmp, stem + ".json")
    finally:
        for path in (npy_tmp, json_tmp):
            if os.path.exists(path):
                os.remove(path)
    found = load(stem, key, shape)
    if found is None:  # pragma: no cover - only if another process removed it meanwhile
        raise OSError(f"cache entry {stem}.npy vanished right after it was written")
    return found[0], {**found[1], "built": True, **({"repaired": repaired} if repaired else {})}
