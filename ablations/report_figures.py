"""The report's figures: PNGs drawn with matplotlib's Agg canvas, byte-identical for identical inputs."""
from __future__ import annotations
import math

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# DejaVu Sans ships with matplotlib and has ±, Δ and −: no missing-glyph boxes anywhere.
# No pyplot: figures are plain Figure objects, so nothing global (backend, open figures) changes.
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
    "grid.alpha": 0.3, "legend.fontsize": 7, "svg.hashsalt": "paddle-cnns", "figure.dpi": 100,
}
VERDICT_COLORS = {"helps": "#2a9d4b", "hurts": "#c0392b"}
NEUTRAL = "#8c8c8c"
FILES = ("curves_classics.png", "curves_tricks.png", "trick_deltas.png", "accuracy_vs_cost.png",
         "confusion.png")


def save(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)
    # No "Software" text chunk and no timestamp: the same figure gives the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})


def _colors(n: int) -> list:
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def curves(path: str, series: list[tuple[str, list]], title: str) -> None:
    """Eval accuracy and eval loss per epoch; one line per configuration (mean over its seeds,
    a band from the lowest to the highest seed when there are several). series: (label, [curves])."""
    with rc_context(STYLE):
        fig = Figure(figsize=(11, 4.2))
        acc_ax, loss_ax = fig.subplots(1, 2)
        for (label, runs), color in zip(series, _colors(len(series))):
            style = "--" if "+lrdecay" in label else "-"
            for ax, key, scale in ((acc_ax, "eval_acc", 100.0), (loss_ax, "eval_loss", 1.0)):
                frames = [c[key].dropna() * scale for c in runs if key in c]
                if not frames:
                    continue
                epochs = sorted(set().union(*(f.index for f in frames)))
                stack = np.array([[f.get(e, np.nan) for e in epochs] for f in frames], dtype=np.float64)
                mean = np.nanmean(stack, axis=0)
                n = len(frames)
                ax.plot(epochs, mean, style, color=color, marker="o", markersize=2.5, linewidth=1.2,
                        label=f"{label} (n={n})" if n > 1 else label)
                if n > 1:
                    ax.fill_between(epochs, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0),
                                    color=color, alpha=0.12, linewidth=0)
        acc_ax.set(title=f"{title}: eval accuracy", xlabel="epoch", ylabel="eval top-1 accuracy (%)")
        loss_ax.set(title=f"{title}: eval loss", xlabel="epoch", ylabel="eval cross-entropy loss")
        for ax in (acc_ax, loss_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
        loss_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        fig.subplots_adjust(left=0.06, right=0.80, bottom=0.12, top=0.92, wspace=0.22)
        save(fig, path)


def deltas(path: str, bars: list[dict]) -> None:
    """Horizontal bars of mean Δ test top-1 (points) per comparison; error bars: the 95% CI."""
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
        ax.set_xlabel("Δ test top-1 accuracy vs parent (points); error bars: 95% CI, paired by seed")
        ax.set_title("Trick ablation: each variant against its parent")
        ax.grid(axis="y", visible=False)
        ax.legend(handles=[Patch(color=VERDICT_COLORS["helps"], label="helps"),
                           Patch(color=VERDICT_COLORS["hurts"], label="hurts"),
                           Patch(color=NEUTRAL, label="inconclusive")],
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.subplots_adjust(left=0.34, right=0.84, bottom=0.55 / height, top=1 - 0.35 / height)
        save(fig, path)


def cost_scatter(path: str, points: list[dict]) -> None:
    """Test top-1 against FLOPs and against train time, one labelled point per configuration."""
    with rc_context(STYLE):
        fig = Figure(figsize=(11, 4.5))
        axes = fig.subplots(1, 2)
        for ax, key, xlabel in ((axes[0], "flops", "FLOPs per image (2 × MACs of conv + linear layers, log scale)"),
                                (axes[1], "train_time_s", "train time (s, mean over seeds, log scale)")):
            taken: dict[tuple, int] = {}
            for family, marker, color in (("classic", "o", "#1f77b4"), ("trick", "s", "#ff7f0e")):
                mine = [p for p in points if p["family"] == family and _positive(p[key])]
                if not mine:
                    continue
                ax.errorbar([p[key] for p in mine], [p["acc"] for p in mine],
                            yerr=[0 if math.isnan(p["sd"]) else p["sd"] for p in mine], fmt=marker,
                            color=color, markersize=5, capsize=2, elinewidth=0.8,
                            label="classic networks" if family == "classic" else "trick CNN variants")
                for p in mine:
                    # points on (nearly) the same spot get their labels stacked, not overprinted
                    spot = (round(4 * math.log10(p[key])), round(p["acc"] / 3))  # quarter decade, 3 pts
                    ax.annotate(p["label"], (p[key], p["acc"]), textcoords="offset points",
                                xytext=(4, 3 + 8 * taken.get(spot, 0)), fontsize=6.5)
                    taken[spot] = taken.get(spot, 0) + 1
            if any(_positive(p[key]) for p in points):
                ax.set_xscale("log")
            ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
            ax.set(xlabel=xlabel, ylabel="test top-1 accuracy (%)")
        axes[0].set_title("Accuracy vs compute")
        axes[1].set_title("Accuracy vs train time")
        axes[0].legend(loc="best")
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.92, wspace=0.18)
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
