"""The one train/eval loop every model shares. It yields plain dicts; callers decide where they go.

Schedules are stated in epochs and stepped per iteration; the loop is resumable at any step
boundary from a TrainState, and it knows nothing about files, VisualDL or pandas.
"""
from __future__ import annotations
import contextlib
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import paddle
import paddle.nn.functional as F

from .errors import UsageError

AUX_WEIGHT = 0.3  # GoogLeNet's auxiliary losses count 0.3 each (Szegedy et al. 2014)


class Diverged(Exception):
    """The loss became NaN or infinite; the model's weights after this step are not usable.

    step None: the training losses were finite but the evaluation after the epoch was not.
    """

    def __init__(self, epoch: int, step: int | None):
        where = f"loss at epoch {epoch} step {step}" if step is not None else f"eval loss after epoch {epoch}"
        super().__init__(f"non-finite {where}")
        self.epoch, self.step = epoch, step


class Interrupted(Exception):
    """A stop was requested (Ctrl-C); the state is consistent at a step boundary."""


class PeerLost(Interrupted):
    """Data parallelism: a collective failed because another rank stopped or stopped answering.

    Raised before the optimizer step of the failed step, so the state is still consistent at the
    last step boundary and is saved and resumed like a Ctrl-C.
    """


def piecewise_decay(lr: float, epochs: int, steps_per_epoch: int, decay_epochs=(), gamma=0.1):
    """LR x gamma after each epoch in `decay_epochs`, converted once to iteration boundaries.

    The scheduler must then be stepped once per batch (paddle.hapi steps some schedulers
    per epoch and some per batch; here it is always per batch, and logged).
    """
    decay_epochs = sorted(decay_epochs)
    if any(not 0 < e < epochs for e in decay_epochs):
        raise UsageError(f"decay epochs must lie strictly between 0 and {epochs}, got {decay_epochs}")
    if not decay_epochs:  # paddle's PiecewiseDecay refuses empty boundaries: a constant schedule
        return paddle.optimizer.lr.PiecewiseDecay([epochs * steps_per_epoch], [lr, lr])
    boundaries = [e * steps_per_epoch for e in decay_epochs]
    return paddle.optimizer.lr.PiecewiseDecay(boundaries, [lr * gamma**i for i in range(len(boundaries) + 1)])


def default_decay_epochs(epochs: int) -> tuple[int, ...]:
    """x0.1 after 50% and 75% of the epochs (rounded half up, distinct, inside the run).

    An entry e means "from epoch e+1 on", as PaddleClas' decay epochs: 60 epochs decay after
    epochs 30 and 45; 5 epochs (the CPU recipe) after 3 and 4.
    """
    points = sorted({math.floor(epochs * 0.5 + 0.5), math.floor(epochs * 0.75 + 0.5)})
    return tuple(p for p in points if 0 < p < epochs)


OPTIMIZERS = ("momentum", "sgd", "adam")


def make_optimizer(name: str, parameters, scheduler, weight_decay: float = 0.0, momentum: float = 0.9):
    """Momentum, SGD or Adam over `parameters`, stepping `scheduler`, with optional L2 weight decay."""
    decay = paddle.regularizer.L2Decay(weight_decay) if weight_decay else None
    if name == "momentum":
        return paddle.optimizer.Momentum(scheduler, momentum=momentum, parameters=parameters,
                                         weight_decay=decay)
    if name == "sgd":
        return paddle.optimizer.SGD(scheduler, parameters=parameters, weight_decay=decay)
    if name == "adam":
        return paddle.optimizer.Adam(scheduler, parameters=parameters, weight_decay=decay)
    raise UsageError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


@dataclass
class TrainState:
    """Everything besides weights, optimizer and RNG that a resumed run needs to continue exactly."""
    epoch: int = 0                      # completed epochs
    step_in_epoch: int = 0              # completed steps of the current epoch
    global_step: int = 0
    best_eval_acc: float = -1.0
    best_epoch: int = 0
    history: list = field(default_factory=list)    # one metrics row per completed epoch
    partial: dict = field(default_factory=dict)    # running sums of the current epoch


