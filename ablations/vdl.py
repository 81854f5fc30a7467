"""VisualDL logging of one run: shared scalar tags per epoch, hyperparameters and final metrics."""
from __future__ import annotations
import glob
import os
import time

from visualdl import LogWriter

# Epoch-row key -> VisualDL tag. The same tags in every run, so VisualDL overlays runs.
SCALAR_TAGS = {
    "train_loss": "train/loss", "train_acc": "train/acc",
    "eval_loss": "eval/loss", "eval_acc": "eval/acc", "eval_top5": "eval/top5",
    "eval_balanced_acc": "eval/balanced_acc",
    "lr": "lr", "epoch_time": "time/epoch_s", "images_per_s": "time/images_per_s",
}
# Final metrics shown in VisualDL's HParams view (logged as scalars at step 0).
HPARAM_METRICS = ("best_eval_acc", "final_eval_acc", "test_acc", "test_top5", "train_time_s")


def log_files(logdir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(logdir, "vdlrecords.*")))


class VisualDLSink:
    """Writes one run's scalars. A resumed run re-logs its history into a fresh file.

    VisualDL shows only the newest vdlrecords file of a folder, so a resumed run cannot simply
    start a second file. Instead it writes the full history (kept in the checkpoint, with the
    original wall times) into a new file and removes the older ones, whose content it repeats:
    the run's curves stay one continuous history.
    """

    def __init__(self, logdir: str, history: list[dict] = ()):
        os.makedirs(logdir, exist_ok=True)
        old = log_files(logdir)
        # Name the file ourselves: the default name has one-second resolution, and two writers
        # in the same second would share (and interleave) one file.
        name = f"vdlrecords.{time.time_ns()}.log"
        self.writer = LogWriter(logdir=logdir, file_name=name)
        for row in history:
            self._scalars(row)
        self.writer.flush()
        for path in old:
            if os.path.basename(path) != name:
                os.remove(path)

    def _scalars(self, row: dict) -> None:
        walltime = row.get("time")
        for key, tag in SCALAR_TAGS.items():
            if key in row:
                self.writer.add_scalar(tag, float(row[key]), int(row["epoch"]),
                                       walltime=None if walltime is None else int(walltime * 1000))

    def __call__(self, row: dict) -> None:
        self._scalars(row)
        self.writer.flush()  # a killed run keeps every epoch it finished

    def finish(self, hparams: dict, metrics: dict) -> None:
        # VisualDL's protobuf takes int, float or str; booleans and lists become strings.
        clean = {k: v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v)
                 for k, v in hparams.items()}
        tags = [f"hparam/{m}" for m in HPARAM_METRICS if metrics.get(m) is not None]
        self.writer.add_hparams(clean, tags)
        for tag in tags:
            self.writer.add_scalar(tag, float(metrics[tag.split("/", 1)[1]]), 0)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
