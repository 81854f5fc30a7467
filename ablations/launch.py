"""`python -m ablations.run --nproc-per-node N ...`: the same command under paddle.distributed.launch.

The shorthand starts paddle's launcher with N processes on this machine, each running
`python -m ablations.run` with the other flags, shows rank 0's output without the launcher's own
lines, and turns a failed rank into one line (the launcher's logs keep the details).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

try:
    import fcntl
except ImportError:  # Windows, where paddle has no gloo either
    fcntl = None

LAUNCH_LOGS = "launch"  # the launcher's logs (workerlog.N per rank), under --checkpoint-dir
# Lines of the launcher and of paddle's start-up banner (paddle 3 lists the FLAGS the launcher set).
NOISE = ("Container rank", "=====", "FLAGS(name=")
PEER_LOST = "another process of this run stopped"  # in the error line of a rank that outlived a peer


def strip_flag(argv: list, flag: str) -> list:
    """argv without `flag` and its value (given as '--flag V' or '--flag=V')."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def launcher_argv(argv: list, nproc: int, log_dir: str, devices: str | None = None) -> list:
    """paddle.distributed.launch running `python -m ablations.run argv` in `nproc` processes."""
    launcher = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
                "--log_dir", log_dir]
    if devices:
        launcher += ["--devices", devices]
    # A training script that is not a .py file is run as a command: this interpreter, -m.
    return launcher + [sys.executable, "-m", "ablations.run", *strip_flag(argv, "--nproc-per-node")]


def _log_tails(log_dir: str, nproc: int, offsets: dict) -> dict:
    """What each local rank wrote to its launcher log (workerlog.N) during this launch."""
    tails = {}
    for rank in range(nproc):
        try:
            with open(os.path.join(log_dir, f"workerlog.{rank}"), errors="replace") as f:
                f.seek(offsets.get(rank, 0))
                tails[rank] = f.read()
        except OSError:
            tails[rank] = ""
    return tails


def _offsets(log_dir: str, nproc: int) -> dict:
    """Sizes of the launcher logs before a launch (it appends to them)."""
    sizes = {}
    for rank in range(nproc):
        path = os.path.join(log_dir, f"workerlog.{rank}")
        sizes[rank] = os.path.getsize(path) if os.path.exists(path) else 0
    return sizes


def failure_line(tails: dict, nproc: int, log_dir: str) -> str:
    """One line naming the rank(s) that stopped first: the ones whose logs do not say a peer was lost."""
    first = [r for r, text in sorted(tails.items()) if PEER_LOST not in text] or sorted(tails)
    said = []
    for rank in first:
        errors = [line for line in tails[rank].splitlines() if line.startswith("error:")]
        said.append(f"rank {rank}" + (f" ({errors[-1][len('error:'):].strip()})" if errors else ""))
    return (f"error: {', '.join(said)} of {nproc} stopped and the run stopped with it; its last checkpoint "
            f"is kept - continue with the same command and --resume (logs: {log_dir})")


def supervise(argv: list, nproc: int, log_dir: str, devices: str | None = None) -> int:
    """Run the launcher to the end; its exit code, 130 after Ctrl-C, 1 (and one line) when a rank failed."""
    os.makedirs(log_dir, exist_ok=True)
    offsets = _offsets(log_dir, nproc)
    proc = subprocess.Popen(launcher_argv(argv, nproc, log_dir, devices), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            env={**os.environ, "PYTHONUNBUFFERED": "1",  # paddle's environment: ablations/__init__
                                 "PYTHONWARNINGS": "ignore:No ccache found"})  # the launcher's own paddle import
    # Ctrl-C reaches the launcher too (same process group): it stops the ranks, which save.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupted, in_detail = False, False
    try:
        for line in proc.stdout:
            if line.startswith("LAUNCH"):
                in_detail = "ERROR LOG DETAIL" in line  # a failed rank's log tail follows
                interrupted = interrupted or "Terminating with signal" in line
            elif not in_detail and not line.startswith(NOISE) and not line.startswith("error:"):
                # (a rank's own error line is summed up in the one line printed at the end)
                sys.stdout.write(line)
                sys.stdout.flush()
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("stopped; the last checkpoint is saved - continue with the same command and --resume",
              file=sys.stderr, flush=True)
        return 130
    if code != 0:
        print(failure_line(_log_tails(log_dir, nproc, offsets), nproc, log_dir), file=sys.stderr, flush=True)
        return 1
    return 0


@contextlib.contextmanager
def one_at_a_time(world, folder: str):
    """Data parallelism: the ranks of one machine prepare and cache their data one after another
    (the first builds, the others find it built), before any collective could time out waiting."""
    if not world.parallel or fcntl is None:
        yield
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".data.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
