"""The report's numbers: per-variant aggregates over seeds, paired trick differences, seed 004's claims."""
from __future__ import annotations
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from paddle_cnns import PARENTS, VARIANTS, Tricks

from .report_data import TRICKS, model_order

# The primary metric: top-1 accuracy on the test split of the checkpoint with the best eval
# accuracy (the eval split chose the checkpoint, so the test split is still unseen).
PRIMARY = "test_acc"
LEVEL = 0.95
# A configuration "converges" when its balanced test accuracy beats twice the chance level
# (1 / classes). Plain accuracy cannot tell: a net that always answers the largest class scores
# that class's share (the sigmoid CNN's 22.3% on Caltech-16 is exactly that).
CONVERGE_FACTOR = 2.0
# A claim of "about +X points" agrees when our mean difference is positive and within this many
# points of X: the seed ran one seed at 224 px for 60 epochs, so only the sign and rough size carry over.
TOLERANCE_PTS = 10.0
CONFIG_KEYS = ["study", "family", "variant", "name", "image_size", "lr_decay"]


# ---------------------------------------------------------------- paired differences

@dataclass(frozen=True)
class Paired:
    """Differences variant - parent on the seeds both finished, as fractions (0.05 = 5 points)."""
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    mean: float | None
    sd: float | None       # sample standard deviation (ddof=1)
    ci: tuple[float, float] | None  # 95% t-interval of the mean difference
    verdict: str

    @property
    def n(self) -> int:
        return len(self.seeds)


def paired_difference(variant: dict[int, float], parent: dict[int, float], level: float = LEVEL) -> Paired:
    """Pair by seed, then mean ± t_{(1+level)/2, n-1} * sd / sqrt(n).

    helps: the interval lies above 0; hurts: below 0; otherwise inconclusive. One pair gives a
    difference but no interval ("inconclusive (n=1)"); no pair gives nothing ("no common seed").
    """
    seeds = tuple(sorted(s for s in set(variant) & set(parent)
                         if _finite(variant[s]) and _finite(parent[s])))
    diffs = tuple(float(variant[s]) - float(parent[s]) for s in seeds)
    n = len(diffs)
    if n == 0:
        return Paired(seeds, diffs, None, None, None, "not measured (no common seed)")
    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean())
    if n == 1:
        return Paired(seeds, diffs, mean, None, None, "inconclusive (n=1)")
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    ci = (mean - half, mean + half)
    verdict = "helps" if ci[0] > 0 else "hurts" if ci[1] < 0 else "inconclusive"
    return Paired(seeds, diffs, mean, sd, ci, verdict)


def _finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


# ---------------------------------------------------------------- per-variant aggregates

