"""Number and text formats of the report, fixed so that regenerated files repeat byte for byte."""
from __future__ import annotations

import datetime
import math

import pandas as pd

DASH = "–"  # an empty measurement


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v) -> str:
    return DASH if missing(v) else f"{100 * v:.1f}"


def pct_sd(mean, sd) -> str:
    return pct(mean) if missing(sd) or missing(mean) else f"{100 * mean:.1f} ± {100 * sd:.1f}"


def pts(v) -> str:
    return DASH if missing(v) else f"{100 * v:+.1f}"


def si(v) -> str:
    """44708240 -> '44.71 M'; FLOPs and params."""
    if missing(v):
        return DASH
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f}"


def secs(v) -> str:
    return DASH if missing(v) else f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def rate(v) -> str:
    return DASH if missing(v) else f"{v:.1f}"


def duration(seconds: float) -> str:
    if missing(seconds):
        return DASH
    m = round(seconds / 60)
    return f"{seconds:.0f} s" if seconds < 60 else f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def ints(values) -> str:
    return ", ".join(str(int(v)) for v in sorted(set(values))) or DASH


def runs_cell(cfg) -> str:
    """'3' when every run finished, else '2 of 3 (1 diverged)'."""
    if cfg["finished"] == cfg["runs"]:
        return str(int(cfg["runs"]))
    bad = ", ".join(f"{int(cfg[s])} {s}" for s in ("diverged", "failed") if cfg[s])
    return f"{int(cfg['finished'])} of {int(cfg['runs'])} ({bad})"


def num(v) -> str:
    """A setting as typed: 5 not 5.0, 0.01 not 0.0100."""
    if missing(v):
        return DASH
    if isinstance(v, (int, float)) and float(v) == int(v):
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def plural(v, word: str) -> str:
    return f"{num(v)} {word}" + ("" if num(v) == "1" else "s")


def dates(runs: pd.DataFrame) -> tuple[str, str]:
    """First start to last finish (UTC, from the rows), and compute: the runs' wall times summed."""
    stamps = []
    for at, wall in zip(runs["finished_at"], runs["wall_time_s"]):
        try:
            end = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ")
        except (TypeError, ValueError):
            continue
        stamps.append((end - datetime.timedelta(seconds=0 if missing(wall) else wall), end))
    if not stamps:
        return DASH, DASH
    start, end = min(s for s, _ in stamps), max(e for _, e in stamps)
    fmt = "%Y-%m-%d %H:%M"
    when = f"{start.strftime(fmt)} to {end.strftime(fmt)}"
    total = float(runs["wall_time_s"].dropna().sum())
    return when, (f"{duration(total)} of run wall time in all; {duration((end - start).total_seconds())} "
                  "from the first start to the last finish")
