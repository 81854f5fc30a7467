"""The report's inputs: the latest results row of each run, grouped into studies, each run's curves and predictions."""
from __future__ import annotations

import math
import os

import pandas as pd

from paddle_cnns import Tricks, list_models
from paddle_cnns.errors import CNNsError

from . import predictions as stored
from .results import SCHEMA, read_results
from .vdl import SCALAR_TAGS, log_files

# Runs that differ in any of these were trained under different recipes and are never compared
# with each other. Image size and LR decay are left out on purpose: within one study the
# classics run at their minimum sizes, and all_tricks runs with and without decay.
STUDY_COLUMNS = ("dataset", "recipe", "epochs", "batch_size", "optimizer", "lr", "momentum",
                 "weight_decay", "augment", "max_per_class", "tag")
# What a 'failed' row records (run.py's _failed): enough to place it in its study.
FAILED_KNOWN = ("dataset", "recipe", "epochs", "batch_size", "optimizer", "lr", "tag")
METRICS = ("best_eval_acc", "best_epoch", "final_eval_acc", "final_eval_loss", "final_train_acc",
           "final_train_loss", "epochs_done", "test_acc", "test_top5", "test_balanced_acc", "test_loss",
           "params", "macs", "train_time_s", "wall_time_s", "images_per_s", "image_size", "in_channels",
           "num_classes", "train_size", "eval_size", "test_size", "seed", "epochs", "batch_size", "lr",
           "momentum", "weight_decay", "max_per_class", "threads")
TRICKS = Tricks.names()
STATUSES = ("finished", "diverged", "failed")


