"""The report's tables of numbers: per-configuration aggregates over seeds and each trick against its parent."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from paddle_cnns import PARENTS, VARIANTS, Tricks
from paddle_cnns.errors import CNNsError

from . import report_stats as st
from .report_data import TRICKS, model_order

# The primary metric: top-1 accuracy on the test split of the checkpoint with the best eval
# accuracy (the eval split chose the checkpoint, so the test split is still unseen).
PRIMARY = "test_acc"
CONFIG_KEYS = ["study", "family", "variant", "name", "image_size", "lr_decay"]
MEANS = ("best_eval_acc", "final_eval_acc", "final_train_acc", "test_acc", "test_top5", "test_balanced_acc",
         "images_per_s", "train_time_s")  # best epochs are shown per seed (report_sections.best_epochs), not averaged


def _by_seed(done: pd.DataFrame, column: str) -> dict:
    return {int(s): float(v) for s, v in zip(done["seed"], done[column]) if st.finite(v) and st.finite(s)}


def _today_revision(variant: str):
    from paddle_cnns import get_spec
    try:
        return get_spec(variant).revision
    except CNNsError:
        return None


def _design_facts(g: pd.DataFrame, done: pd.DataFrame) -> dict:
    """What the runs say about their own design: stage sizes, convergence, fit, model version."""
    blocks = next((b for b in g["blocks"] if b), None)
    stages = [(name, tuple(shape)) for name, shape, _, _ in blocks] if blocks else []
    maps = [shape for _, shape in stages if len(shape) == 3]
    revisions = sorted({int(r) for r in g["model_revision"] if st.finite(r)})
    today = _today_revision(g["variant"].iloc[0])
    recorded = sorted({int(p) for p in g["params"] if st.finite(p)})
    return {
        "stages": stages, "last_map": maps[-1][1:] if maps else None,
        # the eval split still improved in the last epoch: training stopped before it converged
        "not_converged": int((done["best_epoch"] >= done["epochs_done"]).sum()),
        # train accuracy (running, dropout on) no higher than eval accuracy: not fit to its training images yet
        "underfit": int((done["final_train_acc"] <= done["final_eval_acc"]).sum()),
        "old_revisions": [r for r in revisions if today is not None and r != today], "revision_today": today,
        "params_recorded": recorded,
        # trained on another network than today's: the recorded revision says so (the model is not
        # rebuilt: the registry's revision is bumped whenever a network or its initialisation changes)
        "earlier_model": bool([r for r in revisions if today is not None and r != today]),
    }


def configs(runs: pd.DataFrame, predictions: Optional[dict] = None) -> pd.DataFrame:
    """One row per trained configuration (study, model, +lrdecay, image size) over its seeds.

    Metric columns hold the mean over finished runs, `<metric>_sd` the sample sd (NaN for one
    run); `by_seed` maps seed -> primary metric, `correct_by_seed` seed -> (labels, right/wrong per
    image) for the runs with stored predictions; the status counts show what did not finish.
    """
    predictions = predictions or {}
    rows = []
    for key, g in runs.groupby(CONFIG_KEYS, sort=False, dropna=False):
        done = g[g["status"] == "finished"]
        row = dict(zip(CONFIG_KEYS, key))
        row.update(runs=len(g), **{s: int((g["status"] == s).sum()) for s in ("finished", "diverged", "failed")})
        row["seeds"] = tuple(int(s) for s in g["seed"].dropna())
        row["finished_seeds"] = tuple(int(s) for s in done["seed"].dropna())
        row["by_seed"] = _by_seed(done, PRIMARY)
        row["balanced_by_seed"] = _by_seed(done, "test_balanced_acc")
        row["best_by_seed"] = _by_seed(done, "best_eval_acc")
        row["correct_by_seed"] = {int(s): (predictions[r].labels, predictions[r].correct)
                                  for s, r in zip(done["seed"], done["run_id"]) if r in predictions and st.finite(s)}
        for m in MEANS:
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
        row.update(_design_facts(g, done))
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


def compare(cfg, parent) -> st.Evidence:
    """Seeds and (where both stored predictions of the same images) images of cfg against parent."""
    seeds = st.paired_difference(cfg["by_seed"], parent["by_seed"])
    mine, theirs = cfg["correct_by_seed"], parent["correct_by_seed"]
    same = [s for s in seeds.seeds if s in mine and s in theirs and np.array_equal(mine[s][0], theirs[s][0])]
    images = st.image_test({s: mine[s][1] for s in same}, {s: theirs[s][1] for s in same}) if same else None
    return st.evidence(seeds, images)


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
    evidence: st.Evidence
    balanced: st.Paired   # the same pairing on balanced accuracy
    note: str
    cfg: object = None        # the variant's configuration row
    parent_cfg: object = None
    p_adjusted: Optional[float] = None
    verdict: str = ""

    @property
    def primary(self) -> st.Paired:
        return self.evidence.seeds


def _acc(cfg) -> tuple:
    if cfg is None:
        return (math.nan, math.nan, 0)
    return (cfg[PRIMARY], cfg[PRIMARY + "_sd"], len(cfg["by_seed"]))


def _change(tricks: Tricks, parent: Tricks) -> str:
    on, off = set(tricks.enabled()), set(parent.enabled())
    return " ".join([f"+{t}" for t in TRICKS if t in on - off] + [f"-{t}" for t in TRICKS if t in off - on])


def _unpaired_note(cfg, parent) -> str:
    a, b = set(cfg["finished_seeds"]), set(parent["finished_seeds"])
    notes = []
    for who, only in ((cfg["name"], a - b), (parent["name"], b - a)):
        if only:
            notes.append(f"seed {', '.join(map(str, sorted(only)))} of {who} has no partner")
    for who, c in ((cfg["name"], cfg), (parent["name"], parent)):
        if c["diverged"] or c["failed"]:
            notes.append(f"{who}: " + ", ".join(f"{c[s]} {s}" for s in ("diverged", "failed") if c[s]))
    return "; ".join(notes)


def _label(variant: str, lr_decay: bool, tag: str) -> str:
    return variant + ("+lrdecay" if lr_decay else "") + (f"~{tag}" if tag else "")


def _pairs(cfg, index: dict) -> list:
    """(parent configuration or None, its label, its tricks, change) for one trick configuration.

    A variant trained with LR decay is compared first with itself without decay: the change is
    the decay (the article's all-tricks 66% vs ~60%), whether or not that ran. With its trick parent
    trained with decay too, also with that.
    """
    where = (cfg["study"], cfg["image_size"])
    tag = cfg["name"].split("~", 1)[1] if "~" in cfg["name"] else ""
    out = []
    if cfg["lr_decay"]:
        plain = index.get((*where, cfg["variant"], False))
        out.append((plain, _label(cfg["variant"], False, tag), tricks_of(cfg), "+lr_decay"))
    parent_name = PARENTS.get(cfg["variant"], None if cfg["variant"] == "sigmoid" else "baseline")
    if parent_name is not None:
        parent = index.get((*where, parent_name, cfg["lr_decay"]))
        if parent is not None or not cfg["lr_decay"]:
            theirs = tricks_of(parent) if parent is not None else VARIANTS.get(parent_name, Tricks())
            out.append((parent, _label(parent_name, cfg["lr_decay"], tag), theirs, None))
    return out


def ablation(cfgs: pd.DataFrame) -> list:
    """Each trick configuration against its parent at the same study, image size and LR-decay setting,
    with Holm-adjusted p-values over each study's comparisons and the verdict they give."""
    if cfgs.empty:
        return []
    tricks = cfgs[cfgs["family"] == "trick"]
    index = {(r["study"], r["image_size"], r["variant"], r["lr_decay"]): r for _, r in tricks.iterrows()}
    out = []
    for _, cfg in tricks.iterrows():
        mine = tricks_of(cfg)
        for parent, label, theirs, change in _pairs(cfg, index):
            if parent is not None:
                ev, bal, note = compare(cfg, parent), st.paired_difference(
                    cfg["balanced_by_seed"], parent["balanced_by_seed"]), _unpaired_note(cfg, parent)
            else:
                ev, bal, note = st.evidence(st.paired_difference({}, {}), None), st.paired_difference({}, {}), \
                    f"{label} not run"
            out.append(Comparison(
                study=cfg["study"], image_size=cfg["image_size"], variant=cfg["name"], parent=label,
                parent_ran=parent is not None, tricks=mine, parent_tricks=theirs, lr_decay=bool(cfg["lr_decay"]),
                change=change or _change(mine, theirs), variant_acc=_acc(cfg), parent_acc=_acc(parent),
                evidence=ev, balanced=bal, note=note, cfg=cfg, parent_cfg=parent))
    return _adjust(out)


def _adjust(comparisons: list) -> list:
    """Holm within each study (the trick table's family of comparisons), then each verdict."""
    out = list(comparisons)
    for study in sorted({c.study for c in out}):
        idx = [i for i, c in enumerate(out) if c.study == study]
        adjusted = st.holm([out[i].evidence.p for i in idx])
        for i, p in zip(idx, adjusted):
            out[i] = replace(out[i], p_adjusted=p, verdict=verdict(out[i], p))
    return out


def verdict(c: Comparison, p_adjusted: Optional[float]) -> str:
    """helps / hurts when the Holm-adjusted p is below ALPHA, else inconclusive; or why not measured."""
    if not c.parent_ran:
        return "not measured (parent not run)"
    if c.evidence.seeds.n == 0:
        return "not measured (no common seed)"
    if p_adjusted is None:
        return "inconclusive (n=1)"
    if p_adjusted < st.ALPHA:
        return "helps" if c.evidence.mean > 0 else "hurts"
    return "inconclusive"


def errors_removed(delta: Optional[float], parent_acc: float) -> Optional[float]:
    """A difference in accuracy as the share of the parent's errors it removes (relative error reduction)."""
    if delta is None or not st.finite(parent_acc) or parent_acc >= 1:
        return None
    return delta / (1 - parent_acc)


def interval_removed(ci: Optional[Tuple[float, float]], parent_acc: float):
    if ci is None or not st.finite(parent_acc) or parent_acc >= 1:
        return None
    return (ci[0] / (1 - parent_acc), ci[1] / (1 - parent_acc))
