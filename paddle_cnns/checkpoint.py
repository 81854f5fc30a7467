"""Atomic checkpoints: model, optimizer, LR scheduler, RNG and loop state in one file."""
import os
from dataclasses import asdict

import paddle

from .engine import TrainState
from .errors import CNNsError

FORMAT = 1  # bump when the checkpoint layout changes


def atomic_save(obj, path: str) -> None:
    """paddle.save to a temporary name, fsync, then rename: a kill never leaves a torn file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        paddle.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(path: str, model, optimizer, scheduler, state: TrainState, seed: int,
                    meta: dict) -> None:
    atomic_save({
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        # The RNG state is (seed, global step): fit() reseeds paddle before every step from
        # them (engine.step_seed), so nothing else needs saving to draw the same masks again.
        "rng": {"seed": seed, "global_step": state.global_step},
        "state": asdict(state),
        "meta": meta,
    }, path)


def load_checkpoint(path: str) -> dict:
    try:
        ckpt = paddle.load(path)
    except Exception as e:  # a foreign or damaged file: say which, never a traceback
        raise CNNsError(f"cannot read checkpoint {path} ({type(e).__name__})", fix="restart") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CNNsError(f"checkpoint {path} is from another version of paddle-cnns", fix="restart")
    return ckpt


def restore(ckpt: dict, model, optimizer, scheduler) -> TrainState:
    """Put model, optimizer and scheduler back as saved; return the loop state.

    Build the optimizer (and train) inside `paddle.utils.unique_name.guard()`: its state is
    keyed by generated names such as conv2d_0.w_0_velocity_0, which must come out the same as
    in the process that saved it.
    """
    model.set_state_dict(ckpt["model"])
    optimizer.set_state_dict(ckpt["optimizer"])
    scheduler.set_state_dict(ckpt["scheduler"])
    return TrainState(**ckpt["state"])
