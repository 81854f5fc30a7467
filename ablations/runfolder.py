"""A run's folders on disk: where its files live, who may write them (the run lock) and what a
folder found there means (skip, resume, fresh)."""
from __future__ import annotations

import glob
import json
import os
import shutil
from dataclasses import dataclass

from paddle_cnns.checkpoint import read_manifest
from paddle_cnns.errors import UsageError

from .config import RunConfig, Session
from .results import append_row, recorded_final

try:
    import fcntl
except ImportError:  # Windows (not a target): no run lock
    fcntl = None

DONE = ("finished", "diverged")  # outcomes a sweep does not redo (the same run would diverge again)
LATEST, BEST, FINAL = "latest.pdckpt", "best.pdparams", "final.pdparams"  # the run's checkpoint set
LOCK_NAME = "run.lock"
LOCK_FD_VARIABLE = "PADDLE_CNNS_RUN_LOCK_FD"  # a packed worker inherits its run's lock from the parent


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
        return self._in(LATEST)

    @property
    def best(self) -> str:
        return self._in(BEST)

    @property
    def final(self) -> str:
        return self._in(FINAL)

    @property
    def outcome(self) -> str:
        return self._in("outcome.json")

    @property
    def log(self) -> str:
        return self._in("train.log")

    @property
    def error_log(self) -> str:
        return self._in("error.log")

    @property
    def lock(self) -> str:
        return self._in(LOCK_NAME)

    def clear(self) -> None:
        """Remove the run's checkpoints and logs (a forced retrain starts from nothing); the lock
        file stays, since the process clearing the folder holds it."""
        if os.path.isdir(self.ckpt_dir):
            for name in os.listdir(self.ckpt_dir):
                path = self._in(name)
                if name == LOCK_NAME:
                    continue
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
        shutil.rmtree(self.logdir, ignore_errors=True)

    def remove_temporaries(self) -> list:
        """Delete leftover `*.tmp-PID` files of writes a kill interrupted; call with the run lock held,
        when no other process can be writing here (so a reused PID cannot keep one alive)."""
        stale = glob.glob(os.path.join(glob.escape(self.ckpt_dir), "*.tmp-*"))
        for path in stale:
            os.remove(path)
        return stale


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
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ---------------------------------------------------------------- the run lock

class RunBusy(UsageError):
    """Another process is training this run (it holds the run folder's lock)."""


_HELD: dict = {}  # lock path -> fd, for the locks this process holds


def _holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f" (pid {pid})" if pid.isdigit() else ""


def busy_error(paths: RunPaths) -> RunBusy:
    """The one-line refusal for a run another process holds, naming that process."""
    return RunBusy(f"{paths.ckpt_dir} is being trained by another process{_holder(paths.lock)}; wait for it "
                   "to finish (or stop it) and run the command again")


def is_busy(paths: RunPaths) -> bool:
    """Whether another process holds the run's lock (creates nothing)."""
    if fcntl is None or os.path.abspath(paths.lock) in _HELD or not os.path.exists(paths.lock):
        return False
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm (flags, not a union type)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we just took
    return False


def _inherited(path: str):
    """The fd of this run's lock inherited from a packed sweep's parent, if that is what we got."""
    fd = os.environ.get(LOCK_FD_VARIABLE, "")
    if not fd.isdigit():
        return None
    try:
        mine, theirs = os.fstat(int(fd)), os.stat(path)
    except OSError:
        return None
    return int(fd) if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino) else None


def acquire(paths: RunPaths) -> int | None:
    """Take the run's lock (an exclusive flock on run.lock), or raise RunBusy. Returns its fd.

    The lock is the kernel's: a killed holder releases it, so it is never stale. A packed
    worker adopts the lock its parent took for it (the same open file, inherited).
    """
    if fcntl is None:
        return None
    key = os.path.abspath(paths.lock)
    if key in _HELD:
        return _HELD[key]
    os.makedirs(paths.ckpt_dir, exist_ok=True)
    fd = _inherited(paths.lock)
    if fd is None:
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)  # novm (flags, not a union type)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm (flags, not a union type)
    except OSError:
        os.close(fd)
        raise busy_error(paths) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _HELD[key] = fd
    return fd


