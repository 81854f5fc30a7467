"""Reading a Caltech-101 source (the official zip, its inner tar.gz, or the extracted folder), safely.

Archive members are read into memory only when they are images of a category, each within a
size cap and all within a total cap; a member whose path climbs out with '..' is refused.
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
from .images import MAX_IMAGE_BYTES, is_image_name

ROOT = "101_ObjectCategories"
SOURCE_HELP = "pass the official caltech-101.zip, its 101_ObjectCategories.tar.gz or the extracted 101_ObjectCategories folder"
# Archive members are held in memory while scanning, so an archive can ask for a lot: caps far
# above the real thing (its largest image is well under 1 MB, all 9,146 about 130 MB) stop a
# damaged or hostile archive (a 2.5 MB .tar.gz can hold a 1 GiB member) before it is read.
MAX_MEMBER_BYTES = MAX_IMAGE_BYTES
MAX_TOTAL_BYTES = 2 << 30
# progress(stage, done, total, unit): how far a long step is; the library never prints itself.
Progress = Optional[Callable[[str, int, int, str], None]]


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
        """Record one file: kept (to be read) when it is an image of a category, else counted as skipped."""
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


def scan_source(source: str, progress: Progress = None) -> Scan:
    """Read a zip, tar(.gz) or folder; raise DataError when it is missing, unreadable or not Caltech-101.

    progress(stage, done, total, unit), if given, hears how much has been read (about 2 s for the
    official archive)."""
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
        """Read and count the bytes (the end-of-archive check compares the count)."""
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
            report(stage, min(fileobj.tell(), size), size, "B")  # the compressed bytes read so far
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


def _scan_folder(source: str, root: str, report) -> Scan:
    scan = Scan(source, "folder")
    stage, total = f"listing {root}", len(os.listdir(root)) + 1
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
        if os.path.getsize(path) > MAX_MEMBER_BYTES:
            raise DataError(f"{path} is {_size(os.path.getsize(path))}, more than any Caltech-101 image "
                            f"(limit {_size(MAX_MEMBER_BYTES)}); remove it or {SOURCE_HELP}")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check the file's permissions") from None
