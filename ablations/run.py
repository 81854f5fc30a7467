"""python -m ablations.run: train models or trick variants with the shared loop; log and record each run.

examples:
    python -m ablations.run --variant all_tricks --lr-decay          # one variant
    python -m ablations.run --variants baseline,gap --seeds 0,1,2     # two variants, three seeds each
    python -m ablations.run --tricks batch_norm,leaky_relu,gap        # any trick combination
    python -m ablations.run --variant all --recipe cpu                # the whole study, packed per core
    python -m ablations.run --list                                    # names, groups and recipes
    python -m ablations.run --nproc-per-node 2 --recipe imagenet --variant googlenet_bn \
        --dataset folder --data-dir PATH/TO/IMAGENET                  # one run, data parallel on 2 devices

Each run logs to LOGDIR/<variant>[+lrdecay]/s<seed>/<dataset>-<size>px (VisualDL: python -m
ablations.visualdl), checkpoints to the same path under --checkpoint-dir, and appends one row
to --results.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from dataclasses import replace

from . import cli

cli.paddle_environment("train")  # before paddle is imported: runs train through oneDNN

import paddle

from paddle_cnns import Tricks, distributed, get_spec, impl, runtime
from paddle_cnns.data import DATASETS, DEFAULT_CACHE_DIR, STREAMABLE, make_datasets
from paddle_cnns.engine import OPTIMIZERS, Interrupted, PeerLost
from paddle_cnns.errors import UsageError

from . import launch, study
from .config import RunConfig, Session
from .console import StopFlag, Ticker
from .devices import placement
from .results import store_problem
from .runfolder import paths_for, triage
from .sweep import run_packed, sequential
from .trainer import fingerprinted


# ---------------------------------------------------------------- command line

def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _by_recipe(field: str) -> str:
    """'default: the recipe's (article 60, cpu 5)', from the recipes themselves."""
    values = {name: getattr(r, field) for name, r in study.RECIPES.items()}
    if len(set(values.values())) == 1:
        return f"default: the recipe's ({next(iter(values.values()))} in every recipe)"
    return "default: the recipe's (" + ", ".join(f"{name} {v}" for name, v in values.items()) + ")"


