"""Reading a Caltech-101 source: the official caltech-101.zip, its 101_ObjectCategories.tar.gz, or the folder.

One streamed pass over an archive (no extraction to disk), every image file kept in memory by
category and name; damaged, truncated or foreign archives raise DataError saying so.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import DataError
from .images import is_image_name

ROOT = "101_ObjectCategories"
SOURCE_HELP = "pass the official caltech-101.zip, its 101_ObjectCategories.tar.gz or the extracted 101_ObjectCategories folder"
# progress(stage, done, total, unit): how far a long step is; the library never prints itself.
Progress = Optional[Callable[[str, int, int, str], None]]


@dataclass
class Scan:
    """What a Caltech-101 source holds: category -> file name -> (read bytes, mtime in ns)."""
    source: str
    kind: str
    files: dict[str, dict[str, tuple[Callable[[], bytes], int]]] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)  # non-image files, skipped

    def add(self, rel_parts: list[str], read: Callable[[], bytes], mtime_ns: int) -> None:
        if len(rel_parts) == 2 and is_image_name(rel_parts[1]):
            self.files.setdefault(rel_parts[0], {})[rel_parts[1]] = (read, mtime_ns)
        else:
            self.stray.append("/".join([ROOT, *rel_parts]))


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


def scan_source(source: str, progress: Progress = None) -> Scan:
    """Read a zip, tar(.gz) or folder; raise DataError when it is missing, unreadable or not Caltech-101.

    progress(stage, done, total, unit), if given, hears how much has been read (about 2 s for the
    official archive on a 2-core machine)."""
    report = progress or (lambda *args: None)
    if not os.path.exists(source):
        raise DataError(f"Caltech-101 source {source} does not exist; {SOURCE_HELP}")
    if os.path.isdir(source):
        root = _find_root_folder(source)
        if root is None:
            raise DataError(f"folder {source} has no {ROOT} folder; {SOURCE_HELP}")
        return _scan_folder(source, root, report)
    try:
        if zipfile.is_zipfile(source):
            scan = _scan_zip(source, report)
        else:
            with open(source, "rb") as f:
                scan = _scan_tar(source, "tar", f, report, os.path.getsize(source))
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


def _relative_parts(name: str) -> list[str] | None:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ROOT not in parts or parts[0] == "__MACOSX":
        return None
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


def _scan_tar(source: str, kind: str, fileobj, report, size: int) -> Scan:
    scan = Scan(source, kind)
    stage = f"reading {os.path.basename(source)}"
    report(stage, 0, size, "B")
    stream = _decompressed(fileobj)
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # streamed: one pass, no seeking
        for member in tar:
            rel = _relative_parts(member.name)
            if rel is None or member.isdir():
                continue
            if not member.isfile():
                scan.stray.append(member.name)
                continue
            data = tar.extractfile(member).read()
            scan.add(rel, lambda data=data: data, int(member.mtime) * 10**9)
            report(stage, min(fileobj.tell(), size), size, "B")  # the compressed bytes read so far
        end = tar.offset
    while stream.read(1 << 20):  # to the end: a truncated .gz raises EOFError here
        pass
    # tarfile takes an archive cut at a member boundary for a complete one; a complete archive
    # ends with two zero blocks (1024 bytes) after its last member.
    if stream.count < end + 2 * tarfile.BLOCKSIZE:
        raise DataError(f"cannot read {source}: the archive ends without its end-of-archive marker, it is "
                        "truncated: download it again")
    report(stage, size, size, "B")
    return scan


def _scan_zip(source: str, report) -> Scan:
    with zipfile.ZipFile(source) as zf:
        infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
        inner = [i for i in infos if os.path.basename(i.filename) in (ROOT + ".tar.gz", ROOT + ".tgz", ROOT + ".tar")]
        if inner:  # the official caltech-101.zip: caltech-101/101_ObjectCategories.tar.gz
            with zf.open(inner[0]) as stream:
                scan = _scan_tar(source, f"zip ({inner[0].filename})", stream, report, inner[0].file_size)
            return scan
        scan = Scan(source, "zip")
        stage = f"reading {os.path.basename(source)}"
        for i, info in enumerate(infos):
            report(stage, i, len(infos), "files")
            rel = _relative_parts(info.filename)
            if rel is None or info.is_dir():
                continue
            data = zf.read(info)
            scan.add(rel, lambda data=data: data, int(time.mktime(info.date_time + (0, 0, -1))) * 10**9)
    if not scan.files:
        raise DataError(f"zip {source} has neither {ROOT}.tar.gz nor a {ROOT} folder; {SOURCE_HELP}")
    return scan


def _scan_folder(source: str, root: str, report) -> Scan:
    scan = Scan(source, "folder")
    stage, total = f"reading {source}", sum(os.path.isdir(os.path.join(root, d)) for d in os.listdir(root))
    for i, (dirpath, dirnames, filenames) in enumerate(os.walk(root)):
        report(stage, min(i, total), total, "folders")  # the walk visits root first, then one folder each
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        prefix = [] if rel_dir == "." else rel_dir.split(os.sep)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            scan.add(prefix + [name], lambda path=path: _read_file(path), os.stat(path).st_mtime_ns)
    return scan


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check the file's permissions") from None
