"""python -m ablations.run: train model or trick variants with the shared loop, log and record them.

    python -m ablations.run --variant all_tricks --lr-decay     # one variant
    python -m ablations.run --variant all --seeds 0,1,2         # the whole study, packed per core
    python -m ablations.run --nproc-per-node 2 --variant googlenet_bn --recipe imagenet \
        --dataset folder --data-dir PATH/TO/IMAGENET                   # one run, data parallel on 2 devices
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before paddle is imported

import paddle  # noqa: E402

from paddle_cnns import Tricks, distributed, get_spec, runtime  # noqa: E402
from paddle_cnns.data import DATASETS, DEFAULT_CACHE_DIR, STREAMABLE, make_datasets  # noqa: E402
from paddle_cnns.engine import OPTIMIZERS, Interrupted, PeerLost  # noqa: E402
from paddle_cnns.errors import UsageError  # noqa: E402

from . import launch, study  # noqa: E402
from .config import RunConfig, Session  # noqa: E402
from .devices import gpus_for, jobs_for  # noqa: E402
from .console import StopFlag  # noqa: E402
from .runfolder import paths_for, triage  # noqa: E402
from .sweep import run_packed, sequential  # noqa: E402
from .trainer import load_data  # noqa: E402


# ---------------------------------------------------------------- command line

class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of argparse's usage dump
        cli.fail(f"{message} (see python -m ablations.run --help)")


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m ablations.run", description=__doc__,
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    what = p.add_argument_group("what to train (one of)")
    what.add_argument("--variant", help="a model or trick variant (see --list), or a group: all, tricks, classics")
    what.add_argument("--variants", help="comma-separated variants and/or groups")
    what.add_argument("--tricks", help="an ad-hoc trick set, e.g. batch_norm,gap (tricks: %s)" % ", ".join(Tricks.names()))
    what.add_argument("--list", action="store_true", help="list variants, groups and recipes, then exit")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="caltech16", choices=DATASETS)
    data.add_argument("--data-dir", help="dataset folder, or for caltech16 a Caltech-101 archive/folder or an "
                                         "AI Studio folder (default: data/<dataset>)")
    data.add_argument("--image-size", type=int, help="input size in px (default: the recipe's, raised to "
                                                     "each model's minimum)")
    data.add_argument("--augment", action="store_true", help="random crop, flip and small rotation (seed 003)")
    data.add_argument("--max-per-class", type=int, help="use at most this many images per class and split (quick runs)")
    data.add_argument("--cache", choices=("auto", "on", "off"), help="decode every image once into a uint8 cache "
                      "(on), or read and decode JPEGs per batch with loader workers (off: folder and caltech16 "
                      "datasets); auto: off when the cache would exceed --cache-limit (default: auto; off for "
                      "--recipe imagenet)")
    data.add_argument("--cache-limit", type=float, default=8.0, metavar="GIB", help="GiB a decoded cache may take with --cache auto")
    data.add_argument("--loader-workers", type=int, default=2, metavar="N", help="processes decoding JPEGs for a run without "
                                                                    "cache (per data-parallel process)")
    rec = p.add_argument_group("recipe (flags override the recipe's values)")
    rec.add_argument("--recipe", default="auto", help="auto (seed on a GPU, cpu otherwise), seed or cpu; see --list")
    rec.add_argument("--epochs", type=int)
    rec.add_argument("--batch-size", type=int)
    rec.add_argument("--lr", type=float)
    rec.add_argument("--optimizer", choices=OPTIMIZERS)
    rec.add_argument("--momentum", type=float)
    rec.add_argument("--weight-decay", type=float)
    rec.add_argument("--lr-decay", action="store_true", help="piecewise x0.1 at 50%% and 75%% of the epochs")
    rec.add_argument("--decay-epochs", type=_int_list, help="with --lr-decay: the epochs to decay at, e.g. 30,45")
    rec.add_argument("--seed", type=int, help="one seed (default 0)")
    rec.add_argument("--seeds", type=_int_list, help="repeat each variant for these seeds, e.g. 0,1,2")
    run = p.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto, cpu, gpu or gpu:N")
    run.add_argument("--threads", type=int, help="CPU threads in all (default: every available core)")
    run.add_argument("--jobs", type=int, help="runs trained at once, one process each, threads split between "
                                              "them (default: one per core for several runs on a CPU, else 1)")
    run.add_argument("--nproc-per-node", type=int, metavar="N", help="train each run data parallel in N processes (one per GPU, "
                                                        "or CPU processes over gloo): shorthand for python -m "
                                                        "paddle.distributed.launch --nproc_per_node N")
    run.add_argument("--devices", metavar="IDS", help="GPU ids to use, e.g. 0,1: --jobs puts one run on each (default: every GPU); "
                                       "with --nproc-per-node, the GPUs of the processes")
    run.add_argument("--no-sync-bn", action="store_true", help="data parallel on GPUs: BatchNorm statistics per "
                                                               "device instead of over the global batch")
    run.add_argument("--amp", action="store_true", help="mixed precision (GPU only)")
    run.add_argument("--plain-layers", action="store_true", help="use paddle's own layers instead of the faster drop-ins")
    run.add_argument("--resume", action="store_true", help="continue runs that stopped, from their last checkpoint")
    run.add_argument("--force", action="store_true", help="retrain runs that already finished (their logs and "
                                                          "checkpoints are replaced; results rows are kept)")
    run.add_argument("--tag", default="", help="suffix for the run folders, to keep runs that differ in "
                                               "recipe apart")
    out = p.add_argument_group("output")
    out.add_argument("--logdir", default="logs", help="VisualDL logs, one folder per run")
    out.add_argument("--checkpoint-dir", default="checkpoints", help="checkpoints, one folder per run")
    out.add_argument("--results", default=os.path.join("results", "results.csv"), help="the results store (CSV)")
    return p


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise UsageError(message)


def _check_writable(path: str, flag: str, is_file: bool = False) -> None:
    """The nearest existing ancestor must be a folder we can create in; nothing is left behind.

    Tried for real (a temporary folder made and removed) rather than with os.access, which
    says yes to root for read-only mounts and pseudo-filesystems such as /proc.
    """
    probe = os.path.abspath(path)
    if is_file:
        if os.path.exists(probe):
            try:
                open(probe, "a").close()  # appending nothing changes nothing
            except OSError:
                raise UsageError(f"{flag} {path}: cannot append to it; choose another {flag}") from None
            return
        probe = os.path.dirname(probe)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=probe))
    except OSError:
        raise UsageError(f"{flag} {path}: cannot create folders in {probe}; choose another {flag}") from None


def plan(args, on_gpu: bool) -> list:
    """Validate every flag and return the runs' configs, before anything is created on disk."""
    chosen = [a for a in ("variant", "variants", "tricks") if getattr(args, a)]
    _require(len(chosen) == 1, "choose what to train with exactly one of --variant NAME, --variants a,b "
                               "or --tricks t1,t2 (--list shows the names)")
    _require(not (args.seed is not None and args.seeds), "give --seed or --seeds, not both")
    recipe = study.pick_recipe(args.recipe, on_gpu)
    for flag, value in study.RECIPE_FLAGS.get(recipe.name, {}).items():  # what the recipe turns on
        setattr(args, flag, getattr(args, flag) or value)
    recipe = study.override(recipe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay)
    _require(recipe.epochs >= 1, f"--epochs must be at least 1, got {recipe.epochs}")
    _require(recipe.batch_size >= 1, f"--batch-size must be at least 1, got {recipe.batch_size}")
    _require(recipe.lr > 0, f"--lr must be positive, got {recipe.lr}")
    _require(recipe.momentum >= 0, f"--momentum must be >= 0, got {recipe.momentum}")
    _require(recipe.weight_decay >= 0, f"--weight-decay must be >= 0, got {recipe.weight_decay}")
    _require(args.image_size is None or args.image_size >= 1, f"--image-size must be positive, got {args.image_size}")
    _require(args.max_per_class is None or args.max_per_class >= 1,
             f"--max-per-class must be at least 1, got {args.max_per_class}")
    _require(not args.decay_epochs or args.lr_decay, "--decay-epochs needs --lr-decay")
    _require(not args.amp or on_gpu, "--amp needs a GPU (paddle has no float16 CPU kernels for training)")
    _require("/" not in args.tag and " " not in args.tag, f"--tag must not contain '/' or spaces: {args.tag!r}")
    _require(args.cache != "off" or args.dataset in STREAMABLE,
             f"--cache off reads JPEG files ({', '.join(STREAMABLE)} datasets); {args.dataset} is always cached")
    _require(args.cache_limit > 0, f"--cache-limit must be positive, got {args.cache_limit}")
    _require(args.loader_workers >= 0, f"--loader-workers must be >= 0, got {args.loader_workers}")
    seeds = args.seeds or [0 if args.seed is None else args.seed]
    _require(all(s >= 0 for s in seeds), f"seeds must be >= 0, got {seeds}")
    _require(len(set(seeds)) == len(seeds), f"--seeds repeats a seed: {seeds}")
    if args.tricks:
        models = [(Tricks.parse(args.tricks).variant, args.lr_decay)]
    else:
        names = [args.variant] if args.variant else [n.strip() for n in args.variants.split(",") if n.strip()]
        models = study.expand(names, args.lr_decay)
    _check_writable(args.logdir, "--logdir")
    _check_writable(args.checkpoint_dir, "--checkpoint-dir")
    _check_writable(args.results, "--results", is_file=True)
    runs = []
    for model, lr_decay in models:
        size = study.image_size_for(model, args.image_size, recipe)
        decay = study.decay_epochs_for(recipe.epochs, lr_decay, args.decay_epochs)
        _require(all(0 < e < recipe.epochs for e in decay),
                 f"--decay-epochs must lie strictly between 0 and --epochs {recipe.epochs}, got {list(decay)}")
        for seed in seeds:
            runs.append(RunConfig(
                variant=get_spec(model).name, recipe=replace(recipe, image_size=size),
                seed=seed, lr_decay=lr_decay, decay_epochs=decay, dataset=args.dataset, data_dir=args.data_dir,
                augment=args.augment, max_per_class=args.max_per_class, tag=args.tag,
                fast_layers=not args.plain_layers, amp=args.amp, stream=study.streams(args.cache, args.cache_limit, args.dataset, args.data_dir, size,
                                                            args.max_per_class)))
    return runs



