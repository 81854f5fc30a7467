"""Device and CPU-thread selection, done once at start-up and the same on paddle 2.6 and 3.x."""
from __future__ import annotations
import os

import paddle

from .errors import UsageError


def available_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Use `threads` CPU threads (default: every available core) for paddle's kernels.

    Importing paddle sets OMP_NUM_THREADS=1 and FLAGS_paddle_num_threads=1, so without this a
    2-core machine trains on one core. `core.set_num_threads` is what actually changes the
    OpenMP/MKL pool (setting the flag alone does not); the flag is kept in sync for readers.
    """
    n = available_cores() if threads is None else int(threads)
    if n < 1:
        raise UsageError(f"threads must be at least 1, got {n}", fix="threads")
    paddle.base.core.set_num_threads(n)
    paddle.set_flags({"FLAGS_paddle_num_threads": n})
    # Not exported as OMP_NUM_THREADS: paddle prints a warning at import in every child process
    # that inherits it; workers get their thread count as an argument instead.
    return n


def gpu_available() -> bool:
    """Whether this paddle build is compiled with CUDA and sees a GPU."""
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def set_device(device: str = "auto") -> str:
    """Select 'cpu', 'gpu' (or 'gpu:N'), or 'auto' (the GPU when paddle-gpu sees one); return it."""
    if device == "auto":
        device = "gpu" if gpu_available() else "cpu"
    if device.startswith("gpu") and not gpu_available():
        raise UsageError(f"device {device!r}: this paddle build sees no GPU (install paddlepaddle-gpu)",
                         fix="device")
    if device != "cpu" and not device.startswith("gpu"):
        raise UsageError(f"device must be auto, cpu, gpu or gpu:N, got {device!r}", fix="device")
    paddle.set_device(device)
    return device
