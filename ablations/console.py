"""What a run shows and hears on the console: progress lines, outcome lines and Ctrl-C."""
from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: this module must not import paddle (ablations.prepare uses it)
    from paddle_cnns.engine import TrainState

# Without a terminal (a log file, a pipe, a packed worker's train.log) long steps print one plain
# line at their start and then one every PROGRESS_EVERY seconds; on a terminal a tqdm bar moves.
PROGRESS_EVERY = 30.0


def _is_tty(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class StopFlag:
    """Ctrl-C asks the loop to stop at the next step boundary; a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> "StopFlag":
        def handler(signum, frame):
            # Only a second Ctrl-C stops at once: paddle.distributed.launch asks its ranks to stop
            # with up to three SIGTERMs 0.2 s apart, and they must still save their checkpoint.
            if self.requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            if self.requested:
                return
            self.requested = True
            print("\nstopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        return self


def _amount(done: float, total: float, unit: str) -> str:
    """'12 of 132 MB (9%)', '1,200 of 3,593 images (33%)'; '12 MB so far' when the total is unknown."""
    scale, unit = (1e6, "MB") if unit == "B" else (1, unit)
    if not total:
        return f"{done / scale:,.0f} {unit} so far".replace("  ", " ")
    return f"{done / scale:,.0f} of {total / scale:,.0f} {unit} ({100 * done / total:.0f}%)".replace("  ", " ")


class Ticker:
    """The console end of the library's progress callbacks, progress(stage, done, total, unit).

    On a terminal: a tqdm bar per stage. Otherwise a stage that lasts prints a line after `first`
    seconds, then at most one every `every` seconds: a 10 s step prints one or two lines, an
    hour-long one stays readable, and quick ones (a small cache) print none.
    """

    def __init__(self, prefix: str = "", every: float | None = None, first: float = 1.0, stream=None):
        self.prefix, self.stream = prefix, stream or sys.stdout
        self.every = PROGRESS_EVERY if every is None else every
        self.first = min(first, self.every)
        self.tty = _is_tty(self.stream)
        self.stage, self.bar, self.next = None, None, 0.0

    def __call__(self, stage: str, done: int, total: int, unit: str = "") -> None:
        now = time.monotonic()
        if stage != self.stage:
            self.close()
            self.stage, self.next = stage, now + self.first
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=f"{self.prefix}{stage}", unit=unit or "it", leave=False,
                                unit_scale=unit == "B", file=self.stream)
            self.bar.update(done - self.bar.n)
        elif now >= self.next:
            self.next = now + self.every
            print(f"{self.prefix}{stage}: {_amount(done, total, unit)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Progress:
    """A tqdm bar per epoch on a terminal; otherwise a line when training starts, one every
    PROGRESS_EVERY seconds within an epoch, and one per finished epoch."""

    def __init__(self, label: str, epochs: int, steps: int, every: float | None = None):
        self.label, self.epochs, self.steps = label, epochs, steps
        self.every = PROGRESS_EVERY if every is None else every
        self.bar = None
        self.tty = _is_tty(sys.stdout)
        self.last = None  # when the last plain line was printed

    def step(self, state: TrainState) -> None:
        if not self.tty:
            now = time.monotonic()
            if self.last is None or now - self.last >= self.every:
                self.last = now
                print(f"{self.label} epoch {state.epoch + 1}/{self.epochs}: step {state.step_in_epoch}/{self.steps}",
                      flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.steps, initial=state.step_in_epoch - 1, leave=False,
                            desc=f"{self.label} epoch {state.epoch + 1}/{self.epochs}")
        self.bar.update(1)

    def __call__(self, row: dict) -> None:
        """The epoch's line (a sink of the train loop's rows)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.last is not None:
            self.last = time.monotonic()
        print(f"{self.label} epoch {row['epoch']}/{self.epochs}: train loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.3f} | eval loss {row['eval_loss']:.4f} acc {row['eval_acc']:.3f} "
              f"top5 {row['eval_top5']:.3f} | lr {row['lr']:.2g} | {row['epoch_time']:.1f}s "
              f"{row['images_per_s']:.0f} img/s", flush=True)


def describe(o: dict) -> str:
    """One line for a run's outcome. The final score names its split: a dataset without a test split
    is scored on its eval split, and the line must not call that a test accuracy."""
    recorded = (f" (already: recorded in {o['recorded']}, its checkpoint folder is gone; --force retrains it)"
                if o.get("recorded") else "")
    if o.get("status") == "finished":
        acc = ""
        if o.get("test_acc") is not None:
            split = o.get("test_split") or "test"
            acc = (f", test acc {o['test_acc']:.3f}" if split == "test" else
                   f", {split} acc of the best checkpoint {o['test_acc']:.3f} (no test split)")
        again = recorded or (" (already; --force retrains it)" if o.get("skipped") else "")
        return f"{o['run_id']}: finished{again}, best eval acc {o['best_eval_acc']:.3f}{acc}"
    return f"{o['run_id']}: {o.get('status')}{recorded}" + (f" - {o['error']}" if o.get("error") else "")
