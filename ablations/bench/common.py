"""What the benchmarks share: worker processes, interleaved timing, GEMM peak, peak RSS, CSV and Markdown.

On a shared 2-core machine absolute timings drift by 2x between minutes, so every comparison
is a ratio of medians taken in one run: each system lives in its own worker process (so its
peak RSS is its own), and repetitions take turns (A B C, A B C, ...) so slow spells hit all
systems alike. Imports neither paddle nor torch at the top: a torch worker must not load paddle.
"""
from __future__ import annotations
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = "bench"  # git-ignored


# ---------------------------------------------------------------- inside a worker

def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def serve(handlers: dict) -> None:
    """A worker's main loop: one JSON request per stdin line, one JSON reply per stdout line.

    A request is {"cmd": name, **arguments}; the reply is the handler's dict, or {"error": text}.
    Anything else the libraries print goes to stderr, never into the reply channel.
    """
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt replies
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "quit":
            break
        try:
            reply = handlers[cmd](**request)
        except Exception as e:  # reported to the coordinator, which fails with it
            import traceback
            reply = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")


class WorkerError(RuntimeError):
    pass


class Worker:
    """A benchmark worker process (`python -m module --worker`) spoken to in JSON lines."""

    def __init__(self, name: str, module: str, python: str = sys.executable, env: dict | None = None):
        self.name = name
        full_env = {**os.environ, "GLOG_minloglevel": "2", "PYTHONWARNINGS": "ignore", **(env or {})}
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        full_env["PYTHONPATH"] = root + os.pathsep + full_env.get("PYTHONPATH", "")
        # stderr to a file, not a pipe: a chatty library must never block on a full pipe.
        self._log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([python, "-m", module, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     env=full_env, cwd=root)

    def call(self, cmd: str, **args) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.proc.wait()
            self._log.seek(0)
            err = self._log.read()
            raise WorkerError(f"{self.name} worker died (exit {self.proc.returncode}): {err.strip()[-2000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{self.name} worker: {reply['error']}\n{reply.get('traceback', '')}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def python_has(python: str, module: str) -> bool:
    """Whether `python` can import `module` (checked in a subprocess, nothing loaded here)."""
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------- timing

def interleave(systems: dict, reps: int, warmup: int = 1, settle: float = 0.3) -> dict[str, list[float]]:
    """Run each callable in turn, `reps` rounds after `warmup` rounds; seconds per call by name.

    Each callable returns the seconds it measured itself (inside its worker, so the pipe's
    latency is not counted). The order rotates every round so no system always runs first.
    `settle` seconds pass between calls: OpenMP threads of the worker that just finished keep
    spinning for up to 200 ms (Intel OpenMP's KMP_BLOCKTIME) and would slow the next one.
    """
    names = list(systems)
    times = {n: [] for n in names}
    for r in range(warmup + reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            time.sleep(settle)
            t = systems[n]()
            if r >= warmup:
                times[n].append(t)
    return times


def median(values):
    return statistics.median(values) if values else float("nan")


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def gemm_peak_gflops(threads: int, size: int = 2048, reps: int = 15) -> float:
    """Best fp32 GEMM rate of paddle.matmul (n x n x n) with `threads` threads, in GFLOP/s."""
    import paddle

    from paddle_cnns.runtime import set_threads
    set_threads(threads)
    a, b = paddle.randn([size, size]), paddle.randn([size, size])
    paddle.matmul(a, b)
    best = min(timed(lambda: paddle.matmul(a, b).numpy()) for _ in range(reps))
    return 2 * size**3 / best / 1e9


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from paddle_cnns.runtime import available_cores
    return {"cpu": cpu, "cores": available_cores(), "python": platform.python_version()}


# ---------------------------------------------------------------- output

def write_csv(rows: list[dict], path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, int]]) -> str:
    """columns: (header, key, digits)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k), d) for _, k, d in columns) + " |")
    return "\n".join(lines)


def write_text(text: str, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