def flag(value) -> bool | None:
    """A CSV boolean: True/False (or 'True'/'true'/1); None when empty (classics have no tricks)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def number(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _key_value(value):
    """A hashable, sortable stand-in for a cell, so NaN == NaN and 0.01 == 0.01 across rows."""
    if isinstance(value, bool):
        return str(value)
    v = number(value)
    if v is not None and not isinstance(value, str):
        return repr(int(v)) if v == int(v) else repr(v)
    return text(value)


def same_setting(a, b) -> bool:
    """Two cells of a study setting say the same (NaN equals NaN, 0.01 equals '0.01')."""
    return _key_value(a) == _key_value(b)


def model_order(name: str) -> tuple:
    """Registry order (classics first, then the trick variants in study order), ad-hoc sets last."""
    names = list_models()
    return (names.index(name), name) if name in names else (len(names), name)


def load_runs(path: str) -> pd.DataFrame:
    """The latest row of each run_id, typed and sorted, with study/label columns. CNNsError if unusable."""
    try:
        df = read_results(path)
    except CNNsError:
        raise
    except (ValueError, TypeError) as e:  # e.g. a hand-edited JSON cell
        raise CNNsError(f"results file {path} has a malformed row ({type(e).__name__}: {e}); "
                        "fix or remove that row") from e
    if df.empty:
        raise CNNsError(f"results file {path} has no runs yet; train first: python -m ablations.run --variant all")
    schemas = sorted({int(s) for s in df["schema"].map(number).dropna()})
    if schemas != [SCHEMA]:
        raise CNNsError(f"results file {path} has schema {', '.join(map(str, schemas)) or '?'}, this paddle-cnns "
                        f"reads schema {SCHEMA}; re-run the study into a new --results file")
    df = df.assign(_order=range(len(df)), finished_at=df["finished_at"].map(text))
    # A run retrained with --force appends a row with the same run_id: the latest attempt counts.
    df = df.sort_values(["run_id", "finished_at", "_order"], kind="mergesort")
    df = df.groupby("run_id", sort=False).tail(1).copy()
    df["status"] = df["status"].map(text).where(df["status"].map(text).isin(STATUSES), "failed")
    for c in ("run_id", "name", "tag", "variant", "family", "dataset", "recipe", "optimizer", "error", "test_split",
              "paddle_version", "device", "logdir"):
        df[c] = df[c].map(text)
    for c in METRICS:
        df[c] = df[c].map(number).astype(float)
    for c in (*TRICKS, "lr_decay", "augment"):
        df[c] = df[c].map(flag).astype(object)
    df["lr_decay"] = df["lr_decay"].map(bool)
    # A row without its label (written by hand, say) gets the one RunConfig.name would give it.
    built = [v + ("+lrdecay" if d else "") + (f"~{t}" if t else "") for v, d, t in zip(df["variant"], df["lr_decay"], df["tag"])]
    df["name"] = [n or b for n, b in zip(df["name"], built)]
    df["study"] = _studies(df)
    df["_model_order"] = df["variant"].map(model_order)
    df = df.sort_values(["study", "_model_order", "name", "image_size", "seed", "run_id"], kind="mergesort")
    return df.drop(columns=["_model_order"]).reset_index(drop=True)


def _studies(df: pd.DataFrame) -> list[str]:
    """'S1', 'S2', ... per distinct recipe (sorted); '' when all runs share one."""
    keys = [tuple(_key_value(r[c]) for c in STUDY_COLUMNS) for _, r in df.iterrows()]
    complete = sorted({k for k, s in zip(keys, df["status"]) if s != "failed"})
    known = [STUDY_COLUMNS.index(c) for c in FAILED_KNOWN]
    resolved = []
    for key, status in zip(keys, df["status"]):
        if status == "failed":  # a failed row lacks momentum etc.: place it in the first study it fits
            fits = [k for k in complete if all(k[i] == key[i] for i in known)]
            key = fits[0] if fits else key
        resolved.append(key)
    distinct = sorted(set(resolved))
    if len(distinct) == 1:
        return [""] * len(resolved)
    return [f"S{distinct.index(k) + 1}" for k in resolved]


def study_settings(runs: pd.DataFrame) -> dict[str, dict]:
    """Study id -> its recipe settings, read from its first non-failed run."""
    out = {}
    for study, rows in runs.groupby("study", sort=True):
        ok = rows[rows["status"] != "failed"]
        row = (ok if len(ok) else rows).iloc[0]
        out[study] = {c: row[c] for c in STUDY_COLUMNS}
    return out


# ---------------------------------------------------------------- curves

def run_logdir(row, logdir: str) -> str:
    """The run's log folder: the row's own (relative to where it was trained) if it exists here,
    else <logdir>/<run_id>."""
    own = text(row["logdir"])
    if own and os.path.isdir(own):
        return own
    return os.path.join(logdir, *row["run_id"].split("/"))


def read_curves(folder: str) -> tuple[pd.DataFrame | None, str]:
    """(one row per epoch, one column per SCALAR_TAGS key; None and why when there is nothing)."""
    if not os.path.isdir(folder):
        return None, "no log folder"
    files = log_files(folder)
    if not files:
        return None, "no VisualDL file in its log folder"
    from visualdl import LogReader
    try:
        reader = LogReader(file_path=files[-1])  # VisualDL, too, shows only the newest file
        tags = set(reader.get_tags().get("scalar", []))
        columns = {key: {int(r.id): float(r.value) for r in reader.get_data("scalar", tag)}
                   for key, tag in SCALAR_TAGS.items() if tag in tags}
    except Exception as e:  # a truncated or foreign file: say so, keep building the report
        return None, f"unreadable VisualDL file ({type(e).__name__})"
    if not columns.get("eval_acc"):
        return None, "no eval/acc scalars in its VisualDL file"
    curves = pd.DataFrame(columns).sort_index()
    curves.index.name = "epoch"
    return curves, ""


def _same_attempt(curves: pd.DataFrame, epochs_done) -> tuple[pd.DataFrame | None, str]:
    """A finished run's log must hold epochs 1..epochs_done, as its row says; anything else is
    another attempt's log (one started over the folder and stopped), not this run's curve."""
    if epochs_done is None or list(curves.index) == list(range(1, int(epochs_done) + 1)):
        return curves, ""
    held = f"epochs {curves.index[0]}–{curves.index[-1]}" if len(curves) > 1 else f"epoch {curves.index[0]}"
    return None, (f"its VisualDL log holds {held}, its results row says {int(epochs_done)} finished: the log "
                  "of another attempt (restore the run's log, or retrain it with --force)")


def load_curves(runs: pd.DataFrame, logdir: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """run_id -> curves, and run_id -> why it has none (for the runs that have no curves)."""
    curves, missing = {}, {}
    for _, row in runs.iterrows():
        if row["status"] == "failed":
            continue  # a failed run may have died before logging anything; it is listed as failed
        c, why = read_curves(run_logdir(row, logdir))
        if c is not None and row["status"] == "finished":
            c, why = _same_attempt(c, number(row["epochs_done"]))
        if c is None:
            missing[row["run_id"]] = why
        else:
            curves[row["run_id"]] = c
    return curves, missing


# ---------------------------------------------------------------- per-image predictions

def load_predictions(runs: pd.DataFrame, results: str) -> tuple[dict, dict]:
    """run_id -> stored predictions of each finished run whose file matches its row; run_id -> why not.

    A file matches when it holds as many images as the split the row was tested on and as many
    right answers as the row's test accuracy says (else it came from another attempt of the run).
    """
    found, why = {}, {}
    for _, row in runs[runs["status"] == "finished"].iterrows():
        p, reason = stored.read(results, row["run_id"])
        if p is None:
            why[row["run_id"]] = reason
            continue
        n = len(p.labels)
        size = row["test_size"] if row["test_split"] == "test" else row["eval_size"]
        if number(size) is not None and n != int(size):
            why[row["run_id"]] = f"{n} predictions for a split of {int(size)} images"
        elif number(row["test_acc"]) is not None and int(p.correct.sum()) != round(row["test_acc"] * n):
            why[row["run_id"]] = "the predictions do not give the row's test accuracy (another attempt of the run?)"
        else:
            found[row["run_id"]] = p
    return found, why