def step_seed(seed: int, global_step: int, rank: int | None = None) -> int:
    """The RNG seed of one training step: a function of the run's seed and the step alone.

    Reseeding paddle's generator before every step makes dropout masks independent of what
    ran before in the process, so a resumed run (or a paddle 2.6 install, whose generator state
    does not survive pickling) draws exactly the masks an uninterrupted run draws. Under data
    parallelism each rank adds its rank, so the shards of one batch do not share masks.
    """
    entropy = [seed, global_step] + ([] if rank is None else [rank])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _split_outputs(out):
    if isinstance(out, (tuple, list)):
        return out[0], list(out[1:])
    return out, []


@paddle.no_grad()
def evaluate(model, loader: Iterable, num_classes: int, world=None) -> dict:
    """Loss, top-1, top-5, balanced accuracy, per-class accuracy and confusion matrix.

    With a data-parallel `world`, each rank evaluates the batches its loader gives it (its shard
    of the split) and the counts are summed over the ranks: every rank returns the whole split's metrics.
    """
    model.eval()
    k5 = min(5, num_classes)
    topk = paddle.metric.Accuracy(topk=(1, k5))
    loss_sum, correct1, correct5 = 0.0, 0.0, 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for x, y in loader:
        logits = model(x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        hits = topk.compute(logits, y).numpy()  # B x k5: whether the i-th guess is right
        correct1 += float(hits[:, :1].sum())
        correct5 += float(hits.sum())
        pred = logits.argmax(axis=1).numpy()
        np.add.at(confusion, (y.numpy().reshape(-1), pred), 1)
    if world is not None and world.parallel:
        totals = world.all_sum(np.concatenate([[loss_sum, correct1, correct5], confusion.ravel()]))
        loss_sum, correct1, correct5 = (float(v) for v in totals[:3])
        confusion = np.rint(totals[3:]).astype(np.int64).reshape(num_classes, num_classes)
    n = int(confusion.sum())
    if n == 0:
        raise UsageError("evaluation split is empty")
    support = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(num_classes, np.nan),
                          where=support > 0)
    return {"loss": loss_sum / n, "acc": correct1 / n, "top5": correct5 / n,
            "balanced_acc": float(np.nanmean(per_class)), "per_class_acc": per_class.tolist(),
            "confusion": confusion.tolist(), "n": n}


