"""A run's checkpoint set: each epoch's files committed together, and a resumed run's starting point."""
from __future__ import annotations

import os
import time
import uuid

import paddle

from paddle_cnns import checkpoint
from paddle_cnns.engine import TrainState

from . import faults
from .config import RunConfig
from .runfolder import BEST, FINAL, LATEST, RunPaths


class CheckpointSink:
    """After each epoch: the resumable checkpoint and, when the epoch is the best, the best weights,
    committed together (paddle_cnns.checkpoint): after a kill both are the same epoch's."""

    def __init__(self, job, paths: RunPaths, state: TrainState, cfg: RunConfig, attempt: str,
                 manifest: dict | None = None, started: float | None = None):
        self.job, self.paths, self.state, self.cfg = job, paths, state, cfg
        self.files = dict(manifest["files"]) if manifest else {}
        self.info = {"run_id": cfg.run_id, "attempt": attempt}
        self.meta = {"run_id": cfg.run_id, "config": cfg.identity(), "attempt": attempt}
        # Wall time of the earlier attempts up to their last commit, so that a resumed run's
        # wall_time_s counts all its attempts (checkpoints written before this have none: 0).
        self.wall_before = float((manifest or {}).get("wall_time_s") or 0.0)
        self.started = time.time() if started is None else started

    def wall_time(self) -> float:
        """Seconds this run has taken so far, over all its attempts (each up to its last commit)."""
        return self.wall_before + time.time() - self.started

    def _stage(self, name: str, obj) -> dict:
        return {name: checkpoint.stage(self.paths.ckpt_dir, name, obj)}

    def _commit(self, files: dict, point: str | None = None) -> None:
        s = self.state
        manifest = checkpoint.commit(self.paths.ckpt_dir, files, {**self.info, "epoch": s.epoch,
                                                                   "global_step": s.global_step,
                                                                   "wall_time_s": round(self.wall_time(), 3)})
        if point:
            faults.hit(point, s.epoch)
        checkpoint.apply(self.paths.ckpt_dir, manifest)
        self.files = files

    def _latest(self) -> dict:
        j = self.job
        return self._stage(LATEST, checkpoint.checkpoint_state(j.model, j.optimizer, j.scheduler, self.state,
                                                               self.cfg.seed, self.meta))

    def save(self) -> None:
        """The resumable checkpoint alone (a stop mid-epoch)."""
        self._commit({**self.files, **self._latest()})

    def __call__(self, row: dict) -> None:
        staged = self._latest()
        faults.hit("between_checkpoint_writes", row["epoch"])
        if self.state.best_epoch == row["epoch"]:
            staged.update(self._stage(BEST, self.job.model.state_dict()))
        self._commit({**self.files, **staged}, "after_checkpoint_commit")

    def save_final(self) -> None:
        self._commit({**self.files, **self._stage(FINAL, self.job.model.state_dict())})

    def best_weights(self) -> dict:
        """The best epoch's weights, checked against the manifest."""
        return paddle.load(checkpoint.verified_path(self.paths.ckpt_dir, BEST, {"files": self.files}))

    def drop_latest(self) -> None:
        """Done: the optimizer state is of no further use and doubles the disk a run takes (0.5 GB
        for a trick CNN at 32 px). final.pdparams and best.pdparams stay."""
        self._commit({k: v for k, v in self.files.items() if k != LATEST})
        if os.path.exists(self.paths.latest):
            os.remove(self.paths.latest)


def start(cfg: RunConfig, paths: RunPaths, mode: str, job) -> tuple:
    """(state, attempt, manifest) of a fresh run, or of a resumed one as its checkpoint left it."""
    if mode != "resume":
        return TrainState(), uuid.uuid4().hex[:12], None
    manifest = checkpoint.recover(paths.ckpt_dir, (LATEST, BEST))
    ckpt = checkpoint.load_checkpoint(checkpoint.verified_path(paths.ckpt_dir, LATEST, manifest))
    state = checkpoint.restore(ckpt, job.model, job.optimizer, job.scheduler)
    print(f"{cfg.run_id}: resuming after epoch {state.epoch} step {state.step_in_epoch}", flush=True)
    attempt = manifest.get("attempt") or ckpt.get("meta", {}).get("attempt") or uuid.uuid4().hex[:12]
    return state, attempt, manifest
