"""Packed sweeps: several runs at once on a CPU, one worker process each, started from the run's config.json."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from . import cli
from .config import Session
from .console import StopFlag, describe
from .devices import DevicePool, worker_env
from .runfolder import paths_for, read_json, triage, write_json


def worker_argv(config_path: str, session: Session) -> list:
    """The command that trains the run saved in `config_path` in a worker process."""
    return [sys.executable, "-m", "ablations.worker", config_path, json.dumps(session.to_json(), sort_keys=True)]


def run_packed(runs: list, session: Session, jobs: int, stop: StopFlag, devices: list | None = None,
               command=worker_argv) -> list:
    """Train runs `jobs` at a time, one worker process each, with the threads split between them.

    With `devices` (GPU ids), each worker sees one of them as its only GPU (CUDA_VISIBLE_DEVICES),
    the least busy one when it starts. `command(config_path, session)` is the worker's command line.

    Each worker writes its output to train.log in its checkpoint folder and its outcome to
    outcome.json; one failing worker does not stop the others. Skipping finished runs and
    clearing --force'd folders happen here, before a worker (and its log file) exists.
    """
    per_job = max(1, session.threads // jobs)
    # No force for the workers: the parent has already cleared a forced run's folders.
    child = session.replace(threads=per_job, force=False)
    pending, active, outcomes = list(runs), {}, {}
    pool = DevicePool(devices)
    total, started = len(runs), 0
    while pending or active:
        while pending and len(active) < jobs and not stop.requested:
            cfg = pending.pop(0)
            paths = paths_for(cfg, session)
            mode = triage(cfg, paths, session)
            started += 1
            if mode == "skip":
                outcomes[cfg.run_id] = {**read_json(paths.outcome), "skipped": True}
                print(f"[{started}/{total}] {describe(outcomes[cfg.run_id])}", flush=True)
                continue
            if mode == "force":
                paths.clear()
            os.makedirs(paths.ckpt_dir, exist_ok=True)
            write_json(paths.config, cfg.to_json())
            if os.path.exists(paths.outcome):  # an earlier attempt's 'failed': not this attempt's
                os.remove(paths.outcome)
            log = open(paths.log, "a")
            device = pool.acquire()
            proc = subprocess.Popen(command(paths.config, child), stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **cli.process_env(), "PYTHONUNBUFFERED": "1",
                                         **worker_env(device)})
            active[proc] = (cfg, paths, log, time.time(), device)
            where = f"GPU {device}, " if device is not None else ""
            print(f"[{started}/{total}] started {cfg.run_id} ({where}{per_job} thread{'s' if per_job > 1 else ''}; "
                  f"log {paths.log})", flush=True)
        if stop.requested:
            pending.clear()
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
            outcomes[cfg.run_id] = outcome
            print(f"[done {len(outcomes)}/{total}] {describe(outcome)} ({time.time() - t0:.0f}s)", flush=True)
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