def _list() -> None:
    from paddle_cnns import list_models
    print("classic models:", ", ".join(list_models("classic")))
    print("trick variants:", ", ".join(study.TRICKS))
    print("groups: all (classics + tricks), tricks, classics; ad-hoc trick sets via --tricks "
          + ",".join(Tricks.names()[:2]) + ",...")
    for r in study.RECIPES.values():
        print(f"recipe {r.name}: {r.image_size} px, {r.epochs} epochs, batch {r.batch_size}, "
              f"{r.optimizer} lr {r.lr}, momentum {r.momentum}, weight decay {r.weight_decay}")


@cli.main_guard
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    _require(args.threads is None or args.threads >= 1, f"--threads must be at least 1, got {args.threads}")
    _require(args.jobs is None or args.jobs >= 1, f"--jobs must be at least 1, got {args.jobs}")
    _require(args.nproc_per_node is None or args.nproc_per_node >= 1,
             f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    world = distributed.launched()  # set by paddle.distributed.launch
    launching = (args.nproc_per_node or 1) > 1 and not world.parallel
    device = runtime.set_device(args.device)
    on_gpu = device.startswith("gpu")
    runs = plan(args, on_gpu)
    cores = max(1, runtime.available_cores() // world.local_size)  # each rank its share of the cores
    threads = runtime.set_threads(args.threads or (cores if world.parallel else None))
    gpus = gpus_for(args.devices, on_gpu, world.parallel)
    jobs = jobs_for(args.jobs, len(runs), threads, gpus, launching or world.parallel)
    if world.parallel:  # each rank its own GPU (the launcher's choice)
        device = runtime.set_device(distributed.device_for(world, on_gpu))
    elif on_gpu and gpus and jobs == 1:
        device = runtime.set_device(f"gpu:{gpus[0]}")
    session = Session(logdir=args.logdir, checkpoint_dir=args.checkpoint_dir, results=args.results,
                      device="gpu" if jobs > 1 and gpus else device, threads=threads, resume=args.resume,
                      force=args.force, world_size=world.size, sync_bn=on_gpu and world.parallel and not args.no_sync_bn,
                      loader_workers=args.loader_workers)
    for cfg in runs:  # conflicts with existing run folders are usage errors too: before any work
        triage(cfg, paths_for(cfg, session), session)
    stop = StopFlag() if launching else StopFlag().install()  # the launcher's supervisor lets Ctrl-C through
    if world.is_main and not launching:
        auto = f" ({'auto: ' + ('GPU found' if on_gpu else 'no GPU')})" if args.recipe == "auto" else ""
        print(f"paddle-cnns {runs[0].recipe.name} recipe{auto}, dataset {args.dataset}, device {device}, "
              f"{threads} thread{'s' if threads > 1 else ''}, {len(runs)} run{'s' if len(runs) > 1 else ''}"
              f"{f', {jobs} at a time' if jobs > 1 else ''}"
              f"{f', data parallel over {world.size} processes' if world.parallel else ''}; "
              f"paddle {paddle.__version__}", flush=True)
    # Load (prepare, decode and cache) every dataset/size once, up front: data problems stop
    # here with one line and exit 2, and packed workers find the cache ready instead of racing.
    loaded = set()
    with launch.one_at_a_time(world, DEFAULT_CACHE_DIR):
        for cfg in runs:
            key = (cfg.dataset, cfg.data_dir, cfg.recipe.image_size, cfg.augment, cfg.max_per_class, cfg.stream)
            if key not in loaded:
                loaded.add(key)
                load_data(cfg)
    if launching:
        return launch.supervise(argv, args.nproc_per_node, os.path.join(args.checkpoint_dir, launch.LAUNCH_LOGS),
                                args.devices)
    distributed.init(world)
    if jobs > 1:
        outcomes = run_packed(runs, session, jobs, stop, devices=gpus or None)
    else:
        try:
            outcomes = sequential(runs, session, stop)
        except PeerLost as e:
            print(f"error: {e}; the last checkpoint is saved - continue with the same command and --resume",
                  file=sys.stderr, flush=True)
            return 1
        except (Interrupted, KeyboardInterrupt):
            print("stopped; the last checkpoint is saved - continue with the same command and --resume",
                  file=sys.stderr, flush=True)
            return 130
    if stop.requested:
        print("stopped; continue with the same command and --resume", file=sys.stderr, flush=True)
        return 130
    bad = [o for o in outcomes if o.get("status") != "finished"]
    if len(runs) > 1 and world.is_main:
        print(f"summary: {len(outcomes) - len(bad)} of {len(runs)} runs finished"
              + (f"; not finished: {', '.join(o['run_id'] + ' (' + o['status'] + ')' for o in bad)}" if bad else ""))
        if not bad:
            print(f"results: {args.results}; logs: visualdl --logdir {args.logdir} --language en")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
