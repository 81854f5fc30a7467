"""The report's sections 1-3: setup and coverage, classic networks, the trick ablation."""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd

import paddle_cnns
from paddle_cnns import VARIANTS, list_models

from . import report_ablation as ab
from . import report_data as data
from . import report_lrcheck as lrcheck
from .report_caveats import caveats, earlier, fit_sentence, stage_line
from .report_doc import Doc
from .report_format import (DASH, dates, delta, ints, interval, missing, num, pct_sd, plural, pvalue, rate,
                            runs_cell, secs, si)
from .report_hints import train_missing


def setup(rep, doc: Doc):
    doc.h(2, "1. Setup")
    rows = {}
    for study, settings in sorted(rep.studies.items()):
        runs = rep.runs[rep.runs["study"] == study]
        ok = runs[runs["status"] != "failed"]
        col = {}
        col["dataset"] = str(settings["dataset"])
        col["classes"] = ints(ok["num_classes"].dropna())
        col["split sizes (train / eval / test)"] = "; ".join(sorted(
            f"{int(a)} / {int(b)} / {int(c)}" for a, b, c in
            set(zip(ok["train_size"], ok["eval_size"], ok["test_size"])) if not missing(a))) or DASH
        splits = sorted(set(ok["test_split"]) - {""})
        col["test metrics on"] = (", ".join(f"the {s} split" for s in splits) if splits else DASH) + \
            (" (the dataset has no test split)" if splits == ["eval"] else "")
        sizes = []
        for size, g in ok.groupby("image_size", sort=True):
            names = list(dict.fromkeys(g["name"]))
            sizes.append(f"{int(size)} px ({', '.join(names)})")
        col["image size"] = "; ".join(sizes) or DASH
        r = settings
        optimizer = r["optimizer"] + (f" {num(r['momentum'])}" if r["optimizer"] == "momentum" else "")
        col["recipe"] = (f"{r['recipe']}: {plural(r['epochs'], 'epoch')}, batch {num(r['batch_size'])}, "
                         f"{optimizer}, lr {num(r['lr'])}, weight decay {num(r['weight_decay'])}")
        decayed = {}
        for name, epochs in zip(ok["name"], ok["decay_epochs"]):
            if epochs:
                decayed.setdefault(tuple(epochs), []).append(name)
        col["LR decay"] = "; ".join(
            f"x0.1 at epochs {', '.join(map(str, k))} ({', '.join(dict.fromkeys(v))})"
            for k, v in sorted(decayed.items())) or "none"
        col["augmentation"] = "on" if r["augment"] is True else "off"
        col["images per class"] = ("all" if missing(r["max_per_class"])
                                   else f"at most {num(r['max_per_class'])} per split")
        if r["tag"]:
            col["run tag"] = r["tag"]
        for fam, what in (("trick", "seeds, trick variants"), ("classic", "seeds, classic networks")):
            f = runs[runs["family"] == fam]
            if len(f):
                col[what] = ints(f["seed"].dropna())
        col["runs"] = ", ".join(f"{int((runs['status'] == s).sum())} {s}" for s in data.STATUSES)
        col["paddle version"] = ", ".join(sorted(set(ok["paddle_version"]) - {""})) or DASH
        col["device (threads per run)"] = ", ".join(sorted(
            f"{d} ({num(t)})" for d, t in set(zip(ok["device"], ok["threads"])) if d)) or DASH
        col["date (UTC)"], col["compute"] = dates(runs)
        rows[study] = col
    keys = list(dict.fromkeys(k for col in rows.values() for k in col))
    table = pd.DataFrame({"setting": keys, **{(s or "value") if len(rows) == 1 else f"study {s}":
                                              [rows[s].get(k, DASH) for k in keys] for s in sorted(rows)}})
    doc.table(table)
    if rep.multi:
        doc.p("The results hold runs of several recipes (studies S1, S2, ...); runs of different studies are "
              "never compared with each other, and labels carry the study in brackets.")
    if rep.lr_checks:
        doc.p(f"Study {rep.main_study} is the study the tables and claims report; {lrcheck.checks_phrase(rep)} "
              "it at another learning rate with some of its models: the LR check at the end of section 3.")
    doc.p("**Primary metric**: top-1 accuracy on the test split of the checkpoint with the best eval accuracy "
          "(test top-1). The eval split picked the checkpoint, so the test split is still unseen. "
          "Best eval accuracy is shown beside it, and balanced accuracy (the mean per-class recall: Caltech-16's "
          "minority classes carry most of the differences). With several seeds, cells show mean ± sample standard "
          "deviation over the seeds that finished.")
    predictions_note(rep, doc)
    design_notes(rep, doc)
    deviations(doc)
    coverage(rep, doc)


