"""Data benchmark: cache build time and size, loader vs training throughput, loader overhead per step.

`python -m ablations.bench data` on prepared Caltech-16 (or `--source ARCHIVE` to prepare it):
  1. builds the decoded cache of every split at each --sizes into a fresh folder: time and size;
  2. loader images/s over the train split at --image-size (batch --batch-size, shuffled, as
     paddle tensors), without and with augmentation; median of --reps passes;
  3. training images/s of --model (forward + cross-entropy + backward + Momentum step);
  4. the time of --steps training steps fed by the loader vs --steps steps on batches made
     beforehand (pure compute), the two kinds of step alternating, --reps times, medians; and
     the time spent inside the loader. A fixed number of steps stands in for an epoch (a full
     Caltech-16 epoch is 39 steps of 64) to keep the run short.
Targets from issue 3: loader >= 10x training images/s; loader-fed steps within 5% of pure compute.

`--stream FOLDER` measures the streaming path instead (ablations/bench/stream.py): images/s of the
paddle.io.DataLoader loader with each of --workers, training's images/s of --stream-model at
--stream-size, and the peak memory of a pass; `--generate N` first writes N ImageNet-like JPEGs
into FOLDER (e.g. under /tmp; never into the repository).
"""
from __future__ import annotations
import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time

from ablations import cli
from ablations.cli import main_guard, quiet_paddle_logs

LOADER_TARGET = 10.0
OVERHEAD_TARGET = 0.05


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m ablations.bench data", description=__doc__)
    p.add_argument("--data-dir", default="data/caltech16", help="prepared Caltech-16 (label lists + images/)")
    p.add_argument("--source", default=None, help="Caltech-101 archive to prepare --data-dir from first, if needed")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="image sizes whose cache build is timed")
    p.add_argument("--image-size", type=int, default=64, help="image size of the loader and training measurements")
    p.add_argument("--model", default="all_tricks", help="model whose training speed is the yardstick")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of the loader and training")
    p.add_argument("--steps", type=int, default=5, help="training steps per timed repetition")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each timing (medians are reported)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for paddle (default: every core)")
    p.add_argument("--cache-root", default=None, help="where the fresh caches are built (default: a temporary "
                                                       "folder under bench/, deleted afterwards)")
    p.add_argument("--csv", default="bench/data.csv", help="where the results are written")
    p.add_argument("--stream", metavar="FOLDER", help="measure the streaming loader on this ImageNet-style folder")
    p.add_argument("--generate", type=int, metavar="N", help="with --stream: first write N generated JPEGs there")
    p.add_argument("--workers", default="0,1,2", help="with --stream: loader worker counts to measure")
    p.add_argument("--stream-size", type=int, default=224, help="with --stream: image size")
    p.add_argument("--stream-model", default="googlenet_bn", help="with --stream: model whose training is the yardstick")
    p.add_argument("--stream-batches", type=int, default=10, help="with --stream: batches per timed loader pass")
    return p


def stream_main(args, threads: int) -> list[dict]:
    from . import stream

    if args.generate:
        stream.generate_folder(args.stream, args.generate)
    workers = [int(w) for w in args.workers.split(",")]
    return stream.stream_rows(args.stream, args.stream_size, args.batch_size, workers, args.stream_batches,
                              args.stream_model, args.steps, threads)


def _dir_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if n.endswith(".npy"))


def time_cache_builds(data_dir, sizes, cache_root) -> list[dict]:
    from paddle_cnns.data import make_datasets

    rows = []
    for size in sizes:
        folder = os.path.join(cache_root, f"{size}px")
        start = time.perf_counter()
        bundle = make_datasets("caltech16", data_dir, image_size=size, cache_dir=folder)
        build = time.perf_counter() - start
        assert all(m["built"] for m in bundle.info["cache"].values())
        start = time.perf_counter()
        make_datasets("caltech16", data_dir, image_size=size, cache_dir=folder)
        reload = time.perf_counter() - start
        images = sum(bundle.info["splits"].values())
        rows.append({"size": size, "images": images, "build_s": build, "bytes": _dir_bytes(folder),
                     "reload_s": reload})
    return rows


