"""Per-image test predictions of each run, stored beside the results store so the report can pair runs image by image.

    results/results.csv                               the results store (one row per run)
    results/predictions/gap/s0/caltech16-64px.csv     index,label,predicted,top5 (one line per image)
    results/predictions/gap/s0/caltech16-64px.json    what the indices refer to

`index` is the image's position in the split as the run loaded it: the line of the split's list
(data/caltech16/Test.txt) after --max-per-class, or the synthetic set's generation order. Runs of
one study load the same split in the same order, so equal indices are the same image.
"""
from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np

FOLDER = "predictions"
HEADER = ("index", "label", "predicted", "top5")
TOP_K = 5


def folder_for(results: str) -> str:
    """The predictions folder beside a results store: results/results.csv -> results/predictions."""
    return os.path.join(os.path.dirname(results), FOLDER)


def paths_for(results: str, run_id: str) -> tuple[str, str]:
    """(CSV, JSON) of one run's predictions."""
    base = os.path.join(folder_for(results), *run_id.split("/"))
    return base + ".csv", base + ".json"


def predict(model, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """labels [N], predicted class [N] and the top classes [N, min(5, classes)] of `model` over `loader`."""
    import paddle

    model.eval()
    labels, top = [], []
    with paddle.no_grad():
        for x, y in loader:
            logits = model(x).numpy()
            k = min(TOP_K, logits.shape[1])
            # stable sort of the negated logits: ties keep the lower class first, as argmax does
            top.append(np.argsort(-logits, axis=1, kind="stable")[:, :k])
            labels.append(y.numpy().reshape(-1))
    top_k = np.concatenate(top).astype(np.int64)
    return np.concatenate(labels).astype(np.int64), top_k[:, 0], top_k


def write(results: str, run_id: str, labels, top_k, meta: dict) -> str:
    """Write one run's predictions (atomically, so a reader never sees half a file); returns the CSV path."""
    csv_path, json_path = paths_for(results, run_id)
    os.makedirs(os.path.dirname(csv_path), exist_ok=True)
    tmp = csv_path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for i, (label, classes) in enumerate(zip(labels, top_k)):
            w.writerow([i, int(label), int(classes[0]), " ".join(str(int(c)) for c in classes)])
    os.replace(tmp, csv_path)
    tmp = json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"run_id": run_id, "images": int(len(labels)), **meta}, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, json_path)
    return csv_path


def record(cfg, job, results: str, split: str) -> str | None:
    """After test_metrics: the loaded (best-eval) weights' predictions on `split`, beside `results`.

    A failure to write is reported on stderr and does not fail the run: its results row stands,
    and the report then falls back to seed-level statistics for it.
    """
    dataset = getattr(job.bundle, split)
    try:
        labels, _, top_k = predict(job.model, job.loader(dataset, cfg))
        return write(results, cfg.run_id, labels, top_k, {
            "split": split, "dataset": cfg.dataset, "data_dir": cfg.data_dir, "max_per_class": cfg.max_per_class,
            "image_size": cfg.recipe.image_size, "index": "position in the split as loaded (its list's order)"})
    except OSError as e:
        print(f"{cfg.run_id}: per-image predictions not written ({e})", file=sys.stderr, flush=True)
        return None


class Predictions:
    """One run's stored predictions: label and predicted class per image index."""

    def __init__(self, labels: np.ndarray, predicted: np.ndarray, meta: dict):
        self.labels, self.predicted, self.meta = labels, predicted, meta

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels


def read(results: str, run_id: str) -> tuple[Predictions | None, str]:
    """(predictions, '') or (None, why there are none usable)."""
    csv_path, json_path = paths_for(results, run_id)
    if not os.path.exists(csv_path):
        return None, "no predictions file"
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or tuple(rows[0]) != HEADER:
            return None, f"unexpected header in {os.path.basename(csv_path)}"
        table = np.array([[int(r[0]), int(r[1]), int(r[2])] for r in rows[1:]], dtype=np.int64).reshape(-1, 3)
        meta = {}
        if os.path.exists(json_path):
            with open(json_path, encoding="utf-8") as f:
                meta = json.load(f)
    except (OSError, ValueError, IndexError) as e:
        return None, f"unreadable predictions ({type(e).__name__})"
    if not np.array_equal(table[:, 0], np.arange(len(table))):
        return None, "predictions file has gaps or repeats in its image index"
    return Predictions(table[:, 1], table[:, 2], meta), ""
