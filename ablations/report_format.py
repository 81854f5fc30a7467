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


# Below any difference a test set can show (accuracies are counts over at most millions of images):
# float rounding, as when two sets of seeds have the same mean accuracy. Printed as 0, unsigned.
NOISE = 1e-9


def _decimals(values, start: int = 1, most: int = 3) -> int:
    """Enough decimals that no nonzero value rounds to zero (a CI bound of -0.04 must not print as -0.0)."""
    d = start
    while d < most and any(abs(v) >= NOISE and round(v, d) == 0 for v in values):
        d += 1
    return d


def signed(v: float, d: int) -> str:
    if abs(v) < NOISE:
        return f"{0:.{d}f}"
    text = f"{v:+.{d}f}"
    if float(text) == 0:  # a real difference too small for `most` decimals: no sign that lies
        return f"{v:+.1e}"
    return text


def interval(ci, scale: float = 100.0, unit: str = "") -> str:
    """'[-3.52, -0.04]': a confidence interval in points (or % with scale 100 and unit '%'), digits as needed."""
    if ci is None or missing(ci[0]) or missing(ci[1]):
        return DASH
    lo, hi = scale * ci[0], scale * ci[1]
    d = _decimals((lo, hi))
    return f"[{signed(lo, d)}{unit}, {signed(hi, d)}{unit}]"


def delta(v, scale: float = 100.0) -> str:
    """A difference in points with its sign; more digits only when one would otherwise print 0.0."""
    if missing(v):
        return DASH
    return signed(scale * v, _decimals((scale * v,)))


def pvalue(p) -> str:
    """p to two significant digits, '< 0.001' below that."""
    if missing(p):
        return DASH
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"
