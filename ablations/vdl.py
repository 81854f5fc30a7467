"""VisualDL logging of one run: shared scalar tags per epoch, hyperparameters and final metrics."""
from __future__ import annotations
import glob
import os
import time

from visualdl import LogReader, LogWriter

from paddle_cnns.errors import CNNsError

from . import faults

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

    VisualDL writes from a thread that only prints a warning when a write fails (a full disk),
    so every flush is checked here: the file must have grown, and at the end it must read back
    with every epoch. A log that could not be written fails the run instead of passing silently.
    """

    def __init__(self, logdir: str, history: list[dict] = ()):
        faults.patch_visualdl()
        os.makedirs(logdir, exist_ok=True)
        old = log_files(logdir)
        # Name the file ourselves: the default name has one-second resolution, and two writers
        # in the same second would share (and interleave) one file.
        name = f"vdlrecords.{time.time_ns()}.log"
        self.path, self.size = os.path.join(logdir, name), 0
        self.epochs = [int(r["epoch"]) for r in history]  # what this file must hold when it is verified
        self.writer = LogWriter(logdir=logdir, file_name=name)
        for row in history:
            self._scalars(row)
        self._flush(bool(history))
        for path in old:
            if os.path.basename(path) != name:
                os.remove(path)

    def _scalars(self, row: dict) -> None:
        walltime = row.get("time")
        for key, tag in SCALAR_TAGS.items():
            if key in row:
                self.writer.add_scalar(tag, float(row[key]), int(row["epoch"]),
                                       walltime=None if walltime is None else int(walltime * 1000))

    def _flush(self, wrote: bool = True) -> None:
        self.writer.flush()  # returns when the writer thread has tried every record
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if wrote and size <= self.size:
            raise CNNsError(f"the VisualDL log {self.path} could not be written (is the disk full?); "
                            "free space, then continue the run with --resume")
        self.size = size

    def verify(self) -> None:
        """Read the file back: every epoch's scalars must be there (a partly written record is not)."""
        epochs = self.epochs
        try:
            steps = [r.id for r in LogReader(file_path=self.path).get_data("scalar", SCALAR_TAGS["train_loss"])]
        except Exception:  # VisualDL's reader raises assorted errors on a damaged file
            steps = None
        if steps != epochs:
            raise CNNsError(f"the VisualDL log {self.path} does not read back (epochs {steps}, expected {epochs}; "
                            "is the disk full?); free space, then continue the run with --resume")

    def __call__(self, row: dict) -> None:
        self._scalars(row)
        self.epochs.append(int(row["epoch"]))
        self._flush()  # a killed run keeps every epoch it finished

    def finish(self, hparams: dict, metrics: dict) -> None:
        # VisualDL's protobuf takes int, float or str; booleans and lists become strings.
        clean = {k: v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v)
                 for k, v in hparams.items()}
        tags = [f"hparam/{m}" for m in HPARAM_METRICS if metrics.get(m) is not None]
        self.writer.add_hparams(clean, tags)
        for tag in tags:
            self.writer.add_scalar(tag, float(metrics[tag.split("/", 1)[1]]), 0)
        self._flush()
        self.verify()

    def close(self) -> None:
        self.writer.close()
