"""The LR check: studies that repeat the main study at other learning rates, and whether a verdict changes.

A study whose recipe equals the main study's in everything but the learning rate (and the run tag
that keeps its runs apart) is an LR check of it: it trains a few of the main study's models, say
baseline and all_tricks at lr 0.003 and 0.03, so that a verdict can be seen not to be an artefact of
one learning rate. Its runs are not in the main tables; this section sets each comparison it holds
beside the same comparison at the main study's learning rate on the same seeds.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from . import report_ablation as ab
from .report_data import STUDY_COLUMNS, same_setting
from .report_doc import Doc
from .report_format import DASH, delta, interval, missing, num, pct, plural, pvalue

ALL_BUT_LR = tuple(c for c in STUDY_COLUMNS if c not in ("lr", "tag"))


def lr_checks(studies: dict, main: str) -> dict:
    """study -> its learning rate, for each study that is the main study at another learning rate."""
    ours = studies[main]
    return {s: float(v["lr"]) for s, v in sorted(studies.items())
            if s != main and all(same_setting(v[c], ours[c]) for c in ALL_BUT_LR)
            and not same_setting(v["lr"], ours["lr"])}


def checks_phrase(rep) -> str:
    """'study S2 (lr 0.03) repeats' or 'studies S1 (lr 0.003), S3 (lr 0.03) repeat'."""
    one = len(rep.lr_checks) == 1
    return (("study " if one else "studies ") + ", ".join(f"{s} (lr {num(lr)})" for s, lr in rep.lr_checks.items())
            + (" repeats" if one else " repeat"))


def plain_name(name: str) -> str:
    """The run label without its tag: all_tricks~lr0.03 -> all_tricks."""
    return name.split("~", 1)[0]


def _restrict(cfg, seeds: set):
    """A configuration row cut down to `seeds`, so a comparison pairs only those."""
    c = cfg.copy()
    for k in ("by_seed", "balanced_by_seed", "best_by_seed", "correct_by_seed"):
        c[k] = {s: v for s, v in cfg[k].items() if s in seeds}
    c["finished_seeds"] = tuple(s for s in cfg["finished_seeds"] if s in seeds)
    return c


def _unadjusted(c: ab.Comparison) -> ab.Comparison:
    """The comparison judged as a single test: each learning rate's comparison stands on its own."""
    return replace(c, p_adjusted=c.evidence.p, verdict=ab.verdict(c, c.evidence.p))


def rows(rep) -> list:
    """(check comparison, the same comparison in the main study on the check's seeds, the main study's
    own) for every comparison an LR check holds with both sides run; sorted by variant, then lr."""
    main = {(plain_name(c.variant), plain_name(c.parent), c.image_size): c
            for c in rep.all_comparisons if c.study == rep.main_study and c.parent_ran}
    out, on_seeds = [], {}  # the main study's comparison on a set of seeds, tested once for every check
    for c in rep.all_comparisons:
        if c.study not in rep.lr_checks or not c.parent_ran:
            continue
        key = (plain_name(c.variant), plain_name(c.parent), c.image_size)
        ours = main.get(key)
        seeds = frozenset(c.cfg["seeds"]) | frozenset(c.parent_cfg["seeds"])
        if ours is not None and (key, seeds) not in on_seeds:
            mine, theirs = _restrict(ours.cfg, seeds), _restrict(ours.parent_cfg, seeds)
            on_seeds[key, seeds] = _unadjusted(replace(ours, evidence=ab.compare(mine, theirs), cfg=mine,
                                                       parent_cfg=theirs))
        out.append((_unadjusted(c), on_seeds.get((key, seeds)), ours))
    return sorted(out, key=lambda t: (plain_name(t[0].variant), t[0].image_size, rep.lr_checks[t[0].study]))


def _models_table(rep, checked_seeds: dict) -> pd.DataFrame:
    """One row per run of the checked models at every learning rate (the main study's on the check's seeds)."""
    lrs = {rep.main_study: float(rep.studies[rep.main_study]["lr"]), **rep.lr_checks}
    runs = rep.runs[rep.runs["study"].isin(lrs)].copy()
    runs["model"] = runs["name"].map(plain_name)
    keep = [(r["study"] != rep.main_study and r["model"] in checked_seeds)
            or (r["study"] == rep.main_study and r["seed"] in checked_seeds.get(r["model"], ()))
            for _, r in runs.iterrows()]
    runs = runs[keep].assign(lr=runs["study"].map(lrs))
    out = []
    for _, r in runs.sort_values(["model", "image_size", "lr", "seed"], kind="mergesort").iterrows():
        done = r["status"] == "finished"
        out.append({
            "model": r["model"], "lr": num(r["lr"]) + (" (the study's)" if r["study"] == rep.main_study else ""),
            "seed": num(r["seed"]), "status": r["status"],
            "test top-1": pct(r["test_acc"]) if done else DASH,
            "balanced acc": pct(r["test_balanced_acc"]) if done else DASH,
            "best eval acc": pct(r["best_eval_acc"]) if not missing(r["best_eval_acc"]) else DASH,
            "best epoch": (f"{num(r['best_epoch'])} of {num(r['epochs'])}"
                           if not missing(r["best_epoch"]) else DASH),
            "final train acc": pct(r["final_train_acc"]) if done else DASH,
            "final eval acc": pct(r["final_eval_acc"]) if done else DASH})
    return pd.DataFrame(out)