def predictions_note(rep, doc: Doc):
    finished = rep.runs[rep.runs["status"] == "finished"]
    have = [r for r in finished["run_id"] if r in rep.predictions]
    if not have:
        doc.p("**Per-image predictions**: none stored for these runs (they predate them, or were trained "
              "elsewhere), so every test below is seed-level only: a paired t-test over seeds, which leaves out "
              "the test-set noise, and a comparison of one seed each has no test at all.")
        return
    text = (f"**Per-image predictions**: stored for {len(have)} of {plural(len(finished), 'finished run')} "
            "(beside the results store, in `predictions/`). Comparisons pair the two runs image by image: exact "
            "McNemar tests on the images one run got right and the other wrong, and 95% intervals from a bootstrap "
            "over seeds × images, which hold the test-set noise as well as the seeds'. With several seeds a "
            "verdict's interval spans both that bootstrap and the seeds' t-interval (a value is ruled out only "
            "when both rule it out): resampling as few as three seeds understates their spread.")
    if rep.no_predictions:
        text += " Without usable predictions: " + "; ".join(
            f"`{r}` ({why})" for r, why in sorted(rep.no_predictions.items())) + "."
    doc.p(text)


def design_notes(rep, doc: Doc):
    """The spatial size of each stage at the runs' image sizes, and how many runs converged or fit."""
    stages = stage_line(rep.cfgs) if not rep.cfgs.empty else ""
    items = []
    if stages:
        items.append(f"The trick CNN's stage outputs {stages} (from the runs' recorded per-block shapes). Where "
                     "the last map is 1 × 1, global average pooling averages a single position.")
    fit = fit_sentence(rep.cfgs)
    if fit:
        items.append(fit)
    old = [c for _, c in rep.cfgs.iterrows() if c["earlier_model"]] if not rep.cfgs.empty else []
    if old:
        items.append(
            f"{len(old)} of {plural(len(rep.cfgs), 'configuration')} ran an earlier version of the network than "
            "today's model zoo builds (the recorded model revision differs from today's): their "
            "numbers describe the earlier networks, and retraining them measures today's: "
            + ", ".join(f"{c['name']} ({earlier(c)})" for c in old) + ".")
    if items:
        doc.h(3, "Design caveats")
        doc.ul(items)


def deviations(doc: Doc):
    """The model zoo's own list of where its networks still differ from the article's."""
    lines = [f"**{who}**: {what}" for who, what in paddle_cnns.DEVIATIONS]
    doc.h(3, "Where the networks differ from the article's")
    if lines:
        doc.ul(lines)
    else:
        doc.p("The model zoo lists no deviation from the article's networks.")


def coverage(rep, doc: Doc):
    doc.h(3, "What ran and what is missing")
    items = []
    bad = rep.runs[rep.runs["status"] != "finished"]
    for _, r in bad.iterrows():
        err = r["error"] if len(r["error"]) <= 160 else r["error"][:157] + "..."
        items.append(f"`{r['run_id']}` **{r['status']}**" + (f": {err}" if err else ""))
    items += curve_problems(rep, markup=True)
    for study in sorted(set(rep.studies) - set(rep.lr_checks)):  # an LR check runs a few models on purpose
        ran = set(rep.runs[rep.runs["study"] == study]["name"].map(lambda n: n.split("~")[0]))
        where = f" in study {study}" if rep.multi else ""
        for family, names, kind in (("classic networks", list_models("classic"), "classic"),
                                    ("trick variants", [*VARIANTS, "all_tricks+lrdecay"], "trick")):
            absent = [n for n in names if n not in ran]
            if absent and len(absent) < len(names):
                items.append(f"{family} not run{where}: {', '.join(absent)} "
                             f"({train_missing(rep, study, absent, kind)} trains them)")
            elif absent:
                items.append(f"no {family} run{where} ({train_missing(rep, study, absent, kind)})")
    few = rep.family("trick")
    few = few[few["finished"] < 2] if not few.empty else few
    if len(few):
        items.append("fewer than 2 finished seeds, so no confidence interval: "
                     + ", ".join(f"{rep.label(c)} ({int(c['finished'])})" for _, c in few.iterrows()))
    if items:
        doc.ul(items)
    else:
        doc.p("Nothing is missing: every run of the study finished and has curves.")