def configs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trained configuration (study, model, +lrdecay, image size) over its seeds.

    Metric columns hold the mean over finished runs, `<metric>_sd` the sample sd (NaN for one
    run); `by_seed` maps seed -> primary metric; the status counts show what did not finish.
    """
    rows = []
    for key, g in runs.groupby(CONFIG_KEYS, sort=False, dropna=False):
        done = g[g["status"] == "finished"]
        row = dict(zip(CONFIG_KEYS, key))
        row.update(runs=len(g), **{s: int((g["status"] == s).sum()) for s in ("finished", "diverged", "failed")})
        row["seeds"] = tuple(int(s) for s in g["seed"].dropna())
        row["finished_seeds"] = tuple(int(s) for s in done["seed"].dropna())
        row["by_seed"] = {int(s): float(v) for s, v in zip(done["seed"], done[PRIMARY]) if _finite(v) and _finite(s)}
        row["best_by_seed"] = {int(s): float(v) for s, v in zip(done["seed"], done["best_eval_acc"])
                               if _finite(v) and _finite(s)}
        for m in ("best_eval_acc", "final_eval_acc", "final_train_acc", "test_acc", "test_top5",
                  "test_balanced_acc", "images_per_s", "train_time_s", "best_epoch", "epochs_done"):
            values = done[m].dropna().to_numpy(dtype=np.float64)
            row[m] = float(values.mean()) if len(values) else math.nan
            row[m + "_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        # best eval accuracy including diverged runs (their best before the loss blew up)
        tried = g[g["status"] != "failed"]["best_eval_acc"].dropna().to_numpy(dtype=np.float64)
        row["best_eval_any"] = float(tried.mean()) if len(tried) else math.nan
        for m in ("params", "macs", "num_classes", "in_channels", "epochs"):
            values = g[m].dropna()
            row[m] = float(values.iloc[0]) if len(values) else math.nan
        first = g.iloc[0]
        row["tricks"] = {t: first[t] for t in TRICKS} if row["family"] == "trick" else None
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_order"] = out["variant"].map(model_order)
    out = out.sort_values(["study", "family", "_order", "lr_decay", "image_size", "name"], kind="mergesort",
                          key=lambda c: c.map(lambda v: 0 if v == "classic" else 1) if c.name == "family" else c)
    return out.drop(columns=["_order"]).reset_index(drop=True)


def tricks_of(cfg) -> Tricks:
    if cfg["tricks"] is not None and all(v is not None for v in cfg["tricks"].values()):
        return Tricks(**{k: bool(v) for k, v in cfg["tricks"].items()})
    return VARIANTS.get(cfg["variant"], Tricks())


# ---------------------------------------------------------------- the ablation

@dataclass(frozen=True)
class Comparison:
    study: str
    image_size: float
    variant: str          # the run label, e.g. gap or all_tricks+lrdecay
    parent: str           # the parent's run label
    parent_ran: bool
    tricks: Tricks
    parent_tricks: Tricks
    lr_decay: bool
    change: str           # what differs from the parent, e.g. +gap or +lr_decay
    variant_acc: tuple    # (mean, sd, n) of the primary metric over the variant's finished seeds
    parent_acc: tuple
    primary: Paired
    best_eval: Paired
    note: str


def _acc(cfg) -> tuple:
    if cfg is None:
        return (math.nan, math.nan, 0)
    return (cfg[PRIMARY], cfg[PRIMARY + "_sd"], len(cfg["by_seed"]))


def _change(tricks: Tricks, parent: Tricks) -> str:
    on, off = set(tricks.enabled()), set(parent.enabled())
    return " ".join([f"+{t}" for t in TRICKS if t in on - off] + [f"-{t}" for t in TRICKS if t in off - on])


def _unpaired_note(cfg, parent) -> str:
    if parent is None:
        return ""
    a, b = set(cfg["finished_seeds"]), set(parent["finished_seeds"])
    notes = []
    for who, only in ((cfg["name"], a - b), (parent["name"], b - a)):
        if only:
            notes.append(f"seed {', '.join(map(str, sorted(only)))} of {who} has no partner")
    for who, c in ((cfg["name"], cfg), (parent["name"], parent)):
        if c["diverged"] or c["failed"]:
            notes.append(f"{who}: " + ", ".join(f"{c[s]} {s}" for s in ("diverged", "failed") if c[s]))
    return "; ".join(notes)


def ablation(cfgs: pd.DataFrame) -> list[Comparison]:
    """Each trick variant against its parent at the same study, image size and LR-decay setting.

    A variant trained with LR decay is compared with the same variant without decay when that
    ran (the trick is then the decay itself: seed 004's all-tricks 66% vs ~60%), and with its
    parent trained with decay when that ran. With neither, the row says the parent did not run.
    """
    if cfgs.empty:
        return []
    tricks = cfgs[cfgs["family"] == "trick"]
    index = {(r["study"], r["image_size"], r["variant"], r["lr_decay"]): r for _, r in tricks.iterrows()}
    out = []
    for _, cfg in tricks.iterrows():
        where = (cfg["study"], cfg["image_size"])
        pairs = []
        if cfg["lr_decay"] and (*where, cfg["variant"], False) in index:
            pairs.append((index[(*where, cfg["variant"], False)], "+lr_decay"))
        parent_name = PARENTS.get(cfg["variant"], None if cfg["variant"] == "sigmoid" else "baseline")
        if parent_name is not None:
            parent = index.get((*where, parent_name, cfg["lr_decay"]))
            if parent is not None or not pairs:
                pairs.append((parent, None))
        for parent, change in pairs:
            mine = tricks_of(cfg)
            theirs = tricks_of(parent) if parent is not None else VARIANTS.get(parent_name, Tricks())
            tag = cfg["name"].split("~", 1)[1] if "~" in cfg["name"] else ""
            label = parent["name"] if parent is not None else (
                parent_name + ("+lrdecay" if cfg["lr_decay"] else "") + (f"~{tag}" if tag else ""))
            note = _unpaired_note(cfg, parent) if parent is not None else f"{label} not run"
            out.append(Comparison(
                study=cfg["study"], image_size=cfg["image_size"], variant=cfg["name"], parent=label,
                parent_ran=parent is not None, tricks=mine, parent_tricks=theirs, lr_decay=bool(cfg["lr_decay"]),
                change=change or _change(mine, theirs), variant_acc=_acc(cfg), parent_acc=_acc(parent),
                primary=paired_difference(cfg["by_seed"], parent["by_seed"] if parent is not None else {}),
                best_eval=paired_difference(cfg["best_by_seed"], parent["best_by_seed"] if parent is not None else {}),
                note=note))
    return out


def compare_configs(cfg, parent) -> Paired:
    return paired_difference(cfg["by_seed"], parent["by_seed"])


# ---------------------------------------------------------------- seed 004's claims

@dataclass(frozen=True)
class Claim:
    """One line of seed 004's article, and how our tables test it."""
    text: str
    seed_says: str
    kind: str       # not_converges | converges | delta | best_classic | overfits
    variant: str = ""
    parent: str = ""
    expected_pts: float | None = None


CLAIMS = [
    Claim("A sigmoid CNN does not converge", "stays at chance", "not_converges", "sigmoid"),
    Claim("BatchNorm makes the sigmoid CNN converge", "converges", "converges", "baseline"),
    Claim("LeakyReLU instead of sigmoid", "+10 pts", "delta", "leaky_relu", "baseline", 10.0),
    Claim("Global average pooling instead of the FC head", "about +25 pts", "delta", "gap", "baseline", 25.0),
    Claim("Dropout before the classifier", "about +20 pts", "delta", "dropout", "baseline", 20.0),
    Claim("Stacks of 3x3 convs instead of 5x5", "about +20 pts", "delta", "conv3x3", "baseline", 20.0),
    Claim("ConcatConv (Inception-style) block", "about +25 pts", "delta", "concat_conv", "baseline", 25.0),
    Claim("All tricks: 66% with LR decay vs about 60% without", "+6 pts from LR decay", "delta",
          "all_tricks+lrdecay", "all_tricks", 6.0),
    Claim("AlexNet is the best of the classic networks", "alexnet", "best_classic", "alexnet"),
    Claim("VGG overfits", "overfits", "overfits", "vgg"),
    Claim("BatchNorm improves GoogLeNet", "about +8 pts", "delta", "googlenet_bn", "googlenet", 8.0),
]

CRITERIA = [
    f"converges: balanced test accuracy (mean per-class recall) above {CONVERGE_FACTOR:g}x chance "
    "(1 / number of classes), as the mean over the finished runs; plain accuracy is not used, since a network "
    "that always predicts the largest class scores that class's share; a configuration whose runs all diverged "
    "did not converge",
    f"about +X pts: agrees when the mean paired difference in test top-1 is positive and within ±{TOLERANCE_PTS:g} "
    "points of X; the 95% CI is shown for certainty but not used",
    "best of the classics: the classic network with the highest mean test top-1 (at least two classics measured)",
    "overfits: the mean gap final train accuracy - final eval accuracy over the VGG runs is larger than over "
    "the other classic networks (train accuracy is measured during the epoch, with dropout on)",
]


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    measured: str
    verdict: str    # agree | disagree | not measured


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def check_claims(cfgs: pd.DataFrame, study: str) -> list[Verdict]:
    """Each claim measured on one study's configurations (the LR-decay claim aside, at no decay)."""
    own = cfgs[cfgs["study"] == study] if not cfgs.empty else cfgs
    by_name = {}  # variant[+lrdecay] -> configuration; the tag is the same across one study
    for _, c in own.iterrows():
        by_name.setdefault(c["variant"] + ("+lrdecay" if c["lr_decay"] else ""), c)  # several sizes: the first
    out = []
    for claim in CLAIMS:
        out.append(Verdict(claim, *_measure(claim, by_name, own)))
    return out


def _chance(cfg) -> float:
    return 1.0 / cfg["num_classes"] if _finite(cfg["num_classes"]) and cfg["num_classes"] > 0 else math.nan


def _measure(claim: Claim, by_name: dict, own: pd.DataFrame) -> tuple[str, str]:
    if claim.kind in ("converges", "not_converges"):
        cfg = by_name.get(claim.variant)
        if cfg is None:
            return f"{claim.variant} not run", "not measured"
        balanced, chance = cfg["test_balanced_acc"], _chance(cfg)
        if _finite(balanced):
            converged = balanced > CONVERGE_FACTOR * chance
            text = f"balanced test acc {100 * balanced:.1f}% (chance {100 * chance:.1f}%)"
            if _finite(cfg["best_eval_any"]):
                text += f"; best eval acc {100 * cfg['best_eval_any']:.1f}%"
        elif cfg["finished"]:
            return f"{claim.variant}: no balanced test accuracy recorded (older results file)", "not measured"
        elif cfg["diverged"]:
            converged, text = False, "no run finished"
        else:
            return f"{claim.variant}: every run failed", "not measured"
        if cfg["diverged"]:
            text += f"; {int(cfg['diverged'])} of {int(cfg['runs'])} runs diverged"
        agree = converged if claim.kind == "converges" else not converged
        return text, "agree" if agree else "disagree"
    if claim.kind == "delta":
        cfg, parent = by_name.get(claim.variant), by_name.get(claim.parent)
        missing = [n for n, c in ((claim.variant, cfg), (claim.parent, parent)) if c is None]
        if missing:
            return f"{' and '.join(missing)} not run", "not measured"
        p = compare_configs(cfg, parent)
        if p.mean is None:
            return f"no seed where both {claim.variant} and {claim.parent} finished", "not measured"
        text = f"{_pts(p.mean)} (n={p.n}"
        text += f", 95% CI {100 * p.ci[0]:+.1f} to {100 * p.ci[1]:+.1f})" if p.ci else ")"
        text += f"; {100 * cfg[PRIMARY]:.1f}% vs {100 * parent[PRIMARY]:.1f}%"
        agree = p.mean > 0 and abs(100 * p.mean - claim.expected_pts) <= TOLERANCE_PTS
        return text, "agree" if agree else "disagree"
    classics = own[(own["family"] == "classic") & own[PRIMARY].notna()] if not own.empty else own
    if claim.kind == "best_classic":
        if len(classics) < 2:
            return "fewer than two classic networks measured", "not measured"
        best = classics.sort_values([PRIMARY, "name"], ascending=[False, True], kind="mergesort").iloc[0]
        return f"{best['name']} ({100 * best[PRIMARY]:.1f}% test top-1, of {len(classics)})", \
            "agree" if best["variant"] == claim.variant else "disagree"
    if claim.kind == "overfits":
        gap = (classics["final_train_acc"] - classics["final_eval_acc"])
        is_vgg = classics["variant"].str.startswith(claim.variant)
        if not is_vgg.any() or is_vgg.all() or gap.isna().all():
            return "needs VGG and at least one other classic network", "not measured"
        vgg, others = float(gap[is_vgg].mean()), float(gap[~is_vgg].mean())
        return f"train - eval gap {100 * vgg:.1f} pts for VGG vs {100 * others:.1f} pts for the others", \
            "agree" if vgg > others else "disagree"
    raise ValueError(f"unknown claim kind {claim.kind!r}")