def build_parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m ablations.run", description=__doc__)
    what = p.add_argument_group("what to train (exactly one of --variant, --variants, --tricks)")
    what.add_argument("--variant", metavar="NAME",
                      help="a model or trick variant (see --list), or a group: all, tricks, classics")
    what.add_argument("--variants", metavar="A,B", help="comma-separated variants and/or groups")
    what.add_argument("--tricks", metavar="T1,T2",
                      help="an ad-hoc trick set, e.g. batch_norm,gap (tricks: %s)" % ", ".join(Tricks.names()))
    what.add_argument("--list", action="store_true", help="list variants, groups and recipes, then exit")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="caltech16", choices=DATASETS, help="which dataset")
    data.add_argument("--data-dir", metavar="PATH",
                      help="dataset folder; for caltech16 also a Caltech-101 archive or folder (prepared on "
                           "first use) or an AI Studio folder (default: data/<dataset>)")
    data.add_argument("--image-size", type=int, metavar="PX",
                      help="input size in px (default: the recipe's, raised to each model's minimum)")
    data.add_argument("--augment", action="store_true",
                      help="random crop, flip and small rotation, as the ImageNet GoogLeNet-BN write-up")
    data.add_argument("--max-per-class", type=int, metavar="N",
                      help="use at most N images per class and split, for quick runs (default: all)")
    data.add_argument("--cache", choices=("auto", "on", "off"),
                      help="on: decode every image once into a uint8 cache; off: read and decode the JPEGs per "
                           "batch with loader workers (folder and caltech16); auto: off when the cache would "
                           "exceed --cache-limit (default: auto; off for --recipe imagenet)")
    data.add_argument("--cache-limit", type=float, default=8.0, metavar="GIB",
                      help="GiB a decoded cache may take with --cache auto")
    data.add_argument("--loader-workers", type=int, default=2, metavar="N",
                      help="processes decoding JPEGs for a run without cache (per data-parallel process)")
    rec = p.add_argument_group("recipe (a named set of training values; the flags below override them)")
    rec.add_argument("--recipe", default="auto", metavar="NAME",
                     help="auto (the article's recipe on a GPU, cpu otherwise), article, cpu or imagenet; --list "
                          "shows their values. 'seed' is the deprecated old name of 'article'")
    rec.add_argument("--epochs", type=int, metavar="N", help=_by_recipe("epochs"))
    rec.add_argument("--batch-size", type=int, metavar="N", help=_by_recipe("batch_size"))
    rec.add_argument("--lr", type=float, help="learning rate; " + _by_recipe("lr"))
    rec.add_argument("--optimizer", choices=OPTIMIZERS, help=_by_recipe("optimizer"))
    rec.add_argument("--momentum", type=float, metavar="M", help=_by_recipe("momentum"))
    rec.add_argument("--weight-decay", type=float, metavar="W", help="L2 weight decay; " + _by_recipe("weight_decay"))
    rec.add_argument("--lr-decay", action="store_true", help="piecewise x0.1 after 50%% and 75%% of the epochs")
    rec.add_argument("--decay-epochs", type=_int_list, metavar="E1,E2",
                     help="with --lr-decay: the epochs after which to decay instead, e.g. 30,45")
    seeds = p.add_argument_group("seeds (random initialisation and data order; not the recipe)")
    seeds.add_argument("--seed", type=int, metavar="K", help="one seed (default: 0)")
    seeds.add_argument("--seeds", type=_int_list, metavar="K1,K2", help="repeat each variant for these seeds, e.g. 0,1,2")
    run = p.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto (a GPU when paddle sees one), cpu, gpu or gpu:N")
    run.add_argument("--threads", type=int, metavar="N", help="CPU threads in all (default: every available core)")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="runs trained at once, one process each, threads split between them (default: one "
                          "per GPU on a GPU machine, one per core for several runs on a CPU, else 1)")
    run.add_argument("--nproc-per-node", type=int, metavar="N",
                     help="train each run data parallel in N processes (one per GPU, or CPU processes over "
                          "gloo): shorthand for python -m paddle.distributed.launch --nproc_per_node N")
    run.add_argument("--devices", metavar="IDS",
                     help="GPU ids to use, e.g. 0,1: --jobs puts one run on each; with --nproc-per-node, the GPUs "
                          "of its processes (default: every GPU)")
    run.add_argument("--no-sync-bn", action="store_true",
                     help="data parallel on GPUs: BatchNorm statistics per device instead of over the global batch")
    run.add_argument("--amp", action="store_true", help="mixed precision (GPU only)")
    run.add_argument("--layers", choices=("auto", "onednn", "fast", "plain"), default="auto",
                     help="conv and max-pool implementation: auto is oneDNN convs on a CPU with paddle 3, the "
                          "fast drop-ins where oneDNN cannot run (paddle 2.6), paddle's own on a GPU")
    run.add_argument("--plain-layers", action="store_true", help="paddle's own layers (the same as --layers plain)")
    run.add_argument("--resume", action="store_true", help="continue runs that stopped, from their last checkpoint")
    run.add_argument("--force", action="store_true",
                     help="retrain runs that already finished (their logs and checkpoints are replaced; results "
                          "rows are kept)")
    run.add_argument("--tag", default="", metavar="NAME",
                     help="appended to the run name as ~NAME, to keep runs apart that differ in anything the "
                          "folder name lacks, e.g. the recipe (default: none)")
    out = p.add_argument_group("output")
    out.add_argument("--logdir", default="logs", metavar="DIR", help="VisualDL logs, one folder per run")
    out.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR", help="checkpoints, one folder per run")
    out.add_argument("--results", default=os.path.join("results", "results.csv"), metavar="CSV",
                     help="the results store, one row per run")
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
    # Comparisons alone let inf and nan through (nan > 0 is False, but so is nan <= 0).
    _require(math.isfinite(recipe.lr) and recipe.lr > 0, f"--lr must be positive and finite, got {recipe.lr}")
    _require(math.isfinite(recipe.momentum) and 0 <= recipe.momentum < 1,
             f"--momentum must be in [0, 1), got {recipe.momentum}")
    _require(math.isfinite(recipe.weight_decay) and 0 <= recipe.weight_decay < 1,
             f"--weight-decay must be in [0, 1), got {recipe.weight_decay}")
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
    problem = store_problem(args.results)  # found now, not after the runs have trained
    _require(problem is None, f"--results {args.results} {problem}; choose a new --results file")
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
                layers="plain" if args.plain_layers else args.layers, amp=args.amp,
                stream=study.streams(args.cache, args.cache_limit, args.dataset, args.data_dir, size,
                                     args.max_per_class)))
    return runs