def loader_rate(dataset, batch_size, reps) -> float:
    """Median images/s of a full shuffled pass over dataset through make_loader (tensors included)."""
    from paddle_cnns.data import make_loader

    rates = []
    for rep in range(reps):
        loader = make_loader(dataset, batch_size, shuffle=True, seed=0, epoch=rep)
        start = time.perf_counter()
        n = sum(int(x.shape[0]) for x, _ in loader)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def time_training(train_set, model_name, image_size, num_classes, batch_size, steps, reps) -> dict:
    """Seconds for `steps` steps fed by the loader vs on premade batches, interleaved; medians."""
    import paddle
    import paddle.nn.functional as F

    import paddle_cnns
    from paddle_cnns.data import make_loader
    from paddle_cnns.errors import UsageError

    paddle.seed(0)
    model = paddle_cnns.create_model(model_name, num_classes=num_classes, image_size=image_size)
    model.train()
    opt = paddle.optimizer.Momentum(learning_rate=0.01, momentum=0.9, parameters=model.parameters())

    def step(x, y):
        out = model(x)
        loss = F.cross_entropy(out[0] if isinstance(out, (tuple, list)) else out, y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss

    available = len(make_loader(train_set, batch_size, shuffle=True, drop_last=True))
    if not 1 <= steps <= available:
        raise UsageError(f"--steps must be between 1 and {available} (the train split's full batches), got {steps}")
    premade = []
    for x, y in make_loader(train_set, batch_size, shuffle=True, seed=1, drop_last=True):
        premade.append((x, y))
        if len(premade) == steps:
            break
    for x, y in premade[:2]:  # warm-up: kernel selection, allocator
        float(step(x, y))
    # Steps alternate between the two modes (pure, loader-fed, loader-fed, pure, ...) so that
    # a slow spell of a shared machine hits both alike; each repetition sums its steps per mode.
    times = {"pure": [], "loader": [], "in_loader": []}
    for rep in range(reps):
        batches = iter(make_loader(train_set, batch_size, shuffle=True, seed=2, epoch=rep, drop_last=True))
        total = dict.fromkeys(times, 0.0)
        for i in range(steps):
            for mode in (("pure", "loader") if (rep + i) % 2 == 0 else ("loader", "pure")):
                start = time.perf_counter()
                if mode == "pure":
                    x, y = premade[i]
                else:
                    x, y = next(batches)
                    total["in_loader"] += time.perf_counter() - start
                float(step(x, y))  # float() waits for the device
                total[mode] += time.perf_counter() - start
        for key, value in total.items():
            times[key].append(value)
    return {**{mode: statistics.median(t) for mode, t in times.items()}, "all": times}


@main_guard
def main(argv=None) -> list[dict]:
    args = build_parser().parse_args(argv)
    quiet_paddle_logs()
    from paddle_cnns.data import make_datasets, prepare_caltech16, prepared_from
    from paddle_cnns.runtime import set_threads

    threads = set_threads(args.threads)
    if args.stream:
        rows = stream_main(args, threads)
        return _write(rows, args.csv.replace("data.csv", "data_stream.csv"))
    if args.source and prepared_from(args.data_dir) is None:
        prepare_caltech16(args.source, args.data_dir, download=False)
    cache_root = args.cache_root or tempfile.mkdtemp(prefix="data-cache-", dir=_ensure_dir("bench"))
    try:
        builds = time_cache_builds(args.data_dir, args.sizes, cache_root)
        cache_dir = os.path.join(cache_root, f"{args.image_size}px")
        bundle = make_datasets("caltech16", args.data_dir, image_size=args.image_size, cache_dir=cache_dir)
        augmented = make_datasets("caltech16", args.data_dir, image_size=args.image_size, cache_dir=cache_dir,
                                  augment=True)
        plain_rate = loader_rate(bundle.train, args.batch_size, args.reps)
        aug_rate = loader_rate(augmented.train, args.batch_size, args.reps)
        timing = time_training(bundle.train, args.model, args.image_size, bundle.num_classes, args.batch_size,
                               args.steps, args.reps)
    finally:
        if args.cache_root is None:
            shutil.rmtree(cache_root, ignore_errors=True)
    train_rate = args.steps * args.batch_size / timing["pure"]
    overhead = timing["loader"] / timing["pure"] - 1
    share = timing["in_loader"] / timing["loader"]
    rows = [{"metric": f"cache build {b['size']} px ({b['images']} images, 3 splits)", "value": round(b["build_s"], 2),
             "unit": "s", "target": "", "note": f"reload from cache {b['reload_s']:.3f} s"} for b in builds]
    rows += [{"metric": f"cache size {b['size']} px", "value": round(b["bytes"] / 2**20, 1), "unit": "MiB",
              "target": "", "note": f"{b['bytes']} bytes, uint8 N x 3 x {b['size']} x {b['size']}"} for b in builds]
    rows += [
        {"metric": f"loader, {args.image_size} px, batch {args.batch_size}", "value": round(plain_rate),
         "unit": "images/s", "target": "", "note": f"median of {args.reps} shuffled passes over train, to tensors"},
        {"metric": f"loader with augmentation, {args.image_size} px", "value": round(aug_rate), "unit": "images/s",
         "target": "", "note": "crop + flip + rotation per image"},
        {"metric": f"training {args.model}, {args.image_size} px, batch {args.batch_size}", "value": round(train_rate, 1),
         "unit": "images/s", "target": "", "note": f"fwd + CE + bwd + Momentum, {threads} threads, "
                                                      f"median of {args.reps} x {args.steps} steps"},
        {"metric": "loader / training", "value": round(plain_rate / train_rate, 1), "unit": "x",
         "target": f">= {LOADER_TARGET:g}", "note": f"with augmentation: {aug_rate / train_rate:.1f} x"},
        {"metric": f"{args.steps} steps fed by the loader", "value": round(timing["loader"], 3), "unit": "s",
         "target": "", "note": "runs: " + ", ".join(f"{t:.2f}" for t in timing["all"]["loader"])},
        {"metric": f"{args.steps} steps on premade tensors", "value": round(timing["pure"], 3), "unit": "s",
         "target": "", "note": "runs: " + ", ".join(f"{t:.2f}" for t in timing["all"]["pure"])},
        {"metric": "loader-fed / pure compute - 1", "value": round(100 * overhead, 2), "unit": "%",
         "target": f"<= {100 * OVERHEAD_TARGET:g}", "note": "a fixed number of steps stands in for an epoch; "
                                                           "includes run-to-run noise"},
        {"metric": "time inside the loader during loader-fed steps", "value": round(100 * share, 3), "unit": "%",
         "target": f"<= {100 * OVERHEAD_TARGET:g}", "note": f"{timing['in_loader']:.3f} s of {timing['loader']:.2f} s "
                                                           "(median): the loader's own cost, free of that noise"},
    ]
    return _write(rows, args.csv)


def _write(rows: list[dict], path: str) -> list[dict]:
    print(markdown(rows))
    if path:
        _ensure_dir(os.path.dirname(path) or ".")
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"\nwritten to {path}")
    return rows


def _ensure_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def markdown(rows: list[dict]) -> str:
    header = "| metric | value | unit | target | note |\n|---|---:|---|---|---|\n"
    return header + "\n".join(f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target']} | {r['note']} |" for r in rows)


if __name__ == "__main__":
    main(sys.argv[1:])
