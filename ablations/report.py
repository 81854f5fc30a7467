"""python -m ablations.report: the study's report (Markdown, HTML, PNG figures) from results and logs.

    python -m ablations.report                                   # results/results.csv + logs/ -> reports/
    python -m ablations.report --results reports/results.csv --logdir logs --out reports

It never trains: it reads the results store (the latest row of each run) and each run's VisualDL
log, and writes report.md, report.html and PNG figures into --out. The same inputs give the same
files, byte for byte (no dates but the runs' own, no absolute paths).
"""
from __future__ import annotations
import argparse
import datetime
import html
import math
import os
import re
import sys
from dataclasses import asdict

from . import cli

cli.quiet_paddle_logs()  # before paddle is imported (the cost tables build the models)

import pandas as pd  # noqa: E402

from paddle_cnns import VARIANTS, list_models  # noqa: E402

from . import report_data as data  # noqa: E402
from . import report_figures as figures  # noqa: E402
from . import report_stats as st  # noqa: E402
from .study import RECIPES  # noqa: E402

TITLE = "paddle-cnns: classic CNNs and seed 004's trick CNN, measured"
DASH = "–"  # an empty measurement


# ---------------------------------------------------------------- a document, rendered twice

class Doc:
    """Headings, paragraphs, lists, tables and images, rendered to GitHub Markdown and to HTML.

    Text may use `code` and **bold**, nothing else, so both renderings stay simple and exact.
    """

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def ul(self, items: list[str]):
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, df: pd.DataFrame, right: tuple[str, ...] = ()):
        """df of strings; columns named in `right` are right-aligned (numbers)."""
        self.blocks.append(("table", df.astype(str).reset_index(drop=True), tuple(right)))

    def img(self, file: str, alt: str):
        self.blocks.append(("img", file, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {item}" for item in b[1]))
            elif b[0] == "table":
                # per column: DataFrame.map is pandas 2.1+, its old name applymap is gone in 3.0
                df = b[1].apply(lambda col: col.map(lambda v: v.replace("|", "\\|")))
                align = ["right" if c in b[2] else "left" for c in df.columns]
                out.append(df.to_markdown(index=False, disable_numparse=True, colalign=align))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "ul":
                body.append("<ul>\n" + "\n".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "\n</ul>")
            elif b[0] == "table":
                df, right = b[1], b[2]
                head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
                rows = "\n".join(
                    "<tr>" + "".join(f"<td{' class=num' if c in right else ''}>{html.escape(v)}</td>"
                                     for c, v in zip(df.columns, r)) + "</tr>"
                    for r in df.itertuples(index=False))
                body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>")
            elif b[0] == "img":
                body.append(f'<p><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}"></p>')
        return HTML.format(title=html.escape(TITLE), body="\n".join(body))


HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: "DejaVu Sans", Verdana, sans-serif; font-size: 14px; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
td.num {{ text-align: right; white-space: nowrap; }}
tbody tr:nth-child(even) {{ background: #fafafa; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _inline(text: str) -> str:
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


# ---------------------------------------------------------------- number formats (fixed, so files repeat)

def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v) -> str:
    return DASH if _nan(v) else f"{100 * v:.1f}"


def pct_sd(mean, sd) -> str:
    return pct(mean) if _nan(sd) or _nan(mean) else f"{100 * mean:.1f} ± {100 * sd:.1f}"


def pts(v) -> str:
    return DASH if _nan(v) else f"{100 * v:+.1f}"


def si(v) -> str:
    """44708240 -> '44.71 M'; FLOPs and params."""
    if _nan(v):
        return DASH
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f}"


def secs(v) -> str:
    return DASH if _nan(v) else f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def rate(v) -> str:
    return DASH if _nan(v) else f"{v:.1f}"


def duration(seconds: float) -> str:
    if _nan(seconds):
        return DASH
    m = round(seconds / 60)
    return f"{seconds:.0f} s" if seconds < 60 else f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _ints(values) -> str:
    return ", ".join(str(int(v)) for v in sorted(set(values))) or DASH


def _runs_cell(cfg) -> str:
    """'3' when every run finished, else '2 of 3 (1 diverged)'."""
    if cfg["finished"] == cfg["runs"]:
        return str(int(cfg["runs"]))
    bad = ", ".join(f"{int(cfg[s])} {s}" for s in ("diverged", "failed") if cfg[s])
    return f"{int(cfg['finished'])} of {int(cfg['runs'])} ({bad})"


# ---------------------------------------------------------------- the report

class Report:
    """Everything the sections need, computed once from the runs and their curves."""

    def __init__(self, runs: pd.DataFrame, curves: dict, no_curves: dict, results_name: str):
        self.runs, self.curves, self.no_curves, self.results_name = runs, curves, no_curves, results_name
        self.cfgs = st.configs(runs)
        self.studies = data.study_settings(runs)
        self.comparisons = st.ablation(self.cfgs)
        self.multi = len(self.studies) > 1
        counts = runs[runs["status"] == "finished"].groupby("study").size()
        # claims are checked on one study: the one with the most finished runs
        self.main_study = max(sorted(self.studies), key=lambda s: int(counts.get(s, 0)))
        self.figures: dict[str, tuple[str, str]] = {}  # file -> (alt text, caption)
        self.figure_notes: list[str] = []

    # labels: the run folder name, made unique across image sizes and studies
    def label(self, cfg) -> str:
        same = self.cfgs[(self.cfgs["name"] == cfg["name"]) & (self.cfgs["study"] == cfg["study"])]
        text = cfg["name"] + (f" @{int(cfg['image_size'])}px" if len(same) > 1 else "")
        return text + (f" [{cfg['study']}]" if self.multi else "")

    def family(self, family: str) -> pd.DataFrame:
        return self.cfgs[self.cfgs["family"] == family] if not self.cfgs.empty else self.cfgs

    def runs_of(self, cfg) -> pd.DataFrame:
        r = self.runs
        return r[(r["study"] == cfg["study"]) & (r["name"] == cfg["name"]) & (r["image_size"] == cfg["image_size"])]

    def build(self, out: str) -> Doc:
        doc = Doc()
        doc.h(1, TITLE)
        doc.p(f"Generated by `python -m ablations.report` from the results store `{self.results_name}` "
              f"({len(self.runs)} runs) and the runs' VisualDL logs; it never retrains. "
              "Accuracies are in percent, differences in percentage points (pts). "
              "Regenerating from the same inputs gives the same files byte for byte.")
        self.figures = self.make_figures(out)
        for section in (self.setup, self.classics, self.tricks, self.claims, self.figure_section, self.costs):
            section(doc)
        return doc

    # ------------------------------------------------------------ 1. setup

    def setup(self, doc: Doc):
        doc.h(2, "1. Setup")
        rows = {}
        for study, settings in sorted(self.studies.items()):
            runs = self.runs[self.runs["study"] == study]
            ok = runs[runs["status"] != "failed"]
            col = {}
            col["dataset"] = str(settings["dataset"])
            col["classes"] = _ints(ok["num_classes"].dropna())
            col["split sizes (train / eval / test)"] = "; ".join(sorted(
                f"{int(a)} / {int(b)} / {int(c)}" for a, b, c in
                set(zip(ok["train_size"], ok["eval_size"], ok["test_size"])) if not _nan(a))) or DASH
            splits = sorted(set(ok["test_split"]) - {""})
            col["test metrics on"] = (", ".join(f"the {s} split" for s in splits) if splits else DASH) + \
                (" (the dataset has no test split)" if splits == ["eval"] else "")
            sizes = []
            for size, g in ok.groupby("image_size", sort=True):
                names = list(dict.fromkeys(g["name"]))
                sizes.append(f"{int(size)} px ({', '.join(names)})")
            col["image size"] = "; ".join(sizes) or DASH
            r = settings
            optimizer = r["optimizer"] + (f" {_num(r['momentum'])}" if r["optimizer"] == "momentum" else "")
            col["recipe"] = (f"{r['recipe']}: {_plural(r['epochs'], 'epoch')}, batch {_num(r['batch_size'])}, "
                             f"{optimizer}, lr {_num(r['lr'])}, weight decay {_num(r['weight_decay'])}")
            decayed = {}
            for name, epochs in zip(ok["name"], ok["decay_epochs"]):
                if epochs:
                    decayed.setdefault(tuple(epochs), []).append(name)
            col["LR decay"] = "; ".join(
                f"x0.1 at epochs {', '.join(map(str, k))} ({', '.join(dict.fromkeys(v))})"
                for k, v in sorted(decayed.items())) or "none"
            col["augmentation"] = "on" if r["augment"] is True else "off"
            col["images per class"] = ("all" if _nan(r["max_per_class"])
                                       else f"at most {_num(r['max_per_class'])} per split")
            if r["tag"]:
                col["run tag"] = r["tag"]
            for fam, what in (("trick", "seeds, trick variants"), ("classic", "seeds, classic networks")):
                f = runs[runs["family"] == fam]
                if len(f):
                    col[what] = _ints(f["seed"].dropna())
            col["runs"] = ", ".join(f"{int((runs['status'] == s).sum())} {s}" for s in data.STATUSES)
            col["paddle version"] = ", ".join(sorted(set(ok["paddle_version"]) - {""})) or DASH
            col["device (threads per run)"] = ", ".join(sorted(
                f"{d} ({_num(t)})" for d, t in set(zip(ok["device"], ok["threads"])) if d)) or DASH
            col["date (UTC)"], col["compute"] = _dates(runs)
            rows[study] = col
        keys = list(dict.fromkeys(k for col in rows.values() for k in col))
        table = pd.DataFrame({"setting": keys, **{(s or "value") if not self.multi else f"study {s}":
                                                  [rows[s].get(k, DASH) for k in keys] for s in sorted(rows)}})
        doc.table(table)
        if self.multi:
            doc.p("The results hold runs of several recipes (studies S1, S2, ...); runs of different studies are "
                  "never compared with each other, and labels carry the study in brackets.")
        doc.p(f"**Primary metric**: top-1 accuracy on the test split of the checkpoint with the best eval accuracy "
              "(test top-1). The eval split picked the checkpoint, so the test split is still unseen. "
              "Best eval accuracy is shown beside it. With several seeds, cells show mean ± sample standard "
              "deviation over the seeds that finished.")
        self.coverage(doc)

    def coverage(self, doc: Doc):
        doc.h(3, "What ran and what is missing")
        items = []
        bad = self.runs[self.runs["status"] != "finished"]
        for _, r in bad.iterrows():
            err = r["error"] if len(r["error"]) <= 160 else r["error"][:157] + "..."
            items.append(f"`{r['run_id']}` **{r['status']}**" + (f": {err}" if err else ""))
        items += self.curve_problems(markup=True)
        for study in sorted(self.studies):
            ran = set(self.runs[self.runs["study"] == study]["name"].map(lambda n: n.split("~")[0]))
            where = f" in study {study}" if self.multi else ""
            for family, names, how in (
                    ("classic networks", list_models("classic"), "--variants classics"),
                    ("trick variants", [*VARIANTS, "all_tricks+lrdecay"], "--variants tricks")):
                missing = [n for n in names if n not in ran]
                if missing and len(missing) < len(names):
                    items.append(f"{family} not run{where}: {', '.join(missing)} "
                                 f"(`python -m ablations.run {how}` trains them)")
                elif missing:
                    items.append(f"no {family} run{where} (`python -m ablations.run {how}`)")
        few = self.family("trick")
        few = few[few["finished"] < 2] if not few.empty else few
        if len(few):
            items.append("fewer than 2 finished seeds, so no confidence interval: "
                         + ", ".join(f"{self.label(c)} ({int(c['finished'])})" for _, c in few.iterrows()))
        if items:
            doc.ul(items)
        else:
            doc.p("Nothing is missing: every run of the study finished and has curves.")

    def curve_problems(self, markup: bool) -> list[str]:
        """One line per run without curves; a single line when no run has any (a wrong --logdir?)."""
        logged = self.runs[self.runs["status"] != "failed"]
        if len(logged) > 1 and len(self.no_curves) == len(logged) and len(set(self.no_curves.values())) == 1:
            return [f"no run has curves: {next(iter(self.no_curves.values()))} (was --logdir right?)"]
        quote = "`" if markup else ""
        return [f"{quote}{run_id}{quote} has no curves: {why}" for run_id, why in sorted(self.no_curves.items())]

    # ------------------------------------------------------------ 2. classics

    def classics(self, doc: Doc):
        doc.h(2, "2. Classic networks")
        cfgs = self.family("classic")
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
                "model": self.label(c), "image size": f"{int(c['image_size'])} px", "runs": _runs_cell(c),
                "best eval acc": pct_sd(c["best_eval_acc"], c["best_eval_acc_sd"]),
                "best epoch": f"{_num(c['best_epoch'])} of {_num(c['epochs'])}" if not _nan(c["best_epoch"]) else DASH,
                "final eval acc": pct_sd(c["final_eval_acc"], c["final_eval_acc_sd"]),
                "test top-1": pct_sd(c["test_acc"], c["test_acc_sd"]),
                "test top-5": pct_sd(c["test_top5"], c["test_top5_sd"]),
                "balanced acc": pct_sd(c["test_balanced_acc"], c["test_balanced_acc_sd"]),
                "params": si(c["params"]), "FLOPs": si(2 * c["macs"]),
                "images/s": rate(c["images_per_s"]), "train time (s)": secs(c["train_time_s"])})
        df = pd.DataFrame(rows)
        doc.table(df, right=tuple(df.columns[3:]))

    # ------------------------------------------------------------ 3. tricks

    def tricks(self, doc: Doc):
        doc.h(2, "3. The trick ablation")
        cfgs = self.family("trick")
        if cfgs.empty:
            doc.p("No trick variant in the results yet (`python -m ablations.run --variants tricks --seeds 0,1,2` "
                  "trains them).")
            return
        doc.h(3, "Trick variants")
        doc.p("One row per variant: its tricks (on = used) and what it measured.")
        rows = []
        for _, c in cfgs.iterrows():
            t = st.tricks_of(c)
            row = {"variant": self.label(c), **{k: "on" if v else "" for k, v in asdict(t).items()},
                   "lr_decay": "on" if c["lr_decay"] else "", "runs": _runs_cell(c),
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
        if not self.comparisons:
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
        for c in self.comparisons:
            marks = {}
            for t in st.TRICKS:
                on, was = getattr(c.tricks, t), getattr(c.parent_tricks, t)
                marks[t] = "+on" if on and not was else "-off" if was and not on else "on" if on else ""
            p, b = c.primary, c.best_eval
            rows.append({
                "variant": c.variant + (f" [{c.study}]" if self.multi else ""), "parent": c.parent,
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

    # ------------------------------------------------------------ 4. claims

    def claims(self, doc: Doc):
        doc.h(2, "4. Against the seed article")
        verdicts = st.check_claims(self.cfgs, self.main_study)
        s = self.studies[self.main_study]
        seed = RECIPES["seed"]
        sizes = sorted({int(v) for v in self.runs[self.runs["study"] == self.main_study]["image_size"].dropna()})
        doc.p(f"Seed 004 trained one seed per network at {seed.image_size} px for {seed.epochs} epochs "
              f"(batch {seed.batch_size}, lr {seed.lr:g}); these runs used the {s['recipe']} recipe, "
              f"{', '.join(map(str, sizes))} px, {_plural(s['epochs'], 'epoch')}, on {s['dataset']}"
              + (f" (study {self.main_study}, the one with the most finished runs)" if self.multi else "")
              + ". Absolute accuracies therefore differ; the claims are checked by sign and rough size.")
        df = pd.DataFrame([{"seed 004 claims": v.claim.text, "seed 004": v.claim.seed_says,
                            "we measured": v.measured, "verdict": v.verdict} for v in verdicts])
        doc.table(df)
        doc.p("Criteria, applied to every claim alike:")
        doc.ul(st.CRITERIA)

    # ------------------------------------------------------------ 5. figures

    def make_figures(self, out: str) -> dict[str, tuple[str, str]]:
        """Draw every figure the inputs allow; file -> (alt text, caption)."""
        made = {}
        for family, file, title, them in (("classic", "curves_classics.png", "Classic networks", "classic networks"),
                                          ("trick", "curves_tricks.png", "Trick CNN variants", "trick CNN variants")):
            series = []
            for _, c in self.family(family).iterrows():
                runs = [self.curves[r] for r in self.runs_of(c)["run_id"] if r in self.curves]
                if runs:
                    series.append((self.label(c), runs))
            if series:
                figures.curves(os.path.join(out, file), series, title)
                made[file] = (f"{title}: eval accuracy and loss per epoch",
                              f"{title}: eval accuracy and eval loss per epoch, from the VisualDL logs "
                              "(mean over seeds; the band spans the lowest to the highest seed).")
            else:
                self.figure_notes.append(f"No curves for the {them}: none of their runs has a VisualDL log.")
        bars = [{"label": f"{c.variant} vs {c.parent}" + (f" [{c.study}]" if self.multi else ""),
                 "mean": 100 * c.primary.mean, "n": c.primary.n, "verdict": c.primary.verdict,
                 "ci": None if c.primary.ci is None else (100 * c.primary.ci[0], 100 * c.primary.ci[1])}
                for c in self.comparisons if c.primary.mean is not None]
        if bars:
            figures.deltas(os.path.join(out, "trick_deltas.png"), bars)
            made["trick_deltas.png"] = ("Trick deltas with 95% confidence intervals",
                                        "Δ test top-1 of each trick variant against its parent, paired by seed; "
                                        "error bars are 95% confidence intervals (none with one seed).")
        else:
            self.figure_notes.append("No trick-delta chart: no variant has a finished run paired with its parent.")
        points = [{"label": self.label(c), "family": c["family"], "acc": 100 * c["test_acc"],
                   "sd": 100 * c["test_acc_sd"], "flops": 2 * c["macs"], "train_time_s": c["train_time_s"]}
                  for _, c in self.cfgs.iterrows() if not _nan(c["test_acc"])]
        if points:
            figures.cost_scatter(os.path.join(out, "accuracy_vs_cost.png"), points)
            made["accuracy_vs_cost.png"] = ("Accuracy against FLOPs and train time",
                                            "Test top-1 (mean ± sd over seeds) against FLOPs per image and "
                                            "against train time.")
        done = self.runs[(self.runs["status"] == "finished") & self.runs["test_confusion"].notna()
                         & self.runs["test_acc"].notna()]
        if len(done):
            best = done.sort_values(["test_acc", "run_id"], ascending=[False, True], kind="mergesort").iloc[0]
            split = best["test_split"] or "test"
            figures.confusion(os.path.join(out, "confusion.png"), best["test_confusion"], best["class_names"],
                              f"{best['run_id']}\n{split} split, top-1 {pct(best['test_acc'])}%")
            made["confusion.png"] = ("Confusion matrix of the best run",
                                     f"Confusion matrix of the best run, `{best['run_id']}` (highest test top-1): "
                                     "counts, rows = true class; colour = share of the row.")
        else:
            self.figure_notes.append("No confusion matrix: no run finished with test metrics.")
        for file in figures.FILES:  # a figure an earlier report drew but this one cannot: remove it
            if file not in made and os.path.exists(os.path.join(out, file)):
                os.remove(os.path.join(out, file))
        return made

    def figure_section(self, doc: Doc):
        doc.h(2, "5. Figures")
        for file, (alt, caption) in self.figures.items():
            doc.img(file, alt)
            doc.p(caption)
        doc.ul(self.figure_notes)

    # ------------------------------------------------------------ 6. costs

    def costs(self, doc: Doc):
        doc.h(2, "6. Costs")
        models = {}
        for _, r in self.runs.iterrows():
            dims = (r["image_size"], r["in_channels"], r["num_classes"])
            if not any(_nan(v) for v in dims):
                models.setdefault((r["variant"], *(int(v) for v in dims)), None)
        if not models:
            doc.p("No run recorded its input shape, so there is nothing to summarise.")
            return
        doc.p("From the model zoo's summary (`paddle_cnns.summary`), for every model in the results at the image "
              "size it ran at. MACs: multiply-accumulates of conv and linear layers per image (pooling, BatchNorm, "
              "activations not counted); FLOPs = 2 × MACs. Weights: float32 parameters. GoogLeNet's auxiliary "
              "heads count in params (they train) but not in FLOPs (they are skipped at inference).")
        keys = sorted(models, key=lambda k: (data.model_order(k[0]), k[1:]))
        summaries = {k: data.model_summary(*k) for k in keys}
        overview = [{"model": k[0], "image size": f"{k[1]} px", "blocks": str(len(s.blocks)) if s else DASH,
                     "params": si(s.params) if s else DASH, "MACs": si(s.macs) if s else DASH,
                     "FLOPs": si(2 * s.macs) if s else DASH, "weights (MB)": f"{s.size_mb:.1f}" if s else DASH}
                    for k, s in summaries.items()]
        df = pd.DataFrame(overview)
        doc.table(df, right=tuple(df.columns[2:]))
        changed = []  # the zoo is today's code; the runs recorded what they trained
        for k, s in summaries.items():
            r = self.runs
            mine = r[(r["variant"] == k[0]) & (r["image_size"] == k[1]) & (r["in_channels"] == k[2])
                     & (r["num_classes"] == k[3])]
            trained = sorted({(int(p), int(m)) for p, m in zip(mine["params"], mine["macs"])
                              if not _nan(p) and not _nan(m)})
            if s is not None and any(t != (s.params, s.macs) for t in trained):
                changed.append(f"{k[0]} at {k[1]} px: the runs recorded "
                               + "; ".join(f"{p:,} params, {m:,} MACs" for p, m in trained)
                               + f", the model zoo now builds {s.params:,} params, {s.macs:,} MACs "
                               "(the model changed since it was trained)")
        doc.ul(changed)
        for k, s in summaries.items():
            doc.h(3, f"{k[0]} at {k[1]} px")
            if s is None:
                doc.p("The model zoo cannot build this model any more (renamed or removed?).")
                continue
            total = max(s.macs, 1)
            blocks = pd.DataFrame([{"block": b.name, "output (C × H × W)": " × ".join(map(str, b.output_shape)),
                                    "params": f"{b.params:,}", "MACs": f"{b.macs:,}", "FLOPs": si(2 * b.macs),
                                    "share of FLOPs": f"{100 * b.macs / total:.1f}%"} for b in s.blocks]
                                  + [{"block": "total", "output (C × H × W)": "",
                                      "params": f"{s.params:,}", "MACs": f"{s.macs:,}", "FLOPs": si(2 * s.macs),
                                      "share of FLOPs": "100.0%"}])
            doc.table(blocks, right=("params", "MACs", "FLOPs", "share of FLOPs"))


def _num(v) -> str:
    """A setting as typed: 5 not 5.0, 0.01 not 0.0100."""
    if _nan(v):
        return DASH
    if isinstance(v, (int, float)) and float(v) == int(v):
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _plural(v, word: str) -> str:
    return f"{_num(v)} {word}" + ("" if _num(v) == "1" else "s")


def _dates(runs: pd.DataFrame) -> tuple[str, str]:
    """First start to last finish (UTC, from the rows), and compute: the runs' wall times summed."""
    stamps = []
    for at, wall in zip(runs["finished_at"], runs["wall_time_s"]):
        try:
            end = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ")
        except (TypeError, ValueError):
            continue
        stamps.append((end - datetime.timedelta(seconds=0 if _nan(wall) else wall), end))
    if not stamps:
        return DASH, DASH
    start, end = min(s for s, _ in stamps), max(e for _, e in stamps)
    fmt = "%Y-%m-%d %H:%M"
    when = f"{start.strftime(fmt)} to {end.strftime(fmt)}"
    total = float(runs["wall_time_s"].dropna().sum())
    return when, (f"{duration(total)} of run wall time in all; {duration((end - start).total_seconds())} "
                  "from the first start to the last finish")


# ---------------------------------------------------------------- entry points

def build_report(results: str, logdir: str = "logs", out: str = "reports") -> dict:
    """Write report.md, report.html and the figures into `out`. Returns what it wrote and noticed."""
    runs = data.load_runs(results)
    curves, no_curves = data.load_curves(runs, logdir)
    os.makedirs(out, exist_ok=True)
    report = Report(runs, curves, no_curves, os.path.basename(results))
    doc = report.build(out)
    paths = {}
    for name, text in (("report.md", doc.markdown()), ("report.html", doc.html())):
        paths[name] = os.path.join(out, name)
        tmp = paths[name] + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, paths[name])
    return {"paths": paths, "figures": [os.path.join(out, f) for f in report.figures], "runs": runs,
            "no_curves": no_curves, "report": report}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as every command of the project
        cli.fail(f"{message} (see python -m ablations.report --help)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m ablations.report", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=os.path.join("results", "results.csv"),
                   help="the results store written by ablations.run (default: %(default)s)")
    p.add_argument("--logdir", default="logs",
                   help="VisualDL logs, one folder per run; a run's own recorded log folder is used when it "
                        "exists, else LOGDIR/<run_id> (default: %(default)s)")
    p.add_argument("--out", default="reports",
                   help="where report.md, report.html and the PNG figures go (default: %(default)s)")
    return p


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        cli.fail(f"--out {args.out} is a file; pass a folder")
    done = build_report(args.results, args.logdir, args.out)
    runs = done["runs"]
    counts = ", ".join(f"{int((runs['status'] == s).sum())} {s}" for s in data.STATUSES)
    print(f"wrote {done['paths']['report.md']}, {done['paths']['report.html']} and {len(done['figures'])} "
          f"figure{'s' if len(done['figures']) != 1 else ''} from {len(runs)} runs ({counts})")
    for line in done["report"].curve_problems(markup=False):
        print(f"note: {line} (looked in each run's recorded log folder, then under --logdir {args.logdir})",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
