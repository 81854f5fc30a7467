"""Where a label list's images live: a folder or a zip (AI Studio's Images.zip), read by path."""
from __future__ import annotations

import hashlib
import os
import zipfile

from ..errors import DataError
from .images import MAX_IMAGE_BYTES

IMAGE_FOLDERS = ("images", "image", "imgs")  # subfolders tried when list paths omit them (any case)


class FolderStore:
    """Images under `root`; a file's fingerprint is its size and modification time."""

    def __init__(self, root: str):
        self.root = root
        self.description = root

    def has(self, rel: str) -> bool:
        """Whether the folder holds this relative path."""
        return os.path.isfile(os.path.join(self.root, rel))

    def read(self, rel: str) -> bytes:
        """The file's bytes."""
        path = os.path.join(self.root, rel)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise DataError(f"cannot read image {path} ({e.strerror or e}); check the file") from None

    def fingerprint(self, rel: str) -> str:
        """Size and mtime of the file: what the cache key takes to notice a changed image."""
        st = os.stat(os.path.join(self.root, rel))
        return f"{st.st_size}:{st.st_mtime_ns}"

    def size(self, rel: str) -> int:
        """The file's size in bytes (kept when the folder is copied, unlike its mtime)."""
        return os.path.getsize(os.path.join(self.root, rel))


class ZipStore:
    """Images inside a zip; list paths may include or omit the zip's top folder (Images/...)."""

    def __init__(self, path: str):
        self.description = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise DataError(f"cannot open {path} ({e}); it is truncated or not a zip, download it again") from None
        self.members = {}
        stripped = {}
        for info in self.zip.infolist():
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            self.members[info.filename] = info
            head, _, tail = info.filename.partition("/")
            if tail:
                stripped.setdefault(tail, info)
        for tail, info in stripped.items():
            self.members.setdefault(tail, info)

    def _info(self, rel: str):
        info = self.members.get(rel)
        if info is None and "/" in rel:
            info = self.members.get(rel.partition("/")[2])
        return info

    def has(self, rel: str) -> bool:
        """Whether the zip holds this relative path."""
        return self._info(rel) is not None

    def read(self, rel: str) -> bytes:
        """The member's bytes."""
        info = self._info(rel)
        if info.file_size > MAX_IMAGE_BYTES:  # refused before it is decompressed into memory
            raise DataError(f"{rel} in {self.description} is {info.file_size / 2**20:.0f} MiB, more than any image "
                            f"here should be (limit {MAX_IMAGE_BYTES >> 20} MiB); replace the zip")
        try:
            return self.zip.read(info)
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"cannot read {rel} from {self.description} ({e}); the zip is damaged, "
                            "download it again") from None

    def fingerprint(self, rel: str) -> str:
        """Size and CRC-32 of the member, from the zip's directory."""
        info = self._info(rel)  # size and CRC-32 of the content, from the zip's directory
        return f"{info.file_size}:{info.CRC:08x}"

    def size(self, rel: str) -> int:
        """The member's uncompressed size in bytes, from the zip's directory."""
        return self._info(rel).file_size


def open_store(data_dir: str, paths: list[str]) -> FolderStore | ZipStore:
    """The folder or Images.zip in data_dir holding most of a sample of the list's paths.

    Candidates: data_dir itself, an images/ (or Images/, imgs/) folder, an Images.zip; the
    paths may be relative to any of them. With none holding any path, data_dir (so the caller's
    missing-file check names what is missing).
    """
    try:
        names = sorted(os.listdir(data_dir))
    except OSError:
        names = []
    candidates = [lambda: FolderStore(data_dir)]
    candidates += [lambda n=n: FolderStore(os.path.join(data_dir, n)) for n in names
                   if n.lower() in IMAGE_FOLDERS and os.path.isdir(os.path.join(data_dir, n))]
    candidates += [lambda n=n: ZipStore(os.path.join(data_dir, n)) for n in names
                   if n.lower().endswith(".zip") and n.lower()[:-4] in IMAGE_FOLDERS]
    sample = paths[::max(1, len(paths) // 20)]
    best, best_hits = None, 0
    for make in candidates:
        store = make()
        hits = sum(store.has(p) for p in sample)
        if hits > best_hits:
            best, best_hits = store, hits
        if hits == len(sample):
            break
    return best or FolderStore(data_dir)


def has_images(data_dir: str) -> bool:
    """Whether data_dir has an images folder or Images.zip at all (else it is just lists)."""
    try:
        names = os.listdir(data_dir)
    except OSError:
        return False
    return any(n.lower() in IMAGE_FOLDERS or (n.lower().endswith(".zip") and n.lower()[:-4] in IMAGE_FOLDERS)
               for n in names)


def check_present(store, entries: list[tuple[str, int]], list_path: str) -> None:
    """DataError naming the list and the first missing images, unless every entry is in the store."""
    missing = [p for p, _ in entries if not store.has(p)]
    if missing:
        first = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(f"label list {list_path} points to {len(missing)} missing file(s) in "
                        f"{store.description}: {first}; fix the list or restore the images")


def fingerprint(store, entries: list[tuple[str, int]]) -> str:
    """Checksum of a split: its entries, and each file's size and mtime (folder) or CRC (zip)."""
    h = hashlib.sha256()
    for path, label in entries:
        h.update(f"{path}\t{label}\t{store.fingerprint(path)}\n".encode())
    return h.hexdigest()
