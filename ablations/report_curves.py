"""The runs' curves: what they show about overfitting (eval loss rising after its minimum while train
loss falls), and the figures drawn from them."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .report_format import num, pct
from .report_plot import STYLE, colors, save


def overfit_run(row, curves, rise: float) -> tuple:
    """(True / False, or None when the run cannot show it, and what was seen) for one finished run.

    Overfits: the eval loss of the last epoch is at least `rise` (a fraction) above its minimum
    and the train loss fell after that minimum. A run that is underfit (train accuracy no higher
    than eval accuracy) or whose eval loss is lowest in its last epoch cannot show it.
    """
    if curves is None or "eval_loss" not in curves or curves["eval_loss"].dropna().empty:
        return None, "no eval-loss curve"
    if row["final_train_acc"] <= row["final_eval_acc"]:
        return None, (f"underfit (train acc {pct(row['final_train_acc'])}% ≤ eval acc "
                      f"{pct(row['final_eval_acc'])}%)")
    loss = curves["eval_loss"].dropna()
    best = int(loss.idxmin())
    last = int(loss.index[-1])
    if best == last:
        return None, f"eval loss lowest in the last epoch ({last}): still falling"
    grew = float(loss[last]) / float(loss[best]) - 1
    train = curves["train_loss"].dropna() if "train_loss" in curves else None
    fell: Optional[bool] = None
    text = f"eval loss {float(loss[best]):.3f} at epoch {best}, {float(loss[last]):.3f} at {last} ({100 * grew:+.0f}%)"
    if train is not None and best in train.index and last in train.index:
        fell = float(train[last]) < float(train[best])
        text += (f", train loss {float(train[best]):.3f} → {float(train[last]):.3f} "
                 f"({'fell' if fell else 'did not fall'})")
    # How far the run had fitted its training images: a run still far from it may not have reached
    # the regime where overfitting shows, which the verdict alone would not tell.
    text += f"; last epoch train acc {pct(row['final_train_acc'])}%, eval acc {pct(row['final_eval_acc'])}%"
    return grew >= rise and fell is not False, text


def curves(path: str, series: list[tuple[str, list]], title: str) -> None:
    """Eval accuracy and eval loss per epoch; one line per configuration (mean over its seeds,
    a band from the lowest to the highest seed when there are several). series: (label, [curves])."""
    with rc_context(STYLE):
        fig = Figure(figsize=(11, 4.2))
        acc_ax, loss_ax = fig.subplots(1, 2)
        for (label, runs), color in zip(series, colors(len(series))):
            style = "--" if "+lrdecay" in label else "-"
            for ax, key, scale in ((acc_ax, "eval_acc", 100.0), (loss_ax, "eval_loss", 1.0)):
                frames = [c[key].dropna() * scale for c in runs if key in c]
                if not frames:
                    continue
                epochs, mean, low, high = _mean_band(frames)
                n = len(frames)
                ax.plot(epochs, mean, style, color=color, marker="o", markersize=2.5, linewidth=1.2,
                        label=f"{label} (n={n})" if n > 1 else label)
                if n > 1:
                    ax.fill_between(epochs, low, high, color=color, alpha=0.12, linewidth=0)
        acc_ax.set(title=f"{title}: eval accuracy", xlabel="epoch", ylabel="eval top-1 accuracy (%)")
        loss_ax.set(title=f"{title}: eval loss", xlabel="epoch", ylabel="eval cross-entropy loss")
        for ax in (acc_ax, loss_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
        loss_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        fig.subplots_adjust(left=0.06, right=0.80, bottom=0.12, top=0.92, wspace=0.22)
        save(fig, path)


def _mean_band(frames: list) -> tuple:
    """(epochs, mean, lowest, highest) over runs' per-epoch series."""
    epochs = sorted(set().union(*(f.index for f in frames)))
    stack = np.array([[f.get(e, np.nan) for e in epochs] for f in frames], dtype=np.float64)
    return epochs, np.nanmean(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def convergence(rep, path: str) -> bool:
    """One panel per trick configuration: train and eval loss per epoch (mean over seeds, log scale) and
    each seed's epoch of best eval accuracy. False (nothing drawn) when no trick run has both curves."""
    panels = []
    for _, c in rep.family("trick").iterrows():
        runs = rep.runs_of(c)
        runs = runs[runs["status"] == "finished"].sort_values("seed")
        logged = [rep.curves[r] for r in runs["run_id"] if r in rep.curves]
        logged = [x for x in logged if "train_loss" in x and "eval_loss" in x]
        if logged:
            best = [int(e) for e in runs["best_epoch"].dropna()]
            panels.append((rep.label(c), logged, best))
    if not panels:
        return False
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    with rc_context(STYLE):
        fig = Figure(figsize=(3.7 * cols, 2.5 * rows + 0.4))
        axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
        train_color, eval_color = colors(2)
        for ax, (label, logged, best) in zip(axes, panels):
            for key, color, style in (("train_loss", train_color, "--"), ("eval_loss", eval_color, "-")):
                epochs, mean, low, high = _mean_band([x[key].dropna().clip(lower=1e-4) for x in logged])
                ax.plot(epochs, mean, style, color=color, linewidth=1.2, marker="o", markersize=2,
                        label=key.replace("_", " "))
                if key == "eval_loss" and len(logged) > 1:
                    ax.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)
            for e in sorted(set(best)):
                ax.axvline(e, color="#555555", linestyle=":", linewidth=0.9)
            n = f" (n={len(logged)})" if len(logged) > 1 else ""
            ax.set_title(f"{label}{n}: best epoch {', '.join(num(e) for e in best) or '?'}", fontsize=8)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # plain text: no mathtext fonts
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.get_major_locator().set_params(integer=True)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for i, ax in enumerate(axes[:len(panels)]):
            if i + cols >= len(panels):  # nothing drawn below it: it carries the epoch axis
                ax.set_xlabel("epoch")
                ax.tick_params(labelbottom=True)
        for ax in axes[::cols]:
            ax.set_ylabel("loss (log)")
        axes[0].legend(loc="lower left")
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.45 / (2.5 * rows + 0.4), top=1 - 0.3 / (2.5 * rows + 0.4),
                            wspace=0.08, hspace=0.35)
        save(fig, path)
    return True
