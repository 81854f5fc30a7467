"""python -m ablations.worker CONFIG_JSON SESSION_JSON: one run of a packed sweep, in its own process.

Started by ablations.sweep, never by hand: the run's settings come from the config.json the
parent wrote into the run's checkpoint folder, so nothing is re-parsed from flag strings.
"""
from __future__ import annotations

import json
import sys

from . import cli

cli.prepare_process()  # before paddle is imported

from paddle_cnns import runtime  # noqa: E402

from .config import RunConfig, Session  # noqa: E402
from .console import StopFlag  # noqa: E402
from .runfolder import paths_for, read_json, write_json  # noqa: E402
from .trainer import run_here  # noqa: E402
from paddle_cnns.engine import Interrupted  # noqa: E402


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
