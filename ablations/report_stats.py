"""The report's statistics: paired differences over seeds, McNemar over images, a bootstrap over both, Holm."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 0.05
# The bootstrap draws from a fixed generator: the same inputs give the same interval, so the
# report regenerates byte for byte.
BOOTSTRAP_REPLICATES = 4000
BOOTSTRAP_SEED = 4
CHUNK = 250


def finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


# ---------------------------------------------------------------- seeds

@dataclass(frozen=True)
class Paired:
    """Differences variant - parent on the seeds both finished, as fractions (0.05 = 5 points)."""
    seeds: Tuple[int, ...]
    diffs: Tuple[float, ...]
    mean: Optional[float]
    sd: Optional[float]                    # sample standard deviation (ddof=1)
    ci: Optional[Tuple[float, float]]      # t-interval of the mean difference
    p: Optional[float]                     # two-sided paired t-test (H0: mean difference 0)

    @property
    def n(self) -> int:
        return len(self.seeds)


def paired_difference(variant: dict, parent: dict, level: float = LEVEL) -> Paired:
    """Pair by seed, then mean ± t_{(1+level)/2, n-1} * sd / sqrt(n) and the paired t-test's p.

    One pair gives a difference but neither interval nor p; no pair gives nothing.
    """
    seeds = tuple(sorted(s for s in set(variant) & set(parent) if finite(variant[s]) and finite(parent[s])))
    diffs = tuple(float(variant[s]) - float(parent[s]) for s in seeds)
    n = len(diffs)
    if n == 0:
        return Paired(seeds, diffs, None, None, None, None)
    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean())
    if n == 1:
        return Paired(seeds, diffs, mean, None, None, None)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * se
    if se == 0:  # every seed gave the same difference: certain if it is not 0
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return Paired(seeds, diffs, mean, sd, (mean - half, mean + half), p)


# ---------------------------------------------------------------- images

def mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar p: of the b + c images exactly one run got right, b went to the first.

    Under H0 (both runs equally accurate) each such image is a fair coin.
    """
    if b + c == 0:
        return 1.0
    return float(min(1.0, stats.binomtest(int(b), int(b + c), 0.5).pvalue))


def bootstrap_ci(diff: np.ndarray, level: float = LEVEL, replicates: int = BOOTSTRAP_REPLICATES,
                 seed: int = BOOTSTRAP_SEED) -> Tuple[float, float]:
    """Percentile interval of the mean of `diff` [seeds, images] resampling seeds and images.

    Each replicate draws the seeds with replacement and, independently, the images with
    replacement (the same images for every seed: the runs share one test set), so the interval
    holds both the training noise (seeds) and the test-set noise (images).
    """
    diff = np.asarray(diff, dtype=np.float64)
    n_seeds, n_images = diff.shape
    rng = np.random.default_rng(seed)
    means = np.empty(replicates)
    for start in range(0, replicates, CHUNK):  # chunks bound the memory for large test sets
        k = min(CHUNK, replicates - start)
        draws = rng.integers(0, n_images, size=(k, n_images)) + n_images * np.arange(k)[:, None]
        counts = np.bincount(draws.ravel(), minlength=k * n_images).reshape(k, n_images)
        per_seed = counts @ diff.T / n_images                      # replicates x seeds
        picked = rng.integers(0, n_seeds, size=(k, n_seeds))
        means[start:start + k] = np.take_along_axis(per_seed, picked, axis=1).mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class ImageTest:
    """A paired per-image comparison over the seeds where both runs stored predictions."""
    seeds: Tuple[int, ...]
    images: int
    discordant: Tuple[Tuple[int, int], ...]   # per seed: (only the variant right, only the parent right)
    p_per_seed: Tuple[float, ...]               # exact McNemar per seed
    p: float                                    # exact McNemar on the discordant images of every seed
    mean: float
    ci: Tuple[float, float]                     # bootstrap over seeds x images


def image_test(variant: dict, parent: dict) -> Optional[ImageTest]:
    """variant/parent: seed -> boolean array 'image i classified right'. None without a common seed."""
    seeds = tuple(sorted(s for s in set(variant) & set(parent) if len(variant[s]) == len(parent[s])))
    if not seeds:
        return None
    v = np.stack([np.asarray(variant[s], dtype=np.int64) for s in seeds])
    p = np.stack([np.asarray(parent[s], dtype=np.int64) for s in seeds])
    b = ((v == 1) & (p == 0)).sum(axis=1)
    c = ((v == 0) & (p == 1)).sum(axis=1)
    diff = v - p
    return ImageTest(seeds, int(v.shape[1]), tuple((int(x), int(y)) for x, y in zip(b, c)),
                     tuple(mcnemar(x, y) for x, y in zip(b, c)), mcnemar(int(b.sum()), int(c.sum())),
                     float(diff.mean()), bootstrap_ci(diff))


# ---------------------------------------------------------------- several comparisons

def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of a family of p-values (None stays None, outside the family).

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    out: list = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Evidence:
    """What one comparison rests on: the seeds, the images when stored, and the p that combines them."""
    seeds: Paired
    images: Optional[ImageTest]
    p: Optional[float]
    basis: str                                  # seeds and images | seeds | images (one seed) | ''
    ci: Optional[Tuple[float, float]]           # the interval verdicts use

    @property
    def mean(self) -> Optional[float]:
        return self.seeds.mean


def evidence(seeds: Paired, images: Optional[ImageTest]) -> Evidence:
    """Combine the seed-level and image-level tests.

    With both, p is the larger of the two (an intersection-union test: a difference counts only
    if it holds across training seeds and across test images) and the interval, in the same
    spirit, spans both the seeds' t-interval and the bootstrap over seeds x images: a value is
    ruled out only when both rule it out. The bootstrap alone is too narrow with a few seeds
    (resampling 3 seeds understates their spread by a factor sqrt(2/3) and uses normal rather
    than t quantiles), so it could exclude 0 where the seeds' t-test finds nothing. With seeds
    only (no stored predictions): the t-test and t-interval. With one seed and predictions:
    McNemar and a bootstrap over images (test-set noise only).
    """
    if images is not None and images.seeds != seeds.seeds:
        images = None  # predictions for only some of the paired seeds: not the same comparison
    if images is not None and seeds.p is not None:
        span = (min(seeds.ci[0], images.ci[0]), max(seeds.ci[1], images.ci[1]))
        return Evidence(seeds, images, max(seeds.p, images.p), "seeds and images", span)
    if seeds.p is not None:
        return Evidence(seeds, None, seeds.p, "seeds", seeds.ci)
    if images is not None:
        return Evidence(seeds, images, images.p, "images (one seed)", images.ci)
    return Evidence(seeds, None, None, "", None)
