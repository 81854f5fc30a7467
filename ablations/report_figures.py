"""The report's figures (section 5): which ones the runs allow, drawn with matplotlib's Agg canvas,
byte-identical for identical inputs."""
from __future__ import annotations

import math
import os

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .report_curves import convergence, curves
from .report_plot import STYLE, colors, save
from .report_doc import Doc
from .report_format import missing, pct

VERDICT_COLORS = {"helps": "#2a9d4b", "hurts": "#c0392b"}
NEUTRAL = "#8c8c8c"
GRADCAM = "gradcam.png"  # drawn from the runs' weights (report --gradcam), so never removed here
CONVERGENCE = "convergence_tricks.png"
FILES = ("curves_classics.png", "curves_tricks.png", CONVERGENCE, "trick_deltas.png", "accuracy_vs_cost.png",
         "confusion.png")


def deltas(path: str, bars: list[dict], title: str) -> None:
    """Horizontal bars of mean Δ test top-1 (points) per comparison; error bars: the verdict's 95% interval."""
    from matplotlib.patches import Patch
    with rc_context(STYLE):
        height = 0.4 * len(bars) + 1.6
        fig = Figure(figsize=(8, height))
        ax = fig.subplots()
        y = np.arange(len(bars))[::-1]
        for yi, b in zip(y, bars):
            color = VERDICT_COLORS.get(b["verdict"], NEUTRAL)
            err = None
            if b["ci"] is not None:
                err = [[b["mean"] - b["ci"][0]], [b["ci"][1] - b["mean"]]]
            ax.barh(yi, b["mean"], color=color, xerr=err, capsize=3, height=0.6,
                    error_kw={"elinewidth": 1, "ecolor": "#333333"})
        ax.set_yticks(y, [f"{b['label']} (n={b['n']})" for b in bars])
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_xlabel("Δ test top-1 accuracy vs parent (points); error bars: 95% interval")
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        ax.legend(handles=[Patch(color=VERDICT_COLORS["helps"], label="helps"),
                           Patch(color=VERDICT_COLORS["hurts"], label="hurts"),
                           Patch(color=NEUTRAL, label="inconclusive")],
                  title="verdict (Holm)", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.subplots_adjust(left=0.34, right=0.84, bottom=0.55 / height, top=1 - 0.35 / height)
        save(fig, path)


# Label offsets (points) tried in turn: beside the point on its right, then its left, then further
# above and below; the first whose label stays inside the axes and covers no label or point wins.
OFFSETS = [(dx, dy) for dy in (2, -9, 11, -18, 20, -27, 29, -36, 38, -45, 47, -54, 56, -63, 65) for dx in (5, -5)]
MARKER_PX = 4  # half the marker's width in pixels at 100 dpi, padded


def place_labels(fig, ax, points: list, key: str, fontsize: float = 6.5) -> list:
    """Annotate each point without covering the labels placed before or any point; returns the annotations.

    Needs the axes' final scale and limits: positions are measured on the drawn canvas. A label
    moved off its point gets a thin leader line.
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    renderer = FigureCanvasAgg(fig).get_renderer()

    def text_box(a):  # the label's own box, without its leader line (which starts at the point)
        a.get_window_extent(renderer)  # positions the text
        return Text.get_window_extent(a, renderer).padded(1)

    frame = ax.get_window_extent(renderer)
    taken = []
    for p in points:
        x, y = ax.transData.transform((p[key], p["acc"]))
        taken.append(Bbox.from_extents(x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX))
    annotations = []
    for p in sorted(points, key=lambda q: (q[key], q["acc"], q["label"])):
        fallback = None
        for dx, dy in OFFSETS:
            a = ax.annotate(p["label"], (p[key], p["acc"]), textcoords="offset points", xytext=(dx, dy),
                            fontsize=fontsize, ha="left" if dx > 0 else "right", va="bottom",
                            arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5}
                            if abs(dy) > 11 else None)
            box = text_box(a)
            free = not any(Bbox.intersection(box, other) is not None for other in taken)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if free and inside:
                break
            a.remove()
            if free and fallback is None:
                fallback = (dx, dy)
        else:  # nowhere inside is free: the first free spot (or the plain one) outside the frame
            dx, dy = fallback or OFFSETS[0]
            a = ax.annotate(p["label"], (p[key], p["acc"]), textcoords="offset points", xytext=(dx, dy),
                            fontsize=fontsize, ha="left" if dx > 0 else "right", va="bottom", annotation_clip=False,
                            arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5}
                            if abs(dy) > 11 else None)
            box = text_box(a)
        taken.append(box)
        annotations.append(a)
    return annotations


def cost_scatter(path: str, points: list[dict]) -> None:
    """Test top-1 against FLOPs and against train time, one labelled point per configuration."""
    with rc_context(STYLE):
        fig = Figure(figsize=(11, 5.2))
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.17, top=0.93, wspace=0.18)
        for ax, key, xlabel in ((axes[0], "flops", "FLOPs per image (2 × MACs of conv + linear layers, log scale)"),
                                (axes[1], "train_time_s", "train time (s, mean over seeds, log scale)")):
            shown = []
            for family, marker, color in (("classic", "o", "#1f77b4"), ("trick", "s", "#ff7f0e")):
                mine = [p for p in points if p["family"] == family and _positive(p[key])]
                if not mine:
                    continue
                ax.errorbar([p[key] for p in mine], [p["acc"] for p in mine],
                            yerr=[0 if math.isnan(p["sd"]) else p["sd"] for p in mine], fmt=marker,
                            color=color, markersize=5, capsize=2, elinewidth=0.8,
                            label="classic networks" if family == "classic" else "trick CNN variants")
                shown += mine
            if shown:
                ax.set_xscale("log")
            ax.margins(x=0.15, y=0.12)  # room for the labels of the outermost points
            ax.autoscale_view()
            ax.set(xlabel=xlabel, ylabel="test top-1 accuracy (%)")
            place_labels(fig, ax, shown, key)
        axes[0].set_title("Accuracy vs compute")
        axes[1].set_title("Accuracy vs train time")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:  # below the plots: a legend inside would cover points or labels
            fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.0), frameon=False)
        save(fig, path)


def _positive(v) -> bool:
    return v is not None and not math.isnan(v) and v > 0


def confusion(path: str, matrix: list[list[int]], class_names: list[str], title: str) -> None:
    """Counts, rows = true class, columns = predicted class; the colour is the row's share."""
    m = np.asarray(matrix, dtype=np.float64)
    k = len(m)
    with rc_context(STYLE):
        size = max(4.5, 0.42 * k + 2.2)
        fig = Figure(figsize=(size + 0.8, size))
        ax = fig.subplots()
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        if k <= 30:
            for i in range(k):
                for j in range(k):
                    if m[i, j]:
                        ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6.5,
                                color="white" if share[i, j] > 0.5 else "black")
        names = class_names if class_names and len(class_names) == k else [str(i) for i in range(k)]
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
        ax.set(xlabel="predicted class", ylabel="true class", title=title)
        ax.grid(False)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        fig.tight_layout()
        save(fig, path)