def _top1(cfg) -> str:
    """Mean test top-1 over the configuration's finished seeds, or a dash when none finished."""
    values = list(cfg["by_seed"].values())
    return pct(sum(values) / len(values)) if values else DASH


def _verdicts(rep, found: list) -> list:
    """One sentence per comparison: its verdict at each learning rate, and whether it holds."""
    lines = []
    by = {}
    for check, same, ours in found:
        by.setdefault((plain_name(check.variant), plain_name(check.parent)), []).append((check, same, ours))
    study_lr = num(rep.studies[rep.main_study]["lr"])
    for (variant, parent), items in by.items():
        same, ours = items[0][1], items[0][2]
        check = items[0][0]
        seeds = ", ".join(map(str, sorted(set(check.cfg["seeds"]) | set(check.parent_cfg["seeds"]))))
        verdicts = [(num(rep.lr_checks[c.study]), c.verdict) for c, _, _ in items]
        if same is not None:
            verdicts.append((study_lr, same.verdict))
        measured = {lr: v.split(" (")[0] for lr, v in verdicts if not v.startswith("not measured")}
        unmeasured = [lr for lr, v in verdicts if v.startswith("not measured")]
        kinds = set(measured.values())
        if study_lr not in measured:
            judged = f"not compared at the study's lr {study_lr}, so there is nothing to flip"
        elif len(measured) < 2:
            judged = "measured at the study's learning rate only, so there is nothing to flip"
        elif {"helps", "hurts"} <= kinds:
            judged = "**the verdict flips**: the trick helps at one learning rate and hurts at another"
        elif len(kinds) > 1:
            judged = "**the verdict changes**: significant at some learning rates, not at others"
        else:
            judged = "the verdict holds at every learning rate " + ("where it was measured" if unmeasured else "tried")
        if unmeasured:
            judged += f" (not measured at lr {', '.join(unmeasured)}: a run there did not finish)"
        text = (f"`{variant}` against `{parent}` (seed {seeds}): "
                + "; ".join(f"{v} at lr {lr}" for lr, v in sorted(verdicts, key=lambda t: float(t[0])))
                + f" — {judged}.")
        if ours is not None:
            text += (f" Over all {plural(ours.primary.n, 'seed')} of the study at lr {study_lr} the verdict is "
                     f"{ours.verdict} (Holm p {pvalue(ours.p_adjusted)}).")
        lines.append(text)
    return lines


def section(rep, doc: Doc):
    """'Does the learning rate change a verdict?': the LR checks' runs and comparisons beside the study's."""
    if not rep.lr_checks:
        return
    doc.h(3, "Does the learning rate change a verdict? (LR check)")
    study_lr = num(rep.studies[rep.main_study]["lr"])
    phrase = checks_phrase(rep)
    doc.p(phrase[0].upper() + phrase[1:] + f" study {rep.main_study} (lr {study_lr}) at "
          + ("another learning rate" if len(rep.lr_checks) == 1 else "other learning rates") + " with only "
          "some of its models, so that a verdict can be seen not to be an artefact of one learning rate. Their runs "
          "are left out of the tables above. Each of their comparisons is set beside the same comparison in "
          f"study {rep.main_study} on the same seeds; each is one test (p unadjusted), judged as the trick table "
          "judges (helps or hurts when p < 0.05, else inconclusive).")
    found = rows(rep)
    checked = {}
    for _, r in rep.runs[rep.runs["study"].isin(rep.lr_checks)].iterrows():
        checked.setdefault(plain_name(r["name"]), set()).add(r["seed"])
    models = _models_table(rep, checked)
    doc.table(models, right=tuple(models.columns[4:]))
    if not found:
        doc.p("No comparison of the LR checks has both of its configurations run yet.")
        return
    table, shown = [], set()
    for check, same, _ in found:
        for c, lr in ((same, study_lr + " (the study's)"), (check, num(rep.lr_checks[check.study]))):
            if c is None or id(c) in shown:  # the study's row serves every check on the same seeds
                continue
            shown.add(id(c))
            table.append({"comparison": f"{plain_name(c.variant)} vs {plain_name(c.parent)}", "lr": lr,
                          "seeds paired": str(c.primary.n),
                          "variant top-1": _top1(c.cfg), "parent top-1": _top1(c.parent_cfg),
                          "Δ top-1 (pts)": delta(c.primary.mean), "95% CI (pts)": interval(c.evidence.ci),
                          "p": pvalue(c.evidence.p), "basis": c.evidence.basis or DASH,
                          "verdict": c.verdict, "_key": (plain_name(c.variant), float(lr.split()[0]))})
    df = pd.DataFrame(table)
    df = df.loc[sorted(df.index, key=lambda i: df.at[i, "_key"])].drop(columns=["_key"])
    doc.table(df, right=tuple(df.columns[2:8]))
    doc.ul(_verdicts(rep, found))
