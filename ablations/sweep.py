"""Packed sweeps: several runs at once on a CPU, one worker process each, started from the run's config.json."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from . import cli
from .config import Session
from .console import StopFlag, describe
from .devices import DevicePool, worker_env
from .runfolder import (LOCK_FD_VARIABLE, RunBusy, acquire, paths_for, read_json, release, skip_outcome, triage,
                        write_json)

PARENT_VARIABLE = "PADDLE_CNNS_PARENT_PID"  # a worker stops when this process is gone (worker.py)


def worker_argv(config_path: str, session: Session) -> list:
    """The command that trains the run saved in `config_path` in a worker process."""
    return [sys.executable, "-m", "ablations.worker", config_path, json.dumps(session.to_json(), sort_keys=True)]


def _start_worker(cfg, paths, session: Session, child: Session, device: int | None = None, command=worker_argv):
    """Prepare the run's folder under its lock and start its worker, which inherits the lock.

    None when the run is already done (its outcome then recorded by the caller); RunBusy when
    another process trains it. The lock passes to the worker as an inherited open file, so no
    other process can slip in between this check and the worker's start.
    """
    fd = acquire(paths)
    try:
        if triage(cfg, paths, session) == "skip":
            return None
        if session.force:
            paths.clear()
        os.makedirs(paths.ckpt_dir, exist_ok=True)
        write_json(paths.config, cfg.to_json())
        if os.path.exists(paths.outcome):  # an earlier attempt's 'failed': not this attempt's
            os.remove(paths.outcome)
        log = open(paths.log, "a")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", PARENT_VARIABLE: str(os.getpid()), **worker_env(device)}
        if fd is not None:
            env[LOCK_FD_VARIABLE] = str(fd)
        proc = subprocess.Popen(command(paths.config, child), stdout=log, stderr=subprocess.STDOUT, env=env,
                                pass_fds=() if fd is None else (fd,))
    except BaseException:
        release(paths)
        raise
    release(paths, handed_over=True)
    return proc, log


def run_packed(runs: list, session: Session, jobs: int, stop: StopFlag, devices: list | None = None,
               command=worker_argv) -> list:
    """Train runs `jobs` at a time, one worker process each, with the threads split between them.

    With `devices` (GPU ids), each worker sees one of them as its only GPU (CUDA_VISIBLE_DEVICES),
    the least busy one when it starts. `command(config_path, session)` is the worker's command line.

    Each worker writes its output to train.log in its checkpoint folder and its outcome to
    outcome.json; one failing worker does not stop the others. Skipping finished runs and
    clearing --force'd folders happen here, before a worker (and its log file) exists. Workers
    stop (saving a checkpoint) when this process dies, even by kill -9. A run another process
    is training stops the sweep from starting more: the ones running finish, then RunBusy.
    """
    per_job = max(1, session.threads // jobs)
    # No force for the workers: the parent has already cleared a forced run's folders.
    child = session.replace(threads=per_job, force=False)
    pending, active, outcomes = list(runs), {}, {}
    pool = DevicePool(devices)
    total, started, busy, forwarded = len(runs), 0, None, False
    while pending or active:
        while pending and len(active) < jobs and not stop.requested and busy is None:
            cfg = pending.pop(0)
            paths = paths_for(cfg, session)
            started += 1
            device = pool.acquire()
            try:
                worker = _start_worker(cfg, paths, session, child, device, command)
            except RunBusy as e:
                pool.release(device)
                busy = e
                break
            if worker is None:
                pool.release(device)
                outcomes[cfg.run_id] = skip_outcome(cfg, paths, session)
                print(f"[{started}/{total}] {describe(outcomes[cfg.run_id])}", flush=True)
                continue
            proc, log = worker
            active[proc] = (cfg, paths, log, time.time(), device)
            where = f"GPU {device}, " if device is not None else ""
            print(f"[{started}/{total}] started {cfg.run_id} ({where}{per_job} thread{'s' if per_job > 1 else ''}; "
                  f"log {paths.log})", flush=True)
        if stop.requested or busy is not None:
            pending.clear()
        if stop.requested and not forwarded:
            # A stop sent to this process alone (kill PID, a scheduler's SIGTERM) reaches the workers
            # too; after Ctrl-C they already have their own SIGINT and take this one as a repeat.
            forwarded = True
            for proc in active:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        for proc in [p for p in active if p.poll() is not None]:
            cfg, paths, log, t0, device = active.pop(proc)
            log.close()
            pool.release(device)
            outcome = read_json(paths.outcome) or {}
            if proc.returncode == 130:
                outcome = {"run_id": cfg.run_id, "status": "interrupted", "error": "stopped; --resume continues it"}
            elif outcome.get("status") is None:
                outcome = {"run_id": cfg.run_id, "status": "failed",
                           "error": f"worker exited with code {proc.returncode}; see {paths.log}"}
            outcomes[cfg.run_id] = {k: v for k, v in outcome.items() if k != "row"}
            print(f"[done {len(outcomes)}/{total}] {describe(outcome)} ({time.time() - t0:.0f}s)", flush=True)
    if busy is not None:
        raise busy
    return [outcomes[c.run_id] for c in runs if c.run_id in outcomes]


def sequential(runs: list, session: Session, stop: StopFlag, quiet_single: bool = False) -> list:
    """Train runs one after another in this process; an interrupt propagates after the checkpoint is saved."""
    from .trainer import run_here  # imports paddle: only where runs train in this process

    outcomes = []
    for cfg in runs:
        outcome = run_here(cfg, session, stop)
        outcomes.append(outcome)
        if len(runs) > 1 or outcome["status"] != "finished" or not quiet_single:
            print(describe(outcome), flush=True)
    return outcomes
