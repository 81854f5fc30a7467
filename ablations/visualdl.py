"""python -m ablations.visualdl: VisualDL on the runs' logs, opened at the curves, stopped cleanly.

examples:
    python -m ablations.visualdl                          # logs/ at http://localhost:8040/app/scalar
    python -m ablations.visualdl --logdir reports/logs --port 8041

It starts VisualDL in its own process group, waits until it answers, prints the address of the
scalar (curves) page - VisualDL's front page opens another view - and stays in the foreground.
Ctrl-C, or `kill PID` with the PID it prints, stops the server and everything it started, and
the port is free again when it returns.
"""
from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from . import cli

SCALAR_PAGE = "/app/scalar"
# VisualDL's own entry point, run by this Python (a venv's visualdl without relying on PATH).
# --language en: VisualDL 2.5.3's page answers HTTP 500 under Werkzeug 3 without it.
SERVER = "import sys; from visualdl.server.app import main; sys.argv[0] = 'visualdl'; sys.exit(main())"
START_TIMEOUT = 120.0  # seconds; VisualDL reads every log before it answers


def build_parser() -> cli.Parser:
    p = cli.Parser(prog="python -m ablations.visualdl", description=__doc__)
    p.add_argument("--logdir", default="logs", metavar="DIR", help="the runs' VisualDL logs (ablations.run --logdir)")
    p.add_argument("--port", type=int, default=8040, help="the port to serve on")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to serve on; 0.0.0.0 serves other machines too (e.g. a notebook's proxy)")
    return p


def server_argv(logdir: str, host: str, port: int) -> list:
    """The command that runs VisualDL's server on logdir."""
    return [sys.executable, "-c", SERVER, "--logdir", logdir, "--host", host, "--port", str(port), "--language", "en"]


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1" if host in ("0.0.0.0", "") else host, port)) == 0


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local server: never via a proxy


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2):
            return True
    except OSError:
        return False


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the server and every process it started (its process group); SIGKILL after `grace` s."""
    if proc.poll() is not None:
        return
    group = hasattr(os, "killpg")
    try:
        os.killpg(proc.pid, signal.SIGTERM) if group else proc.terminate()
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


def _wait_until_live(proc: subprocess.Popen, base: str, output) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(base + "/app/api/runs"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            output.seek(0)
            tail = output.read().decode(errors="replace").strip().splitlines()[-3:]
            cli.fail("VisualDL did not start" + (f": {' | '.join(tail)}" if tail else ""))
        time.sleep(0.3)


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs = {os.path.dirname(p) for p in glob.glob(os.path.join(glob.escape(args.logdir), "**", "vdlrecords.*"),
                                                  recursive=True)}
    if not runs:
        cli.fail(f"no VisualDL logs under {args.logdir}; train first (python -m ablations.run ...) or pass "
                 "--logdir DIR")
    if port_taken(args.host, args.port):
        cli.fail(f"port {args.port} is in use (an earlier VisualDL still running?); stop it, or pass --port N")
    base = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"
    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), request_stop)
    with tempfile.TemporaryFile() as output:  # VisualDL's own chatter; shown if it fails to start
        proc = subprocess.Popen(server_argv(args.logdir, args.host, args.port), stdout=output,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_until_live(proc, base, output)
            print(f"VisualDL shows {len(runs)} run{'s' if len(runs) != 1 else ''} of {args.logdir} at "
                  f"{base}{SCALAR_PAGE}", flush=True)
            print(f"stop it with Ctrl-C or: kill {os.getpid()}  (this stops the server and frees port {args.port})",
                  flush=True)
            while not stopping and proc.poll() is None:
                time.sleep(0.3)
        finally:
            stop(proc)
    if not stopping:
        cli.fail(f"VisualDL exited with code {proc.returncode}", code=1)
    print("VisualDL stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
