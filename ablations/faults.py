"""Deterministic fault injection, for the fault tests: a process can signal itself at a named point,
or find its disk full at a chosen byte.

    PADDLE_CNNS_FAULT="epoch=2:KILL"                      SIGKILL right after epoch 2's checkpoint and logs
    PADDLE_CNNS_FAULT="step=7:INT"                        SIGINT (as Ctrl-C) after global training step 7
    PADDLE_CNNS_FAULT="step=3@1:KILL"                     SIGKILL after step 3, in data-parallel rank 1 only
    PADDLE_CNNS_FAULT="between_checkpoint_writes=3:KILL"  epoch 3: latest staged, best not yet
    PADDLE_CNNS_FAULT="after_checkpoint_commit=3:KILL"    epoch 3: manifest written, files not yet renamed
    PADDLE_CNNS_FAULT="after_row_append:KILL"             the results row is in the store, outcome.json is not
    PADDLE_CNNS_FAULT="epoch=1:STOP"                      freeze (SIGSTOP) holding the run's lock
    PADDLE_CNNS_FAULT="write=results:ENOSPC@100"          writes to the results store fail with ENOSPC
                                                          after 100 bytes (this process, all appends)
    PADDLE_CNNS_FAULT="write=visualdl:ENOSPC@0"           VisualDL's record writes fail the same way

Several points may be given, separated by commas. Unset (always, outside tests), hit() and
limit_writes() are a dictionary lookup and nothing else.
"""
from __future__ import annotations

import errno
import os
import signal

VARIABLE = "PADDLE_CNNS_FAULT"
_written: dict = {}  # write label -> bytes written so far in this process


def _parse(text: str) -> dict:
    points = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        where, _, action = item.partition(":")
        where, _, rank = where.partition("@")
        if rank and rank != os.environ.get("PADDLE_TRAINER_ID", "0"):
            continue  # meant for another rank of a data-parallel run
        point, _, value = where.partition("=")
        if action.startswith("ENOSPC"):
            points[(point, value)] = ("ENOSPC", int(action.partition("@")[2] or 0))
        else:
            points[(point, value)] = getattr(signal, "SIG" + (action or "KILL"))
    return points


def _action(point: str, value=None):
    text = os.environ.get(VARIABLE)
    if not text:
        return None
    return _parse(text).get((point, "" if value is None else str(value)))


def hit(point: str, value=None) -> None:
    """Signal this process if PADDLE_CNNS_FAULT names this point (and value)."""
    sig = _action(point, value)
    if sig is not None and not isinstance(sig, tuple):
        os.kill(os.getpid(), sig)


def _full(label: str, limit: int, write, data):
    """Write what still fits under `limit` bytes (as a full disk does), then raise ENOSPC."""
    done = _written.get(label, 0)
    room = max(0, limit - done)
    if len(data) <= room:
        _written[label] = done + len(data)
        return write(data)
    if room:
        write(data[:room])
    _written[label] = limit
    raise OSError(errno.ENOSPC, f"No space left on device (injected after {limit} bytes of {label} writes)")


def limit_writes(write, label: str):
    """`write` itself, or, when PADDLE_CNNS_FAULT says write=LABEL:ENOSPC@N, a write that fails at byte N."""
    action = _action("write", label)
    if not isinstance(action, tuple):
        return write
    return lambda data: _full(label, action[1], write, data)


def patch_visualdl() -> None:
    """With write=visualdl:ENOSPC@N, make VisualDL's record-file writes fail at byte N (once per process)."""
    action = _action("write", "visualdl")
    if not isinstance(action, tuple):
        return
    from visualdl.io import bfile

    fs = bfile.LocalFileSystem
    if getattr(fs, "_fault_patched", False):
        return
    real = fs._write

    def _write(self, filename, file_content, mode):
        if "vdlrecords" not in os.path.basename(filename):
            return real(self, filename, file_content, mode)
        return _full("visualdl", action[1], lambda data: real(self, filename, data, mode), file_content)
    fs._write, fs._fault_patched = _write, True