def curve_problems(rep, markup: bool) -> list[str]:
    """One line per run without curves; a single line when no run has any (a wrong --logdir?)."""
    logged = rep.runs[rep.runs["status"] != "failed"]
    if len(logged) > 1 and len(rep.no_curves) == len(logged) and len(set(rep.no_curves.values())) == 1:
        return [f"no run has curves: {next(iter(rep.no_curves.values()))} (was --logdir right?)"]
    quote = "`" if markup else ""
    return [f"{quote}{run_id}{quote} has no curves: {why}" for run_id, why in sorted(rep.no_curves.items())]


def classics(rep, doc: Doc):
    doc.h(2, "2. Classic networks")
    cfgs = rep.family("classic")
    if cfgs.empty:
        doc.p("No classic network in the results yet (the list under Setup says how to train them).")
        return
    doc.p("Each classic network trained with the study's recipe, at the image size shown (the recipe's, raised "
          "to the network's minimum where it needs more). FLOPs = 2 × multiply-accumulates of the conv and linear layers per image. "
          "Images/s is the training throughput; train time sums the training steps of all epochs (evaluation, "
          "checkpoints and start-up not included; the Setup's compute line counts those).")
    rows = []
    for _, c in cfgs.iterrows():
        rows.append({
            "model": rep.label(c), "image size": f"{int(c['image_size'])} px", "runs": runs_cell(c),
            "best eval acc": pct_sd(c["best_eval_acc"], c["best_eval_acc_sd"]),
            "best epoch": best_epochs(rep, c),  # one per seed: a mean epoch (14.3333) is no epoch
            "final eval acc": pct_sd(c["final_eval_acc"], c["final_eval_acc_sd"]),
            "test top-1": pct_sd(c["test_acc"], c["test_acc_sd"]),
            "test top-5": pct_sd(c["test_top5"], c["test_top5_sd"]),
            "balanced acc": pct_sd(c["test_balanced_acc"], c["test_balanced_acc_sd"]),
            "params": si(c["params"]), "FLOPs": si(2 * c["macs"]),
            "images/s": rate(c["images_per_s"]), "train time (s)": secs(c["train_time_s"])})
    df = pd.DataFrame(rows)
    doc.table(df, right=tuple(df.columns[3:]))


def tricks(rep, doc: Doc):
    doc.h(2, "3. The trick ablation")
    cfgs = rep.family("trick")
    if cfgs.empty:
        doc.p("No trick variant in the results yet (the list under Setup says how to train them).")
        return
    doc.h(3, "Trick variants")
    doc.p("One row per variant: its tricks (on = used) and what it measured. Convergence beside it: the epoch "
          "of the best eval accuracy for each seed (the checkpoint tested), and the final epoch's train accuracy "
          "(a running mean with dropout on) against its eval accuracy; the figure of train and eval loss per "
          "variant is in section 5.")
    rows = []
    for _, c in cfgs.iterrows():
        t = ab.tricks_of(c)
        row = {"variant": rep.label(c), **{k: "on" if v else "" for k, v in asdict(t).items()},
               "lr_decay": "on" if c["lr_decay"] else "", "runs": runs_cell(c),
               "test top-1": pct_sd(c["test_acc"], c["test_acc_sd"]),
               "test top-5": pct_sd(c["test_top5"], c["test_top5_sd"]),
               "balanced acc": pct_sd(c["test_balanced_acc"], c["test_balanced_acc_sd"]),
               "best eval acc": pct_sd(c["best_eval_acc"], c["best_eval_acc_sd"]),
               "best epoch": best_epochs(rep, c),
               "final train acc": pct_sd(c["final_train_acc"], c["final_train_acc_sd"]),
               "final eval acc": pct_sd(c["final_eval_acc"], c["final_eval_acc_sd"]),
               "params": si(c["params"]), "FLOPs": si(2 * c["macs"]),
               "images/s": rate(c["images_per_s"]), "train time (s)": secs(c["train_time_s"])}
        rows.append(row)
    df = pd.DataFrame(rows)
    doc.table(df, right=tuple(df.columns[df.columns.get_loc("runs"):]))
    doc.h(3, "Each trick against its parent")
    if not rep.comparisons:
        doc.p("Only `sigmoid` ran: there is nothing to compare yet.")
        return
    comparison_table(rep, doc)
    lrcheck.section(rep, doc)


