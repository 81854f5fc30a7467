"""Downloading a file atomically: into a temporary name next to it, renamed only when complete."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request

from ..errors import DataError

DOWNLOAD_DIR = os.path.join("data", "downloads")
CHUNK = 1 << 20


def download(url: str, dest_dir: str = DOWNLOAD_DIR, filename: str | None = None,
             md5: str | None = None, opener=urllib.request.urlopen, timeout: float = 60, progress=None) -> str:
    """Fetch url into dest_dir/filename (reused when already there) and return its path.

    progress(stage, done, total, unit), if given, hears the bytes received (total 0 when the
    server does not say the length).

    A partial download never takes the final name: it is written to `<name>.part-<pid>` and
    renamed after the length (when the server sent one) and the md5 (when given) check out.
    """
    filename = filename or os.path.basename(url.split("?")[0]) or "download"
    path = os.path.join(dest_dir, filename)
    if os.path.isfile(path) and (md5 is None or file_md5(path) == md5):
        return path
    os.makedirs(dest_dir, exist_ok=True)
    part = f"{path}.part-{os.getpid()}"
    digest = hashlib.md5()
    received = 0
    try:
        with opener(url, timeout=timeout) as response, open(part, "wb") as out:
            expected = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            while True:
                if progress is not None:
                    progress(f"downloading {filename}", received, int(expected or 0), "B")
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise DataError(f"download of {url} stopped at {received} of {expected} bytes; "
                            "try again or download it by hand")
        if md5 is not None and digest.hexdigest() != md5:
            raise DataError(f"download of {url} has md5 {digest.hexdigest()}, expected {md5}; "
                            "try again or download it by hand")
        os.replace(part, path)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason}); check the connection or download it by "
                        "hand and pass its path") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
    return path


def file_md5(path: str) -> str:
    """The file's MD5, hex."""
    return file_digest(path, "md5")


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """The file's digest (sha256 by default), hex, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
