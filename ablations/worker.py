"""python -m ablations.worker CONFIG_JSON SESSION_JSON: one run of a packed sweep, in its own process.

Started by ablations.sweep, never by hand: the run's settings come from the config.json the
parent wrote into the run's checkpoint folder, so nothing is re-parsed from flag strings.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time

from . import cli

cli.paddle_environment("train")  # before paddle is imported: runs train through oneDNN

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Stop (SIGTERM: saved at the next step, exit 130) when the sweep's parent dies, even by kill -9.

    A re-parented worker would otherwise train on, and the next --resume would start a second
    one on the same folder. Linux delivers the signal itself (prctl PR_SET_PDEATHSIG); elsewhere
    a thread polls the parent's pid. A parent already gone before this ran is caught either way.
    """
    parent = os.environ.get("PADDLE_CNNS_PARENT_PID", "")
    if not parent.isdigit():
        return  # started by hand (or by an older parent)
    try:
        armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != int(parent):
        os._exit(130)

    def watch():
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
    if not armed:
        threading.Thread(target=watch, daemon=True).start()


die_with_parent()

from paddle_cnns import runtime

from .config import RunConfig, Session
from .console import StopFlag
from .runfolder import paths_for, read_json, write_json
from .trainer import run_here
from paddle_cnns.engine import Interrupted


@cli.main_guard
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        cli.fail("usage: python -m ablations.worker CONFIG_JSON SESSION_JSON (started by ablations.run)")
    saved = read_json(argv[0])
    if saved is None:
        cli.fail(f"cannot read the run's config {argv[0]}")
    cfg, session = RunConfig.from_json(saved), Session(**json.loads(argv[1]))
    runtime.set_device(session.device)
    runtime.set_threads(session.threads)
    stop = StopFlag().install()
    try:
        outcome = run_here(cfg, session, stop)
    except (Interrupted, KeyboardInterrupt):
        print("stopped; the last checkpoint is saved", file=sys.stderr, flush=True)
        return 130
    if outcome["status"] == "failed":  # finished and diverged runs wrote theirs already
        write_json(paths_for(cfg, session).outcome, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
