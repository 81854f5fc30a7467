"""A run's folders on disk: where its files live and what a folder found there means (skip, resume, fresh)."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

from paddle_cnns.errors import UsageError

from .config import RunConfig, Session

DONE = ("finished", "diverged")  # outcomes a sweep does not redo (the same run would diverge again)


@dataclass(frozen=True)
class RunPaths:
    """The files of one run: VisualDL folder, checkpoint folder and what goes in it."""
    logdir: str
    ckpt_dir: str

    def _in(self, name: str) -> str:
        return os.path.join(self.ckpt_dir, name)

    @property
    def config(self) -> str:
        return self._in("config.json")

    @property
    def latest(self) -> str:
        return self._in("latest.pdckpt")

    @property
    def best(self) -> str:
        return self._in("best.pdparams")

    @property
    def final(self) -> str:
        return self._in("final.pdparams")

    @property
    def outcome(self) -> str:
        return self._in("outcome.json")

    @property
    def log(self) -> str:
        return self._in("train.log")

    @property
    def error_log(self) -> str:
        return self._in("error.log")

    def clear(self) -> None:
        """Remove the run's checkpoints and logs (a forced retrain starts from nothing)."""
        for folder in (self.ckpt_dir, self.logdir):
            shutil.rmtree(folder, ignore_errors=True)


def paths_for(cfg: RunConfig, session: Session) -> RunPaths:
    """The run's folders under the session's log and checkpoint roots."""
    return RunPaths(os.path.join(session.logdir, cfg.run_id), os.path.join(session.checkpoint_dir, cfg.run_id))


def read_json(path: str):
    """The file's JSON, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path: str, obj) -> None:
    """Write JSON atomically: a kill leaves the old file or the new one, never half of one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def saved_config(paths: RunPaths) -> RunConfig | None:
    """The settings a run folder was created with, or None for an empty (or foreign) folder."""
    saved = read_json(paths.config)
    try:
        return RunConfig.from_json(saved) if saved else None
    except (TypeError, KeyError):
        return None


def triage(cfg: RunConfig, paths: RunPaths, session: Session) -> str:
    """'skip' (already done), 'resume', 'fresh' or 'force'; UsageError when the folder conflicts."""
    if session.force:
        return "force"
    saved = read_json(paths.config)
    if saved is None:
        return "fresh"
    mine = cfg.identity()
    if {k: v for k, v in saved.items() if k != "data_dir"} != mine:
        changed = sorted(k for k in set(mine) | set(saved) - {"data_dir"} if saved.get(k) != mine.get(k))
        raise UsageError(f"{paths.ckpt_dir} holds a run with other settings ({', '.join(changed)}); "
                         "pass --tag NAME to keep both, or --force to replace it")
    outcome = read_json(paths.outcome) or {}
    if outcome.get("status") in DONE:
        return "skip"
    if os.path.exists(paths.latest):
        if not session.resume:
            raise UsageError(f"run {cfg.run_id} stopped before finishing; pass --resume to continue it "
                             "or --force to start it over")
        return "resume"
    return "fresh"
