"""The results store: one CSV row per finished (or diverged, or failed) run, safe to append concurrently.

A row is {run, **config.identity(), model facts, data facts, metrics, environment}; the columns
derive from RunConfig and the groups below, so a new setting is a new column without a second edit.
"""
from __future__ import annotations

import csv
import io
import json
import os

from paddle_cnns.errors import CNNsError
from paddle_cnns.models.tricks import Tricks

from .config import identity_columns

try:
    import fcntl
except ImportError:  # Windows: appends are then not protected against concurrent writers
    fcntl = None

SCHEMA = 3  # bump when COLUMNS change; read_results upgrades older files it knows

RUN = ("schema", "run_id", "name", "finished_at", "status", "error")
MODEL = ("family", "model_revision", *Tricks.names())
DATA = ("in_channels", "num_classes", "train_size", "eval_size", "test_size")
METRICS = ("best_eval_acc", "best_epoch", "final_eval_acc", "final_eval_loss", "final_train_acc",
           "final_train_loss", "epochs_done", "test_split", "test_acc", "test_top5", "test_balanced_acc",
           "test_loss", "params", "macs", "train_time_s", "wall_time_s", "images_per_s")
# world_size: processes (devices) that trained the run together; per_device_batch: the largest
# slice of a global batch one of them saw; sync_bn: BatchNorm statistics over the global batch.
ENVIRONMENT = ("paddle_version", "device", "threads", "world_size", "per_device_batch", "sync_bn", "logdir")
# Lists and tables, stored as JSON text; `blocks` is [[name, [C, H, W], params, MACs], ...] per block.
DETAILS = ("class_names", "test_per_class_acc", "test_confusion", "blocks")
COLUMNS = [*RUN, *identity_columns(), *MODEL, *DATA, *METRICS, *ENVIRONMENT, *DETAILS]
JSON_COLUMNS = ("decay_epochs", *DETAILS)


def _format(value):
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)  # full precision: the report must reproduce the numbers exactly
    return "" if value is None else value


def format_row(row: dict) -> str:
    """One CSV line (with its newline) holding `row` in COLUMNS order; unknown keys are a bug."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [_format(row.get(c, SCHEMA if c == "schema" else None)) for c in COLUMNS])
    return buf.getvalue()


def append_row(path: str, row: dict) -> None:
    """Append one row under an exclusive lock: concurrent runs never interleave or lose rows."""
    line = format_row(row)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a+", newline="") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            header = f.readline()
            if not header:
                f.write(",".join(COLUMNS) + "\n")
            elif header.rstrip("\r\n") != ",".join(COLUMNS):
                raise CNNsError(f"results file {path} has other columns (an older paddle-cnns?); "
                                "move it away or write to a new results file")
            f.seek(0, os.SEEK_END)
            f.write(line)  # one write of one whole line
            f.flush()
            os.fsync(f.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def _upgrade_v1(df):
    """Schema 1 (before the run's name, tag and block costs were columns) -> schema 2.

    The only place a run label is parsed: schema-1 files stored it inside run_id alone.
    """
    names = [rid.split("/")[2] if isinstance(rid, str) and rid.count("/") == 3 else v
             for rid, v in zip(df["run_id"], df["variant"])]
    df = df.assign(schema=2, name=names, tag=[n.split("~", 1)[1] if "~" in n else "" for n in names],
                   amp=False, model_revision=1, blocks="")
    return df


def _upgrade_v2(df):
    """Schema 2 (before data parallelism and streaming) -> schema 3: every run was one process."""
    return df.assign(schema=3, stream=False, world_size=1, per_device_batch=df["batch_size"], sync_bn=False)


def read_results(path: str):
    """The store as a pandas DataFrame (JSON columns decoded). Raises CNNsError if unreadable."""
    import pandas as pd

    if not os.path.exists(path):
        raise CNNsError(f"no results at {path} yet; train first: python -m ablations.run --variant all")
    try:
        df = pd.read_csv(path)
    except Exception as e:
        raise CNNsError(f"cannot read results file {path} ({type(e).__name__}: {e})") from e
    if "schema" in df.columns and len(df) and set(df["schema"].astype(str)) == {"1"}:
        df = _upgrade_v1(df)
    if "schema" in df.columns and len(df) and set(df["schema"].astype(str)) == {"2"}:
        df = _upgrade_v2(df)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CNNsError(f"results file {path} lacks columns {', '.join(missing[:5])} "
                        "(written by an older paddle-cnns?); re-run the study into a new results file")
    for c in JSON_COLUMNS:
        df[c] = df[c].map(lambda v: json.loads(v) if isinstance(v, str) and v else None)
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
