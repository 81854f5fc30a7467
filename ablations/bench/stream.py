"""The streaming loader's images/s with 0, 1, 2 ... workers against training's consumption, and its peak memory.

Run through `python -m ablations.bench data --stream FOLDER` (`--generate N` first writes N
ImageNet-like JPEGs there). Peak memory is sampled every 50 ms as the proportional set size (PSS:
shared pages split between the processes sharing them) of this process plus its loader workers,
for a pass over part of the folder and for a pass over all of it: bounded memory means they agree.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np


def generate_folder(root: str, images: int, classes: int = 10, size=(500, 375), val_every: int = 10) -> str:
    """ImageNet-like train/<class>/*.jpg and val/<class>/*.jpg: smooth colour fields plus noise, JPEG q90.

    ImageNet's photos average about 400 x 350 px; these are 500 x 375, so decoding costs as much.
    """
    from PIL import Image

    yy, xx = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    for i in range(images):
        split = "val" if (i // classes) % val_every == 0 else "train"  # a tenth of each class
        folder = os.path.join(root, split, f"n{i % classes:08d}")
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(i)
        fx, fy, phase = rng.uniform(0.005, 0.03, 2).tolist() + [rng.uniform(0, 6.3)]
        wave = np.sin(xx * fx + yy * fy + phase)[..., None]
        colour = rng.integers(40, 215, 3)[None, None, :]
        pixels = colour + 60 * wave + rng.normal(0, 12, (size[1], size[0], 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return root


class PeakMemory:
    """The largest PSS of a process plus its children seen while the block runs, in MiB."""

    def __init__(self, pid: int | None = None):
        self.pid = pid

    def __enter__(self):
        import psutil

        self.me, self.peak, self.done = psutil.Process(self.pid), 0, threading.Event()
        self._sample()  # a pass shorter than one interval is still measured
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        try:
            procs = [self.me] + self.me.children(recursive=True)
            self.peak = max(self.peak, sum(p.memory_full_info().pss for p in procs))
        except Exception:  # a worker ended between listing and reading: skip this sample
            pass

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            self._sample()

    def __exit__(self, *exc):
        self._sample()
        self.done.set()
        self.thread.join()
        self.mib = self.peak / 2**20


def loader_pass(dataset, batch_size: int, workers: int, batches: int | None) -> dict:
    """Images/s and peak memory of one shuffled pass (the first `batches` batches) through StreamLoader."""
    from paddle_cnns.data.streaming import StreamLoader

    loader = StreamLoader(dataset, batch_size, shuffle=True, seed=0, epoch=1, workers=workers)
    n = 0
    with PeakMemory() as memory:
        start = time.perf_counter()
        for i, (x, _) in enumerate(loader):
            n += int(x.shape[0])
            if batches is not None and i + 1 >= batches:
                break
        seconds = time.perf_counter() - start
    return {"images": n, "rate": n / seconds, "peak_mib": memory.mib}


def training_rate(model_name: str, image_size: int, num_classes: int, batch_size: int, steps: int) -> float:
    """Images/s of training steps (forward, cross-entropy, backward, Momentum) on random batches."""
    import paddle
    import paddle.nn.functional as F

    import paddle_cnns

    paddle.seed(0)
    model = paddle_cnns.create_model(model_name, num_classes=num_classes, image_size=image_size)
    model.train()
    opt = paddle.optimizer.Momentum(learning_rate=0.01, momentum=0.9, parameters=model.parameters())
    x = paddle.randn([batch_size, 3, image_size, image_size])
    y = paddle.randint(0, num_classes, [batch_size])
    times = []
    for step in range(steps + 1):  # the first step (kernel choice, allocation) is not timed
        start = time.perf_counter()
        out = model(x)
        loss = F.cross_entropy(out[0] if isinstance(out, (tuple, list)) else out, y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        float(loss)
        if step:
            times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def measure_pass(folder: str, image_size: int, batch_size: int, workers: int, batches: int | None,
                 threads: int) -> dict:
    """A loader pass in this (fresh worker) process, so that its memory is its own."""
    from paddle_cnns.data import make_datasets
    from paddle_cnns.runtime import set_threads

    set_threads(threads)
    bundle = make_datasets("folder", folder, image_size, augment=True, stream=True)
    return loader_pass(bundle.train, batch_size, workers, batches)


def _in_worker(cmd: str, **args) -> dict:
    """Run one measurement in a fresh worker process."""
    from .common import Worker

    worker = Worker("stream", "ablations.bench.stream")
    try:
        return worker.call(cmd, **args)
    finally:
        worker.close()


def stream_rows(folder: str, image_size: int, batch_size: int, workers: list, batches: int, model: str,
                steps: int, threads: int) -> list[dict]:
    """The benchmark's table rows: each measurement in its own process, one after another."""
    from paddle_cnns.data import decoded_bytes, make_datasets

    bundle = make_datasets("folder", folder, image_size, stream=True)
    n = len(bundle.train)
    decoded = decoded_bytes("folder", folder, image_size)
    rows = [{"metric": f"folder: {n} train + {len(bundle.eval)} val JPEGs", "value": round(decoded / 2**20, 1),
             "unit": "MiB", "target": "", "note": f"what their decoded cache at {image_size} px would take"}]
    common = {"folder": folder, "image_size": image_size, "batch_size": batch_size, "threads": threads}
    parts = {w: _in_worker("pass", workers=w, batches=batches, **common) for w in workers}
    for w, part in parts.items():
        rows.append({"metric": f"streaming loader, {w} worker{'s' if w != 1 else ''}, {image_size} px, batch {batch_size}",
                     "value": round(part["rate"], 1), "unit": "images/s", "target": "",
                     "note": f"{part['images']} images (train augmentation); peak memory {part['peak_mib']:.0f} MiB"})
    most = max(workers)
    full = _in_worker("pass", workers=most, batches=None, **common)
    rows.append({"metric": f"peak memory (PSS, with workers), a pass over all {n} train images, "
                           f"{most} worker{'s' if most != 1 else ''}",
                 "value": round(full["peak_mib"]), "unit": "MiB", "target": "",
                 "note": f"vs {parts[most]['peak_mib']:.0f} MiB for {batches} batches; {full['rate']:.1f} images/s"})
    rate = _in_worker("train", model_name=model, image_size=image_size, num_classes=bundle.num_classes,
                      batch_size=batch_size, steps=steps, threads=threads)["rate"]
    rows.append({"metric": f"training {model}, {image_size} px, batch {batch_size}", "value": round(rate, 1),
                 "unit": "images/s", "target": "", "note": f"{threads} threads, median of {steps} steps"})
    for w, part in parts.items():
        rows.append({"metric": f"loader / training, {w} worker{'s' if w != 1 else ''}",
                     "value": round(part["rate"] / rate, 2), "unit": "x", "target": ">= 1", "note": ""})
    return rows


def _train(threads: int, **args) -> dict:
    from paddle_cnns.runtime import set_threads

    set_threads(threads)
    return {"rate": training_rate(**args)}


if __name__ == "__main__":
    import sys

    from .common import serve

    if sys.argv[1:] == ["--worker"]:
        serve({"pass": measure_pass, "train": _train})
