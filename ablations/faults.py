"""Deterministic fault injection, for the fault tests: a process can signal itself at a named point.

    PADDLE_CNNS_FAULT="epoch=2:KILL"      SIGKILL right after epoch 2's checkpoint and logs
    PADDLE_CNNS_FAULT="step=7:INT"        SIGINT (as Ctrl-C) after global training step 7
    PADDLE_CNNS_FAULT="step=3@1:KILL"     SIGKILL after step 3, in data-parallel rank 1 only

Several points may be given, separated by commas. Unset (always, outside tests), hit() is a
dictionary lookup and nothing else.
"""
from __future__ import annotations

import os
import signal

VARIABLE = "PADDLE_CNNS_FAULT"


def _parse(text: str) -> dict:
    points = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        where, _, sig = item.partition(":")
        where, _, rank = where.partition("@")
        if rank and rank != os.environ.get("PADDLE_TRAINER_ID", "0"):
            continue  # meant for another rank of a data-parallel run
        point, _, value = where.partition("=")
        points[(point, value)] = getattr(signal, "SIG" + (sig or "KILL"))
    return points


def hit(point: str, value=None) -> None:
    """Signal this process if PADDLE_CNNS_FAULT names this point (and value)."""
    text = os.environ.get(VARIABLE)
    if not text:
        return
    sig = _parse(text).get((point, "" if value is None else str(value)))
    if sig is not None:
        os.kill(os.getpid(), sig)