def release(paths: RunPaths, handed_over: bool = False) -> None:
    """Release the run's lock; handed_over: only close our copy (a worker we started holds it now)."""
    fd = _HELD.pop(os.path.abspath(paths.lock), None)
    if fd is None:
        return
    if not handed_over:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


# ---------------------------------------------------------------- what a folder means

def saved_config(paths: RunPaths) -> RunConfig | None:
    """The settings a run folder was created with, or None for an empty (or foreign) folder."""
    saved = read_json(paths.config)
    try:
        return RunConfig.from_json(saved) if saved else None
    except (TypeError, KeyError):
        return None


def has_checkpoint(paths: RunPaths) -> bool:
    """Whether the folder's committed set holds a resumable checkpoint."""
    manifest = read_manifest(paths.ckpt_dir)
    if manifest is None:  # a folder written by an earlier paddle-cnns, without a manifest
        return os.path.exists(paths.latest)
    return LATEST in manifest["files"]


def _unknown_fingerprint(saved: dict, mine: dict) -> bool:
    # Before the data is loaded a run's fingerprint is not known yet, and folders of an earlier
    # paddle-cnns never recorded one: compared only when both sides have it.
    return not saved.get("data_fingerprint") or not mine.get("data_fingerprint")


def triage(cfg: RunConfig, paths: RunPaths, session: Session) -> str:
    """'skip' (already done), 'resume', 'fresh' or 'force'; UsageError when the folder conflicts
    (other settings, other data, or another process training it)."""
    if is_busy(paths):
        raise busy_error(paths)
    if session.force:
        return "force"
    saved = read_json(paths.config)
    if saved is None:
        # No folder, but the results store holds this run's final row: its checkpoints were removed
        # (to free space) or never came along (a clone of the results). Training it again would
        # replace the recorded run's curves and predictions, so it counts as done; --force retrains.
        if recorded_final(session.results, cfg.run_id, cfg.identity()) is not None:
            return "skip"
        return "fresh"
    mine = cfg.identity()
    # A setting added after the folder was written (e.g. stream) counts as its default there.
    saved = {**{k: v for k, v in RunConfig.defaults().items() if k in mine and k not in saved}, **saved}
    ignored = {"data_dir"} | ({"data_fingerprint"} if _unknown_fingerprint(saved, mine) else set())
    changed = sorted(k for k in (set(mine) | set(saved)) - ignored if saved.get(k) != mine.get(k))
    if changed:
        what = ", ".join("data: other images or classes" if k == "data_fingerprint" else k for k in changed)
        raise UsageError(f"{paths.ckpt_dir} holds a run with other settings ({what}); "
                         "pass --tag NAME to keep both, or --force to replace it")
    outcome = read_json(paths.outcome) or {}
    if outcome.get("status") in DONE:
        return "skip"
    if has_checkpoint(paths):
        if not session.resume:
            raise UsageError(f"run {cfg.run_id} stopped before finishing; pass --resume to continue it "
                             "or --force to start it over")
        return "resume"
    return "fresh"


def skip_outcome(cfg: RunConfig, paths: RunPaths, session: Session) -> dict:
    """A done run's saved outcome. Its results row goes into the session's store unless it is
    there already: a finished run pointed at a new --results is recorded there too, once. A run
    known only from the store (its folder gone) is described from its row there."""
    outcome = read_json(paths.outcome)
    if outcome is None:
        row = recorded_final(session.results, cfg.run_id, cfg.identity()) or {}
        number = (lambda k: float(row[k]) if row.get(k) else None)
        return {"run_id": cfg.run_id, "status": row.get("status"), "error": row.get("error") or "",
                "attempt": row.get("attempt"), "best_eval_acc": number("best_eval_acc"),
                "test_acc": number("test_acc"), "test_split": row.get("test_split") or None,
                "wall_time_s": number("wall_time_s"), "skipped": True, "recorded": session.results}
    outcome = dict(outcome)
    row = outcome.pop("row", None)
    if row:
        append_row(session.results, row)
    return {**outcome, "skipped": True}
