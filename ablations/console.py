"""What a run shows and hears on the console: progress lines, outcome lines and Ctrl-C."""
from __future__ import annotations

import signal
import sys

from paddle_cnns.engine import TrainState


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


class Progress:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, label: str, epochs: int, steps: int):
        self.label, self.epochs, self.steps = label, epochs, steps
        self.bar = None
        self.tty = sys.stdout.isatty()

    def step(self, state: TrainState) -> None:
        if not self.tty:
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
        print(f"{self.label} epoch {row['epoch']}/{self.epochs}: train loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.3f} | eval loss {row['eval_loss']:.4f} acc {row['eval_acc']:.3f} "
              f"top5 {row['eval_top5']:.3f} | lr {row['lr']:.2g} | {row['epoch_time']:.1f}s "
              f"{row['images_per_s']:.0f} img/s", flush=True)


def describe(o: dict) -> str:
    """One line for a run's outcome."""
    if o.get("status") == "finished":
        acc = "" if o.get("test_acc") is None else f" test acc {o['test_acc']:.3f}"
        again = " (already; --force retrains it)" if o.get("skipped") else ""
        return f"{o['run_id']}: finished{again}, best eval acc {o['best_eval_acc']:.3f}{acc}"
    return f"{o['run_id']}: {o.get('status')}" + (f" - {o['error']}" if o.get("error") else "")