def _list() -> None:
    from paddle_cnns import list_models
    print("classic models:", ", ".join(list_models("classic")))
    print("trick variants:", ", ".join(study.TRICKS))
    print("groups: all (classics + tricks), tricks, classics; ad-hoc trick sets via --tricks "
          + ",".join(Tricks.names()[:2]) + ",...")
    about = {"article": "the article's", "cpu": "sized for a 2-core CPU",
             "cpu64": "the 64 px CPU study, scripts/study64.sh",
             "imagenet": "the ImageNet GoogLeNet-BN write-up's set-up; streams, augments, decays the LR"}
    for r in study.RECIPES.values():
        print(f"recipe {r.name} ({about.get(r.name, 'custom')}): {r.image_size} px, {r.epochs} epochs, "
              f"batch {r.batch_size}, {r.optimizer} lr {r.lr}, momentum {r.momentum}, weight decay {r.weight_decay}")
    print("recipe auto: article on a GPU, cpu otherwise; "
          + "; ".join(f"{old}: deprecated name of {new}" for old, new in study.DEPRECATED_RECIPES.items()))


def _announce(args, runs, device: str, on_gpu: bool, threads: int, jobs: int, world) -> None:
    """The first line of output: recipe, dataset, device, threads, runs, paddle and the conv layers."""
    auto = f" ({'auto: ' + ('GPU found' if on_gpu else 'no GPU')})" if args.recipe == "auto" else ""
    layers = impl.resolve(runs[0].layers)[0]  # what "auto" means on this device and paddle
    print(f"paddle-cnns {runs[0].recipe.name} recipe{auto}, dataset {args.dataset}, device {device}, "
          f"{threads} thread{'s' if threads > 1 else ''}, {len(runs)} run{'s' if len(runs) > 1 else ''}"
          f"{f', {jobs} at a time' if jobs > 1 else ''}"
          f"{f', data parallel over {world.size} processes' if world.parallel else ''}; "
          f"paddle {paddle.__version__}; layers {layers}", flush=True)


def _train(runs, session, jobs: int, stop, gpus):
    """Every run's outcome, packed or one after another; or the exit code of a stopped run."""
    if jobs > 1:
        return run_packed(runs, session, jobs, stop, devices=gpus or None)
    try:
        return sequential(runs, session, stop)
    except PeerLost as e:
        print(f"error: {e}; the last checkpoint is saved - continue with the same command and --resume",
              file=sys.stderr, flush=True)
        return 1
    except (Interrupted, KeyboardInterrupt):
        print("stopped; the last checkpoint is saved - continue with the same command and --resume",
              file=sys.stderr, flush=True)
        return 130


@cli.main_guard
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    warning = study.deprecation(args.recipe)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
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
    device, threads, gpus, jobs = placement(args, len(runs), world, device, launching)
    session = Session(logdir=args.logdir, checkpoint_dir=args.checkpoint_dir, results=args.results,
                      device="gpu" if jobs > 1 and gpus else device, threads=threads, resume=args.resume,
                      force=args.force, world_size=world.size, sync_bn=on_gpu and world.parallel and not args.no_sync_bn,
                      loader_workers=args.loader_workers)
    for cfg in runs:  # conflicts with existing run folders are usage errors too: before any work
        triage(cfg, paths_for(cfg, session), session)
    stop = StopFlag() if launching else StopFlag().install()  # the launcher's supervisor lets Ctrl-C through
    if world.is_main and not launching:
        _announce(args, runs, device, on_gpu, threads, jobs, world)
    # Load (prepare, decode and cache) every dataset/size once, up front: data problems stop
    # here with one line and exit 2, and packed workers find the cache ready instead of racing.
    # A run's identity includes its data's fingerprint: a folder holding the run on other data
    # is refused like one holding other flags. Loading each dataset here, once, also prepares and
    # caches it before any worker starts (the processes of a data-parallel run one after another).
    ticker = Ticker()
    with launch.one_at_a_time(world, DEFAULT_CACHE_DIR):
        runs = fingerprinted(runs, progress=ticker if world.is_main else None)
    ticker.close()
    for cfg in runs:
        triage(cfg, paths_for(cfg, session), session)
    if launching:
        return launch.supervise(argv, args.nproc_per_node, os.path.join(args.checkpoint_dir, launch.LAUNCH_LOGS),
                                args.devices)
    distributed.init(world)
    outcomes = _train(runs, session, jobs, stop, gpus)
    if isinstance(outcomes, int):  # stopped or a peer lost: the exit code
        return outcomes
    if stop.requested:
        print("stopped; continue with the same command and --resume", file=sys.stderr, flush=True)
        return 130
    bad = [o for o in outcomes if o.get("status") != "finished"]
    if len(runs) > 1 and world.is_main:
        print(f"summary: {len(outcomes) - len(bad)} of {len(runs)} runs finished"
              + (f"; not finished: {', '.join(o['run_id'] + ' (' + o['status'] + ')' for o in bad)}" if bad else ""))
    if not bad and world.is_main:
        print(f"results: {args.results}; curves: python -m ablations.visualdl --logdir {args.logdir}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