def fit(model, optimizer, scheduler, train_batches: Callable[[int], Iterable], eval_loader: Iterable,
        epochs: int, num_classes: int, state: TrainState | None = None, *, seed: int = 0,
        amp: bool = False,
        stop_requested: Callable[[], bool] = lambda: False,
        on_step: Callable[[TrainState], None] | None = None, world=None) -> Iterator[dict]:
    """Train until `epochs` are complete, yielding one metrics row per epoch.

    `train_batches(epoch)` returns that epoch's (x, y) batches in a fixed order, so a run
    resumed mid-epoch skips the batches it already trained on. `state` is updated in place
    after every step, so whatever the caller saves between steps resumes exactly.

    With a data-parallel `world` (paddle_cnns.distributed.World), `model` is the DataParallel
    net, `train_batches` gives this rank's shard of each global batch and `eval_loader` its shard
    of the eval split; the rows and the state hold global numbers, the same on every rank.
    """
    state = state or TrainState()
    parallel = world is not None and world.parallel
    scaler = paddle.amp.GradScaler() if amp else None
    while state.epoch < epochs:
        epoch = state.epoch + 1
        model.train()
        p = state.partial or {"loss_sum": 0.0, "correct": 0, "n": 0, "seconds": 0.0}
        state.partial = p
        batches = itertools.islice(iter(train_batches(epoch)), state.step_in_epoch, None)
        lr_at_start = optimizer.get_lr()
        tick = time.perf_counter()
        for x, y in batches:
            paddle.seed(step_seed(seed, state.global_step, world.rank if parallel else None))
            with paddle.amp.auto_cast(enable=amp):
                logits, aux = _split_outputs(model(x))
                main = F.cross_entropy(logits, y)
                loss = main + sum(AUX_WEIGHT * F.cross_entropy(a, y) for a in aux) if aux else main
            b = int(y.shape[0])
            # One host read per step to stop within one step of a divergence. CPU kernels run
            # synchronously, so it costs nothing there; on a GPU it is one small sync.
            main_value = float(main)
            finite = math.isfinite(main_value) and not (aux and not math.isfinite(float(loss)))
            sums = [main_value * b, int((logits.argmax(axis=1) == y).astype("int64").sum()), b]
            stop = False
            if parallel:
                sums, finite, stop, loss = _agree(world, sums, finite, stop_requested(), loss)
            if not finite:
                raise Diverged(epoch, state.step_in_epoch + 1)
            with world.guard("the gradient all-reduce") if parallel else contextlib.nullcontext():
                if scaler is not None:
                    scaled = scaler.scale(loss)
                    scaled.backward()
                    scaler.minimize(optimizer, scaled)
                else:
                    loss.backward()
                    optimizer.step()
            optimizer.clear_grad()
            scheduler.step()
            p["loss_sum"] += sums[0]
            p["correct"] += int(sums[1])
            p["n"] += int(sums[2])
            now = time.perf_counter()
            p["seconds"] += now - tick
            tick = now
            state.step_in_epoch += 1
            state.global_step += 1
            if on_step is not None:
                on_step(state)
            if stop or (not parallel and stop_requested()):
                raise Interrupted()
        if p["n"] == 0:
            raise UsageError("the training split gave no batches; check the dataset and the batch size",
                             fix="batch_size")
        yield _epoch_row(model, eval_loader, num_classes, state, epoch, lr_at_start, world)


def _agree(world, sums: list, finite: bool, stop: bool, loss):
    """Data parallelism: sum the step's numbers over the ranks, so every rank diverges and stops
    at the same step, and weight this rank's loss by its share of the global batch.

    DataParallel averages the ranks' gradients; a shard holding b of the global batch's n
    images then counts b * ranks / n times (exactly 1 when the shards are equal), so the
    gradient is the one of the global batch's mean loss even when the shards differ in size.
    """
    total = world.all_sum([*sums, 0.0 if finite else 1.0, 1.0 if stop else 0.0])
    weight = sums[2] * world.size / total[2]
    if weight != 1.0:
        loss = loss * weight
    return [float(v) for v in total[:3]], bool(total[3] == 0), bool(total[4] > 0), loss


def _epoch_row(model, eval_loader, num_classes: int, state: TrainState, epoch: int, lr: float, world) -> dict:
    """Evaluate, close the epoch in `state` and return its metrics row."""
    p = state.partial
    eval_start = time.perf_counter()
    if world is not None and world.parallel:
        # BatchNorm running statistics are per rank on a CPU (no SyncBatchNorm there): every
        # rank evaluates, and later saves, rank 0's.
        world.broadcast_state(model)
    ev = evaluate(model, eval_loader, num_classes, world)
    if not math.isfinite(ev["loss"]):  # weights that give NaN/inf logits are no better than a NaN step
        raise Diverged(epoch, None)
    row = {
        "epoch": epoch,
        "train_loss": p["loss_sum"] / p["n"], "train_acc": p["correct"] / p["n"],
        "eval_loss": ev["loss"], "eval_acc": ev["acc"], "eval_top5": ev["top5"],
        "eval_balanced_acc": ev["balanced_acc"],
        "lr": lr,
        "epoch_time": p["seconds"], "eval_time": time.perf_counter() - eval_start,
        "images_per_s": p["n"] / p["seconds"] if p["seconds"] > 0 else float("nan"),
    }
    state.epoch, state.step_in_epoch, state.partial = epoch, 0, {}
    state.history.append(row)
    if row["eval_acc"] > state.best_eval_acc:
        state.best_eval_acc, state.best_epoch = row["eval_acc"], epoch
    return row
