"""The report's sections 1-4: setup and coverage, classic networks, the trick ablation, the article's claims."""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from paddle_cnns import VARIANTS, list_models

from . import report_data as data
from . import report_stats as st
from .report_doc import Doc
from .report_format import DASH, dates, ints, missing, num, pct, pct_sd, plural, pts, rate, runs_cell, secs, si
from .study import RECIPES


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
    table = pd.DataFrame({"setting": keys, **{(s or "value") if not rep.multi else f"study {s}":
                                              [rows[s].get(k, DASH) for k in keys] for s in sorted(rows)}})
    doc.table(table)
    if rep.multi:
        doc.p("The results hold runs of several recipes (studies S1, S2, ...); runs of different studies are "
              "never compared with each other, and labels carry the study in brackets.")
    doc.p(f"**Primary metric**: top-1 accuracy on the test split of the checkpoint with the best eval accuracy "
          "(test top-1). The eval split picked the checkpoint, so the test split is still unseen. "
          "Best eval accuracy is shown beside it. With several seeds, cells show mean ± sample standard "
          "deviation over the seeds that finished.")
    coverage(rep, doc)


def coverage(rep, doc: Doc):
    doc.h(3, "What ran and what is missing")
    items = []
    bad = rep.runs[rep.runs["status"] != "finished"]
    for _, r in bad.iterrows():
        err = r["error"] if len(r["error"]) <= 160 else r["error"][:157] + "..."
        items.append(f"`{r['run_id']}` **{r['status']}**" + (f": {err}" if err else ""))
    items += curve_problems(rep, markup=True)
    for study in sorted(rep.studies):
        ran = set(rep.runs[rep.runs["study"] == study]["name"].map(lambda n: n.split("~")[0]))
        where = f" in study {study}" if rep.multi else ""
        for family, names, how in (
                ("classic networks", list_models("classic"), "--variants classics"),
                ("trick variants", [*VARIANTS, "all_tricks+lrdecay"], "--variants tricks")):
            missing = [n for n in names if n not in ran]
            if missing and len(missing) < len(names):
                items.append(f"{family} not run{where}: {', '.join(missing)} "
                             f"(`python -m ablations.run {how}` trains them)")
            elif missing:
                items.append(f"no {family} run{where} (`python -m ablations.run {how}`)")
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
        doc.p("No classic network in the results yet (`python -m ablations.run --variants classics` trains them).")
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
            "best epoch": f"{num(c['best_epoch'])} of {num(c['epochs'])}" if not missing(c["best_epoch"]) else DASH,
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
        doc.p("No trick variant in the results yet (`python -m ablations.run --variants tricks --seeds 0,1,2` "
              "trains them).")
        return
    doc.h(3, "Trick variants")
    doc.p("One row per variant: its tricks (on = used) and what it measured.")
    rows = []
    for _, c in cfgs.iterrows():
        t = st.tricks_of(c)
        row = {"variant": rep.label(c), **{k: "on" if v else "" for k, v in asdict(t).items()},
               "lr_decay": "on" if c["lr_decay"] else "", "runs": runs_cell(c),
               "test top-1": pct_sd(c["test_acc"], c["test_acc_sd"]),
               "test top-5": pct_sd(c["test_top5"], c["test_top5_sd"]),
               "balanced acc": pct_sd(c["test_balanced_acc"], c["test_balanced_acc_sd"]),
               "best eval acc": pct_sd(c["best_eval_acc"], c["best_eval_acc_sd"]),
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
    doc.p("Each variant against its parent (`baseline`; `sigmoid` for `baseline` itself) at the same recipe, "
          "image size and LR-decay setting; a variant trained with LR decay (`all_tricks+lrdecay`) against "
          "itself without decay, the trick then being the decay. Trick cells: **+on** the trick this row adds, "
          "on = used by both, -off = removed. Δ = variant − parent in test top-1, paired by seed (only seeds "
          "where both finished), as mean ± sample sd; 95% CI = mean ± t(0.975, n−1) · sd / √n. Verdict: helps "
          "if the CI lies above 0, hurts if below, else inconclusive; one seed gives a difference but no CI "
          "(inconclusive (n=1)).")
    rows = []
    for c in rep.comparisons:
        marks = {}
        for t in st.TRICKS:
            on, was = getattr(c.tricks, t), getattr(c.parent_tricks, t)
            marks[t] = "+on" if on and not was else "-off" if was and not on else "on" if on else ""
        p, b = c.primary, c.best_eval
        rows.append({
            "variant": c.variant + (f" [{c.study}]" if rep.multi else ""), "parent": c.parent,
            "change": c.change or DASH, **marks, "lr_decay": "on" if c.lr_decay else "",
            "seeds paired": str(p.n) if c.parent_ran else DASH,
            "variant top-1": pct_sd(c.variant_acc[0], c.variant_acc[1]),
            "parent top-1": pct_sd(c.parent_acc[0], c.parent_acc[1]),
            "Δ top-1 (pts)": DASH if p.mean is None else pts(p.mean) + (
                "" if p.sd is None else f" ± {100 * p.sd:.1f}"),
            "95% CI (pts)": f"[{pts(p.ci[0])}, {pts(p.ci[1])}]" if p.ci else DASH,
            "Δ best eval (pts)": DASH if b.mean is None else pts(b.mean),
            "verdict": p.verdict if c.parent_ran else "not measured (parent not run)",
            "note": c.note or ""})
    df = pd.DataFrame(rows)
    first = df.columns.get_loc("seeds paired")
    doc.table(df, right=tuple(df.columns[first:first + 6]))


def claims(rep, doc: Doc):
    doc.h(2, "4. Against the article")
    verdicts = st.check_claims(rep.cfgs, rep.main_study)
    s = rep.studies[rep.main_study]
    article = RECIPES["article"]
    sizes = sorted({int(v) for v in rep.runs[rep.runs["study"] == rep.main_study]["image_size"].dropna()})
    doc.p(f"The article (the AI Studio article on classic CNNs and tricks that this study reproduces) trained "
          f"each network once, with one seed, at {article.image_size} px for {article.epochs} epochs "
          f"(batch {article.batch_size}, lr {article.lr:g}); these runs used the {s['recipe']} recipe, "
          f"{', '.join(map(str, sizes))} px, {plural(s['epochs'], 'epoch')}, on {s['dataset']}"
          + (f" (study {rep.main_study}, the one with the most finished runs)" if rep.multi else "")
          + ". Absolute accuracies therefore differ; the claims are checked by sign and rough size.")
    df = pd.DataFrame([{"the article claims": v.claim.text, "the article says": v.claim.seed_says,
                        "we measured": v.measured, "verdict": v.verdict} for v in verdicts])
    doc.table(df)
    doc.p("Criteria, applied to every claim alike:")
    doc.ul(st.CRITERIA)