# ---------------------------------------------------------------- section 5

def make_figures(rep, out: str) -> dict[str, tuple[str, str]]:
    """Draw every figure the inputs allow; file -> (alt text, caption)."""
    made = {}
    for family, file, title, them in (("classic", "curves_classics.png", "Classic networks", "classic networks"),
                                      ("trick", "curves_tricks.png", "Trick CNN variants", "trick CNN variants")):
        series = []
        for _, c in rep.family(family).iterrows():
            runs = [rep.curves[r] for r in rep.runs_of(c)["run_id"] if r in rep.curves]
            if runs:
                series.append((rep.label(c), runs))
        if series:
            curves(os.path.join(out, file), series, title)
            made[file] = (f"{title}: eval accuracy and loss per epoch",
                          f"{title}: eval accuracy and eval loss per epoch, from the VisualDL logs "
                          "(mean over seeds; the band spans the lowest to the highest seed).")
        else:
            rep.figure_notes.append(f"No curves for the {them}: none of their runs has a VisualDL log.")
    if convergence(rep, os.path.join(out, CONVERGENCE)):
        made[CONVERGENCE] = ("Trick CNN variants: train and eval loss per epoch, one panel each",
                             "Convergence of each trick variant: train loss (dashed) and eval loss (solid) per "
                             "epoch, mean over seeds (band: lowest to highest seed's eval loss), log scale; dotted "
                             "lines: each seed's epoch of best eval accuracy, the checkpoint tested. Eval loss "
                             "rising while train loss falls is overfitting.")
    bars = [{"label": f"{c.variant} vs {c.parent}" + (f" [{c.study}]" if rep.multi else ""),
             "mean": 100 * c.primary.mean, "n": c.primary.n, "verdict": c.verdict,
             "ci": None if c.evidence.ci is None else (100 * c.evidence.ci[0], 100 * c.evidence.ci[1])}
            for c in rep.comparisons if c.primary.mean is not None]
    if bars:
        deltas(os.path.join(out, "trick_deltas.png"), bars, deltas_title(rep))
        made["trick_deltas.png"] = ("Trick deltas with 95% intervals",
                                    "Δ test top-1 of each trick variant against its parent, paired by seed; "
                                    "error bars are the 95% intervals the verdicts use (spanning the seeds' "
                                    "t-interval and the bootstrap over seeds × images where predictions were "
                                    "stored, else over seeds; none with one seed); colour: "
                                    "the Holm-adjusted verdict.")
    else:
        rep.figure_notes.append("No trick-delta chart: no variant has a finished run paired with its parent.")
    points = [{"label": rep.label(c), "family": c["family"], "acc": 100 * c["test_acc"],
               "sd": 100 * c["test_acc_sd"], "flops": 2 * c["macs"], "train_time_s": c["train_time_s"]}
              for _, c in rep.cfgs.iterrows() if not missing(c["test_acc"])]
    if points:
        cost_scatter(os.path.join(out, "accuracy_vs_cost.png"), points)
        made["accuracy_vs_cost.png"] = ("Accuracy against FLOPs and train time",
                                        "Test top-1 (mean ± sd over seeds) against FLOPs per image and "
                                        "against train time.")
    done = rep.runs[(rep.runs["status"] == "finished") & rep.runs["test_confusion"].notna()
                     & rep.runs["test_acc"].notna()]
    if len(done):
        best = done.sort_values(["test_acc", "run_id"], ascending=[False, True], kind="mergesort").iloc[0]
        split = best["test_split"] or "test"
        confusion(os.path.join(out, "confusion.png"), best["test_confusion"], best["class_names"],
                          f"{best['run_id']}\n{split} split, top-1 {pct(best['test_acc'])}%")
        made["confusion.png"] = ("Confusion matrix of the best run",
                                 f"Confusion matrix of the best run, `{best['run_id']}` (highest test top-1): "
                                 "counts, rows = true class; colour = share of the row.")
    else:
        rep.figure_notes.append("No confusion matrix: no run finished with test metrics.")
    if os.path.exists(os.path.join(out, GRADCAM)):
        made[GRADCAM] = ("Grad-CAM of the trick variants on test images",
                         "Where each trick variant (seed 0) looks: Grad-CAM of its predicted class at its "
                         "deepest feature map of at least 4 × 4, on the first test image of six classes "
                         "(caption: the prediction; red: wrong). Drawn from the runs' weights by "
                         "`python -m ablations.report --gradcam CHECKPOINT_DIR`, kept when the report is "
                         "regenerated without them.")
    else:
        rep.figure_notes.append("No Grad-CAM figure: it is drawn from the runs' weights with "
                                "`python -m ablations.report --gradcam CHECKPOINT_DIR`.")
    for file in FILES:  # a figure an earlier report drew but this one cannot: remove it
        if file not in made and os.path.exists(os.path.join(out, file)):
            os.remove(os.path.join(out, file))
    return made


def deltas_title(rep) -> str:
    """'Trick ablation at 32 px, 5 epochs: ...' (every image size and epoch count the comparisons span)."""
    sizes = sorted({int(c.image_size) for c in rep.comparisons})
    epochs = sorted({int(rep.studies[c.study]["epochs"]) for c in rep.comparisons
                     if not missing(rep.studies[c.study]["epochs"])})
    where = ", ".join(f"{s} px" for s in sizes) + ", " + ", ".join(map(str, epochs)) + \
        (" epoch" if epochs == [1] else " epochs")
    return f"Trick ablation at {where}: each variant against its parent"


def figure_section(rep, doc: Doc):
    doc.h(2, "5. Figures")
    for file, (alt, caption) in rep.figures.items():
        doc.img(file, alt)
        doc.p(caption)
    doc.ul(rep.figure_notes)
