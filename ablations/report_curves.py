"""What a run's curves show about overfitting: eval loss rising after its minimum while train loss falls."""
from __future__ import annotations

from typing import Optional

from .report_format import pct


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
    if train is not None and best in train.index and last in train.index:
        fell = float(train[last]) < float(train[best])
    text = (f"eval loss {float(loss[best]):.3f} at epoch {best}, {float(loss[last]):.3f} at {last} "
            f"({100 * grew:+.0f}%)" + ("" if fell is None else f", train loss {'fell' if fell else 'did not fall'}"))
    return grew >= rise and fell is not False, text
