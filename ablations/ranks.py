"""Data parallelism: what the ranks other than 0 do in a run. They train alongside rank 0 and write nothing."""
from __future__ import annotations

from dataclasses import replace

from paddle_cnns import checkpoint
from paddle_cnns.distributed import SINGLE
from paddle_cnns.engine import TrainState

from . import predictions, trainer
from .checkpoints import CheckpointSink
from .config import RunConfig
from .console import StopFlag
from .runfolder import LATEST, RunPaths


def follow(cfg: RunConfig, job, paths: RunPaths, mode: str, stop: StopFlag) -> dict:
    """A data-parallel rank other than 0: resume from rank 0's checkpoint (committed by rank 0
    before the ranks agreed on the mode), train and evaluate alongside it, write nothing."""
    state = TrainState()
    if mode == "resume":
        manifest = checkpoint.read_manifest(paths.ckpt_dir)
        latest = checkpoint.verified_path(paths.ckpt_dir, LATEST, manifest) if manifest else paths.latest
        state = checkpoint.restore(checkpoint.load_checkpoint(latest), job.model, job.optimizer, job.scheduler)
    checkpoints = CheckpointSink(job, paths, state, cfg, "")  # never written: train() saves on rank 0 alone
    status, error = trainer.train(cfg, job, state, stop, checkpoints, [])
    test = trainer.test_metrics(cfg, job, checkpoints) if status == "finished" else {}
    if status == "finished":  # the pass rank 0 makes for its per-image predictions, so that no rank
        # waits on a collective (gloo gives up after 30 s) while rank 0 alone computes
        predictions.predict(job.model, replace(job, world=SINGLE).loader(getattr(job.bundle, test["split"]), cfg))
    return {"run_id": cfg.run_id, "status": status, "error": error, "best_eval_acc": state.best_eval_acc,
            "test_acc": test.get("acc")}
