"""The results store: one CSV row per finished (or diverged, or failed) run, safe to append concurrently."""
import csv
import io
import json
import os

from paddle_cnns.errors import CNNsError
from paddle_cnns.models.tricks import Tricks

try:
    import fcntl
except ImportError:  # Windows: appends are then not protected against concurrent writers
    fcntl = None

SCHEMA = 1  # bump when COLUMNS change; the report refuses (with a message) what it can't read

COLUMNS = [
    "schema", "run_id", "finished_at", "status", "error",
    "variant", "family", *Tricks.names(),
    "dataset", "image_size", "in_channels", "num_classes", "train_size", "eval_size", "test_size",
    "recipe", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "lr_decay",
    "decay_epochs", "augment", "max_per_class", "seed",
    "best_eval_acc", "best_epoch", "final_eval_acc", "final_eval_loss", "final_train_acc",
    "final_train_loss", "epochs_done",
    "test_split", "test_acc", "test_top5", "test_balanced_acc", "test_loss",
    "params", "macs", "train_time_s", "wall_time_s", "images_per_s",
    "paddle_version", "device", "threads", "fast_layers", "logdir",
    "class_names", "test_per_class_acc", "test_confusion",
]
JSON_COLUMNS = ("class_names", "test_per_class_acc", "test_confusion", "decay_epochs")


def _format(value):
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)  # full precision: the report must reproduce the numbers exactly
    return "" if value is None else value


def append_row(path: str, row: dict) -> None:
    """Append one row under an exclusive lock: concurrent runs never interleave or lose rows."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_format(row.get(c, SCHEMA if c == "schema" else None)) for c in COLUMNS])
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
                                "move it away or pass --results with a new file")
            f.seek(0, os.SEEK_END)
            f.write(buf.getvalue())  # one write of one whole line
            f.flush()
            os.fsync(f.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_results(path: str):
    """The store as a pandas DataFrame (JSON columns decoded). Raises CNNsError if unreadable."""
    import pandas as pd

    if not os.path.exists(path):
        raise CNNsError(f"no results at {path} yet; train first: python -m ablations.run --variant all")
    try:
        df = pd.read_csv(path)
    except Exception as e:
        raise CNNsError(f"cannot read results file {path} ({type(e).__name__}: {e})") from e
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CNNsError(f"results file {path} lacks columns {', '.join(missing[:5])} "
                        "(written by an older paddle-cnns?); re-run the study into a new --results file")
    for c in JSON_COLUMNS:
        df[c] = df[c].map(lambda v: json.loads(v) if isinstance(v, str) and v else None)
    return df
