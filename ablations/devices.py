"""Which GPU each packed worker of a sweep gets: one run per GPU (more when --jobs asks), none on a CPU."""
from __future__ import annotations

from paddle_cnns.errors import UsageError


def parse_devices(text: str | None, available: int) -> list[int]:
    """GPU ids from '0,2' (each once, each below `available`); every GPU when text is None."""
    if text is None:
        return list(range(available))
    try:
        ids = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--devices takes GPU ids such as 0,1, got {text!r}") from None
    if not ids or len(set(ids)) != len(ids):
        raise UsageError(f"--devices takes distinct GPU ids such as 0,1, got {text!r}")
    bad = [i for i in ids if not 0 <= i < available]
    if bad:
        seen = f"GPUs 0-{available - 1}" if available else "no GPU"
        raise UsageError(f"--devices {text}: this machine has {seen}")
    return ids


class DevicePool:
    """Hands out devices to workers: the least busy first, ties to the first listed.

    With one worker per device (the default --jobs on a GPU machine) each worker has a GPU to
    itself; with more workers than devices they share round robin. No devices (a CPU): None.
    """

    def __init__(self, devices: list[int] | None):
        self.load = {d: 0 for d in devices or []}

    def acquire(self) -> int | None:
        """A device for a starting worker (None on a CPU)."""
        if not self.load:
            return None
        device = min(self.load, key=lambda d: (self.load[d], list(self.load).index(d)))
        self.load[device] += 1
        return device

    def release(self, device: int | None) -> None:
        """The worker on `device` has ended."""
        if device is not None:
            self.load[device] -= 1


def worker_env(device: int | None) -> dict:
    """The environment that shows a worker its one GPU (as gpu:0); nothing on a CPU."""
    if device is None:
        return {}
    return {"CUDA_VISIBLE_DEVICES": str(device)}


def gpus_for(devices: str | None, on_gpu: bool, data_parallel: bool) -> list:
    """The GPUs a sweep's workers take (--devices, else all); none on a CPU, and none for a
    data-parallel rank (the launcher gave it its GPU)."""
    if not on_gpu:
        if devices is not None:
            raise UsageError("--devices chooses GPUs, and this paddle sees none")
        return []
    if data_parallel:
        return []
    import paddle

    return parse_devices(devices, paddle.device.cuda.device_count())


def jobs_for(jobs: int | None, runs: int, threads: int, gpus: list, data_parallel: bool) -> int:
    """Runs at once: --jobs, else one per GPU, else one per core for several runs on a CPU."""
    if data_parallel and (jobs or 1) > 1:
        raise UsageError("--jobs packs several runs side by side, while data parallelism gives each run every "
                         "process: use one of them")
    if jobs or data_parallel or runs == 1:
        return jobs or 1
    return min(runs, len(gpus)) if gpus else min(runs, threads)


def placement(args, runs: int, world, device: str, launching: bool) -> tuple:
    """(device, threads, gpus, jobs) of this process, set in paddle: a data-parallel rank gets its
    own GPU (the launcher's choice) or its share of the cores; a sweep its GPUs and workers."""
    from paddle_cnns import distributed, runtime

    on_gpu = device.startswith("gpu")
    cores = max(1, runtime.available_cores() // world.local_size)
    threads = runtime.set_threads(args.threads or (cores if world.parallel else None))
    gpus = gpus_for(args.devices, on_gpu, world.parallel)
    jobs = jobs_for(args.jobs, runs, threads, gpus, launching or world.parallel)
    if world.parallel:
        device = runtime.set_device(distributed.device_for(world, on_gpu))
    elif on_gpu and gpus and jobs == 1:
        device = runtime.set_device(f"gpu:{gpus[0]}")
    return device, threads, gpus, jobs