def best_epochs(rep, cfg, of: bool = True, seeds=None) -> str:
    """'9, 11, 12 of 15': the epoch of each finished seed's best eval accuracy, in seed order
    (only `seeds`, when given: a comparison's paired seeds)."""
    if cfg is None:
        return DASH
    done = rep.runs_of(cfg)
    done = done[(done["status"] == "finished") & done["best_epoch"].notna()].sort_values("seed")
    if seeds:
        done = done[done["seed"].isin(list(seeds))]
    if done.empty:
        return DASH
    return ", ".join(num(e) for e in done["best_epoch"]) + (f" of {num(cfg['epochs'])}" if of else "")


def comparison_table(rep, doc: Doc):
    doc.p("Each variant against its parent (`baseline`; `sigmoid` for `baseline` itself) at the same recipe, "
          "image size and LR-decay setting; a variant trained with LR decay (`all_tricks+lrdecay`) against "
          "itself without decay, the change then being the decay. Δ = variant − parent, paired by seed (only seeds "
          "where both finished): test top-1 as mean ± sample sd with its 95% t-interval over seeds, and balanced "
          "accuracy. Where both runs stored per-image predictions, the seeds × images interval is a bootstrap over "
          "seeds and test images, and the McNemar p pools the images one run got right and the other wrong. The "
          "comparison's p is the seed-level t-test's, or with predictions the larger of it and McNemar's (the "
          "difference must hold across seeds and across images); likewise the interval the claims and the deltas figure use "
          "spans both intervals. **Holm p** adjusts it for the table's "
          f"{plural(len(rep.comparisons), 'comparison')}; verdict: helps or hurts when Holm p < 0.05, else "
          "inconclusive (one seed without predictions: no test, inconclusive (n=1)). Best epochs: each seed's epoch of best eval "
          "accuracy on the paired seeds, the checkpoint tested (the last epoch: still improving). Caveats come from the runs "
          "themselves (see Design caveats).")
    rows = []
    for c in rep.comparisons:
        p, ev = c.primary, c.evidence
        images = ev.images
        rows.append({
            "variant": c.variant + (f" [{c.study}]" if rep.multi else ""), "parent": c.parent,
            "change": c.change or DASH, "seeds paired": str(p.n) if c.parent_ran else DASH,
            "variant top-1": pct_sd(c.variant_acc[0], c.variant_acc[1]),
            "parent top-1": pct_sd(c.parent_acc[0], c.parent_acc[1]),
            "Δ top-1 (pts)": DASH if p.mean is None else delta(p.mean) + (
                "" if p.sd is None else f" ± {100 * p.sd:.1f}"),
            "95% CI, seeds (pts)": interval(p.ci),
            "95% CI, seeds × images (pts)": interval(images.ci) if images else DASH,
            "Δ balanced (pts)": delta(c.balanced.mean),
            "best epochs (variant / parent)": f"{best_epochs(rep, c.cfg, False, p.seeds)} / "
                                              f"{best_epochs(rep, c.parent_cfg, True, p.seeds)}",
            "p seeds": pvalue(p.p), "p McNemar": pvalue(images.p) if images else DASH,
            "Holm p": pvalue(c.p_adjusted), "verdict": c.verdict,
            "caveats": "; ".join(caveats(c.cfg, c.parent_cfg, change=c.change)), "note": c.note or ""})
    df = pd.DataFrame(rows)
    if not any(c.evidence.images for c in rep.comparisons):  # no stored predictions: no image columns
        df = df.drop(columns=["95% CI, seeds × images (pts)", "p McNemar"])
    first, last = df.columns.get_loc("seeds paired"), df.columns.get_loc("Holm p")
    doc.table(df, right=tuple(df.columns[first:last + 1]))


