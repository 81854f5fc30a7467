"""python -m ablations.run: train model or trick variants with the shared loop, log and record them.

    python -m ablations.run --variant all_tricks --lr-decay     # one variant
    python -m ablations.run --variant all --seeds 0,1,2         # the whole study, packed per core
"""
from __future__ import annotations
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace

from . import cli

cli.quiet_paddle_logs()  # before paddle is imported
cli.reproducible_mkl()  # before paddle is imported: numbers independent of --threads/--jobs

import paddle  # noqa: E402

from paddle_cnns import Tricks, create_model, get_spec  # noqa: E402
from paddle_cnns import fast, runtime  # noqa: E402
from paddle_cnns.checkpoint import atomic_save, load_checkpoint, restore, save_checkpoint  # noqa: E402
from paddle_cnns.data import DATASETS, make_datasets, make_loader, prepare_caltech16  # noqa: E402
from paddle_cnns.engine import (OPTIMIZERS, Diverged, Interrupted, TrainState, evaluate, fit,  # noqa: E402
                                make_optimizer, piecewise_decay)
from paddle_cnns.errors import CNNsError, DataError, NotPrepared, UsageError  # noqa: E402
from paddle_cnns.summary import summarize_model  # noqa: E402

from . import study  # noqa: E402
from .results import append_row  # noqa: E402
from .vdl import VisualDLSink  # noqa: E402

DONE = ("finished", "diverged")  # outcomes a sweep does not redo (the same run would diverge again)


@dataclass(frozen=True)
class RunConfig:
    """Everything one run depends on; saved next to its checkpoints to detect changed recipes."""
    model: str
    lr_decay: bool
    seed: int
    dataset: str
    data_dir: str | None
    image_size: int
    recipe: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    decay_epochs: tuple
    augment: bool
    max_per_class: int | None
    tag: str
    fast_layers: bool
    amp: bool

    @property
    def run_id(self) -> str:
        return study.run_id(self.dataset, self.image_size, self.model, self.lr_decay, self.seed, self.tag)

    def identity(self) -> dict:
        """What must match for an existing run folder to be the same run (paths excluded)."""
        d = asdict(self)
        d.pop("data_dir")
        d["decay_epochs"] = list(d["decay_epochs"])
        return d


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
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # a packed sweep's worker
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


def plan(args, on_gpu: bool) -> list[RunConfig]:
    """Validate every flag and return the runs, before anything is created on disk."""
    chosen = [a for a in ("variant", "variants", "tricks") if getattr(args, a)]
    _require(len(chosen) == 1, "choose what to train with exactly one of --variant NAME, --variants a,b "
                               "or --tricks t1,t2 (--list shows the names)")
    _require(not (args.seed is not None and args.seeds), "give --seed or --seeds, not both")
    recipe = study.pick_recipe(args.recipe, on_gpu)
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
                model=get_spec(model).name, lr_decay=lr_decay, seed=seed, dataset=args.dataset,
                data_dir=args.data_dir, image_size=size, recipe=recipe.name, epochs=recipe.epochs,
                batch_size=recipe.batch_size, optimizer=recipe.optimizer, lr=recipe.lr,
                momentum=recipe.momentum, weight_decay=recipe.weight_decay, decay_epochs=decay,
                augment=args.augment, max_per_class=args.max_per_class, tag=args.tag,
                fast_layers=not args.plain_layers, amp=args.amp))
    return runs


# ---------------------------------------------------------------- run folders

@dataclass(frozen=True)
class RunPaths:
    logdir: str
    ckpt_dir: str

    @property
    def config(self):
        return os.path.join(self.ckpt_dir, "config.json")

    @property
    def latest(self):
        return os.path.join(self.ckpt_dir, "latest.pdckpt")

    @property
    def best(self):
        return os.path.join(self.ckpt_dir, "best.pdparams")

    @property
    def final(self):
        return os.path.join(self.ckpt_dir, "final.pdparams")

    @property
    def outcome(self):
        return os.path.join(self.ckpt_dir, "outcome.json")

    @property
    def log(self):
        return os.path.join(self.ckpt_dir, "train.log")


def paths_for(cfg: RunConfig, args) -> RunPaths:
    return RunPaths(os.path.join(args.logdir, cfg.run_id), os.path.join(args.checkpoint_dir, cfg.run_id))


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def triage(cfg: RunConfig, paths: RunPaths, args) -> str:
    """'skip' (already done), 'resume', 'fresh' or 'force'; UsageError when the folder conflicts."""
    if args.force:
        return "force"
    saved = _read_json(paths.config)
    if saved is None:
        return "fresh"
    if saved != cfg.identity():
        changed = sorted(k for k in cfg.identity() if saved.get(k) != cfg.identity()[k])
        raise UsageError(f"{paths.ckpt_dir} holds a run with other settings ({', '.join(changed)}); "
                         "pass --tag NAME to keep both, or --force to replace it")
    outcome = _read_json(paths.outcome) or {}
    if outcome.get("status") in DONE:
        return "skip"
    if os.path.exists(paths.latest):
        if not args.resume:
            raise UsageError(f"run {cfg.run_id} stopped before finishing; pass --resume to continue it "
                             "or --force to start it over")
        return "resume"
    return "fresh"


# ---------------------------------------------------------------- one run

class StopFlag:
    """Ctrl-C asks the loop to stop at the next step boundary; a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping after this step and saving a checkpoint (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        return self


class Progress:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, label: str, epochs: int, steps: int):
        self.label, self.epochs, self.steps = label, epochs, steps
        self.bar = None
        self.tty = sys.stdout.isatty()

    def step(self, state: TrainState) -> None:
        if not self.tty:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.steps, initial=state.step_in_epoch - 1, leave=False,
                            desc=f"{self.label} epoch {state.epoch + 1}/{self.epochs}")
        self.bar.update(1)

    def epoch(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"{self.label} epoch {row['epoch']}/{self.epochs}: train loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.3f} | eval loss {row['eval_loss']:.4f} acc {row['eval_acc']:.3f} "
              f"top5 {row['eval_top5']:.3f} | lr {row['lr']:.2g} | {row['epoch_time']:.1f}s "
              f"{row['images_per_s']:.0f} img/s", flush=True)


def train_run(cfg: RunConfig, paths: RunPaths, mode: str, args, stop: StopFlag, device: str,
              threads: int) -> dict:
    """Train one run to the end (or divergence) and record it. Returns its outcome."""
    if mode == "force":
        for folder in (paths.ckpt_dir, paths.logdir):
            shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(paths.ckpt_dir, exist_ok=True)
    _write_json(paths.config, cfg.identity())
    started = time.time()
    fast.set_enabled(cfg.fast_layers)
    bundle = load_data(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.augment, cfg.max_per_class)
    with paddle.utils.unique_name.guard():  # the names optimizer checkpoints are keyed by
        paddle.seed(cfg.seed)
        model = create_model(cfg.model, num_classes=bundle.num_classes, in_channels=bundle.in_channels,
                             image_size=cfg.image_size)
        blocks = summarize_model(model, bundle.in_channels, cfg.image_size)
        params = sum(int(p.size) for p in model.parameters())
        train_batches = lambda epoch: make_loader(bundle.train, cfg.batch_size, shuffle=True,  # noqa: E731
                                                  seed=cfg.seed, epoch=epoch)
        eval_loader = make_loader(bundle.eval, max(cfg.batch_size, 64), shuffle=False)
        steps = len(train_batches(1))
        scheduler = piecewise_decay(cfg.lr, cfg.epochs, steps, cfg.decay_epochs)
        optimizer = make_optimizer(cfg.optimizer, model.parameters(), scheduler, cfg.weight_decay, cfg.momentum)
        state = TrainState()
        if mode == "resume":
            state = restore(load_checkpoint(paths.latest), model, optimizer, scheduler)
            print(f"{cfg.run_id}: resuming after epoch {state.epoch} step {state.step_in_epoch}", flush=True)
        sink = VisualDLSink(paths.logdir, state.history)
        progress = Progress(cfg.run_id, cfg.epochs, steps)
        meta = {"run_id": cfg.run_id, "config": cfg.identity()}
        status, error = "finished", ""
        try:
            for row in fit(model, optimizer, scheduler, train_batches, eval_loader, cfg.epochs,
                           bundle.num_classes, state, seed=cfg.seed, amp=cfg.amp, stop_requested=stop,
                           on_step=progress.step):
                row["time"] = time.time()
                save_checkpoint(paths.latest, model, optimizer, scheduler, state, cfg.seed, meta)
                if state.best_epoch == row["epoch"]:
                    atomic_save(model.state_dict(), paths.best)
                sink(row)
                progress.epoch(row)
        except Diverged as e:
            status, error = "diverged", str(e)
            print(f"{cfg.run_id}: {e}", file=sys.stderr, flush=True)
        except Interrupted:
            save_checkpoint(paths.latest, model, optimizer, scheduler, state, cfg.seed, meta)
            sink.close()
            raise
        test = {}
        if status == "finished":
            atomic_save(model.state_dict(), paths.final)
            model.set_state_dict(paddle.load(paths.best))
            test_set = bundle.test if bundle.test is not None else bundle.eval
            test = evaluate(model, make_loader(test_set, max(cfg.batch_size, 64), shuffle=False),
                            bundle.num_classes)
    history = state.history
    last = history[-1] if history else {}
    tricks = asdict(model.tricks) if hasattr(model, "tricks") else {}
    row = {
        "run_id": cfg.run_id, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "status": status, "error": error, "variant": cfg.model, "family": get_spec(cfg.model).family,
        **tricks, "dataset": cfg.dataset, "image_size": cfg.image_size, "in_channels": bundle.in_channels,
        "num_classes": bundle.num_classes, "train_size": len(bundle.train), "eval_size": len(bundle.eval),
        "test_size": len(bundle.test) if bundle.test is not None else 0,
        "recipe": cfg.recipe, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "optimizer": cfg.optimizer,
        "lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay, "lr_decay": cfg.lr_decay,
        "decay_epochs": list(cfg.decay_epochs), "augment": cfg.augment, "max_per_class": cfg.max_per_class,
        "seed": cfg.seed,
        "best_eval_acc": state.best_eval_acc if history else None, "best_epoch": state.best_epoch or None,
        "final_eval_acc": last.get("eval_acc"), "final_eval_loss": last.get("eval_loss"),
        "final_train_acc": last.get("train_acc"), "final_train_loss": last.get("train_loss"),
        "epochs_done": len(history),
        "test_split": ("test" if bundle.test is not None else "eval") if test else "",
        "test_acc": test.get("acc"), "test_top5": test.get("top5"),
        "test_balanced_acc": test.get("balanced_acc"), "test_loss": test.get("loss"),
        "params": params, "macs": sum(b.macs for b in blocks),
        "train_time_s": sum(r["epoch_time"] for r in history),
        "wall_time_s": time.time() - started,
        "images_per_s": (sum(r["images_per_s"] for r in history) / len(history)) if history else None,
        "paddle_version": paddle.__version__, "device": device, "threads": threads,
        "fast_layers": cfg.fast_layers, "logdir": paths.logdir,
        "class_names": bundle.class_names, "test_per_class_acc": test.get("per_class_acc"),
        "test_confusion": test.get("confusion"),
    }
    append_row(args.results, row)
    metrics = {k: row[k] for k in ("best_eval_acc", "final_eval_acc", "test_acc", "test_top5", "train_time_s")}
    sink.finish({"variant": cfg.model, "dataset": cfg.dataset, "image_size": cfg.image_size, "seed": cfg.seed,
                 "lr": cfg.lr, "lr_decay": cfg.lr_decay, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                 "optimizer": cfg.optimizer, **{k: int(v) for k, v in tricks.items()}}, metrics)
    sink.close()
    outcome = {"run_id": cfg.run_id, "status": status, "error": error, "best_eval_acc": row["best_eval_acc"],
               "test_acc": row["test_acc"], "wall_time_s": row["wall_time_s"]}
    _write_json(paths.outcome, outcome)
    if status == "finished" and os.path.exists(paths.latest):
        # Done: the optimizer state is of no further use and doubles the disk a run takes
        # (0.5 GB for a trick CNN at 32 px). final.pdparams and best.pdparams stay.
        os.remove(paths.latest)
    return outcome


def load_data(dataset, data_dir, image_size, augment=False, max_per_class=None):
    """make_datasets, downloading Caltech-101 first when Caltech-16 is not prepared and no
    --data-dir was given (the one-line error names the prepare command if that fails too)."""
    try:
        return make_datasets(dataset, data_dir, image_size, augment=augment, max_per_class=max_per_class)
    except NotPrepared as e:
        if dataset != "caltech16" or data_dir is not None:
            raise
        print("Caltech-16 is not prepared yet: downloading the official Caltech-101 archive (131 MB) "
              "to prepare it", flush=True)
        try:
            prepare_caltech16(None, download=True)
        except DataError as failed:
            raise DataError(f"{e} - the download failed too ({failed})") from None
        return make_datasets(dataset, data_dir, image_size, augment=augment, max_per_class=max_per_class)


def _failed(cfg: RunConfig, args, error: str) -> dict:
    """Record a run that crashed (not a divergence) so the sweep's summary and the store show it."""
    row = {"run_id": cfg.run_id, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "status": "failed", "error": error, "variant": cfg.model, "family": get_spec(cfg.model).family,
           "dataset": cfg.dataset, "image_size": cfg.image_size, "recipe": cfg.recipe, "epochs": cfg.epochs,
           "batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "lr": cfg.lr, "lr_decay": cfg.lr_decay,
           "seed": cfg.seed, "paddle_version": paddle.__version__}
    try:
        append_row(args.results, row)
    except (OSError, CNNsError):
        pass
    return {"run_id": cfg.run_id, "status": "failed", "error": error}


def run_here(cfg: RunConfig, args, stop: StopFlag, device: str, threads: int) -> dict:
    """Train one run in this process; any failure becomes a 'failed' outcome (one line, log kept)."""
    paths = paths_for(cfg, args)
    mode = triage(cfg, paths, args)
    if mode == "skip":
        return {**_read_json(paths.outcome), "skipped": True}
    try:
        return train_run(cfg, paths, mode, args, stop, device, threads)
    except (Interrupted, KeyboardInterrupt):
        raise
    except CNNsError as e:
        return _failed(cfg, args, str(e))
    except Exception as e:  # a bug or resource problem: keep the traceback, report one line
        os.makedirs(paths.ckpt_dir, exist_ok=True)
        with open(os.path.join(paths.ckpt_dir, "error.log"), "w") as f:
            traceback.print_exc(file=f)
        return _failed(cfg, args, f"{type(e).__name__}: {e} (traceback in {paths.ckpt_dir}/error.log)")


# ---------------------------------------------------------------- sweeps

def child_argv(cfg: RunConfig, args, threads: int) -> list[str]:
    """The command line that trains exactly `cfg` in a worker process."""
    argv = [sys.executable, "-m", "ablations.run", "--child", "--variant", cfg.model,
            "--seed", str(cfg.seed), "--dataset", cfg.dataset, "--image-size", str(cfg.image_size),
            "--recipe", cfg.recipe, "--epochs", str(cfg.epochs), "--batch-size", str(cfg.batch_size),
            "--lr", repr(cfg.lr), "--optimizer", cfg.optimizer, "--momentum", repr(cfg.momentum),
            "--weight-decay", repr(cfg.weight_decay), "--device", args.device, "--threads", str(threads),
            "--jobs", "1", "--logdir", args.logdir, "--checkpoint-dir", args.checkpoint_dir,
            "--results", args.results]
    if cfg.lr_decay:
        argv += ["--lr-decay", "--decay-epochs", ",".join(map(str, cfg.decay_epochs))]
    # No --force: the parent has already cleared a forced run's folders (and opened its log).
    for flag, on in (("--augment", cfg.augment), ("--amp", cfg.amp), ("--plain-layers", not cfg.fast_layers),
                     ("--resume", args.resume)):
        if on:
            argv.append(flag)
    if cfg.data_dir:
        argv += ["--data-dir", cfg.data_dir]
    if cfg.max_per_class:
        argv += ["--max-per-class", str(cfg.max_per_class)]
    if cfg.tag:
        argv += ["--tag", cfg.tag]
    return argv


def run_packed(runs: list[RunConfig], args, jobs: int, threads: int, stop: StopFlag) -> list[dict]:
    """Train runs `jobs` at a time, one worker process each, with threads split between them.

    Each worker writes its output to train.log in its checkpoint folder and its outcome to
    outcome.json; one failing worker does not stop the others. Skipping finished runs and
    clearing --force'd folders happen here, before a worker (and its log file) exists.
    """
    per_job = max(1, threads // jobs)
    pending, active, outcomes = list(runs), {}, {}
    total, started = len(runs), 0
    while pending or active:
        while pending and len(active) < jobs and not stop.requested:
            cfg = pending.pop(0)
            paths = paths_for(cfg, args)
            mode = triage(cfg, paths, args)
            started += 1
            if mode == "skip":
                outcomes[cfg.run_id] = {**_read_json(paths.outcome), "skipped": True}
                print(f"[{started}/{total}] {_describe(outcomes[cfg.run_id])}", flush=True)
                continue
            if mode == "force":
                for folder in (paths.ckpt_dir, paths.logdir):
                    shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(paths.ckpt_dir, exist_ok=True)
            log = open(paths.log, "a")
            proc = subprocess.Popen(child_argv(cfg, args, per_job), stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            active[proc] = (cfg, paths, log, time.time())
            print(f"[{started}/{total}] started {cfg.run_id} ({per_job} thread{'s' if per_job > 1 else ''}; "
                  f"log {paths.log})", flush=True)
        if stop.requested:
            pending.clear()
        time.sleep(0.2)
        for proc in [p for p in active if p.poll() is not None]:
            cfg, paths, log, t0 = active.pop(proc)
            log.close()
            outcome = _read_json(paths.outcome) or {}
            if proc.returncode == 130:
                outcome = {"run_id": cfg.run_id, "status": "interrupted", "error": "stopped; --resume continues it"}
            elif outcome.get("status") is None:
                outcome = {"run_id": cfg.run_id, "status": "failed",
                           "error": f"worker exited with code {proc.returncode}; see {paths.log}"}
            outcomes[cfg.run_id] = outcome
            print(f"[done {len(outcomes)}/{total}] {_describe(outcome)} ({time.time() - t0:.0f}s)", flush=True)
    return [outcomes[c.run_id] for c in runs if c.run_id in outcomes]


def _describe(o: dict) -> str:
    if o.get("status") == "finished":
        acc = "" if o.get("test_acc") is None else f" test acc {o['test_acc']:.3f}"
        again = " (already; --force retrains it)" if o.get("skipped") else ""
        return f"{o['run_id']}: finished{again}, best eval acc {o['best_eval_acc']:.3f}{acc}"
    return f"{o['run_id']}: {o.get('status')}" + (f" - {o['error']}" if o.get("error") else "")


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
    args = build_parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    _require(args.threads is None or args.threads >= 1, f"--threads must be at least 1, got {args.threads}")
    _require(args.jobs is None or args.jobs >= 1, f"--jobs must be at least 1, got {args.jobs}")
    device = runtime.set_device(args.device)
    on_gpu = device.startswith("gpu")
    runs = plan(args, on_gpu)
    threads = runtime.set_threads(args.threads)
    jobs = args.jobs or (min(len(runs), threads) if len(runs) > 1 and not on_gpu else 1)
    for cfg in runs:  # conflicts with existing run folders are usage errors too: before any work
        triage(cfg, paths_for(cfg, args), args)
    stop = StopFlag().install()
    if not args.child:
        auto = f" ({'auto: ' + ('GPU found' if on_gpu else 'no GPU')})" if args.recipe == "auto" else ""
        print(f"paddle-cnns {runs[0].recipe} recipe{auto}, dataset {args.dataset}, device {device}, "
              f"{threads} thread{'s' if threads > 1 else ''}, {len(runs)} run{'s' if len(runs) > 1 else ''}"
              f"{f', {jobs} at a time' if jobs > 1 else ''}; paddle {paddle.__version__}", flush=True)
    # Load (prepare, decode and cache) every dataset/size once, up front: data problems stop
    # here with one line and exit 2, and packed workers find the cache ready instead of racing.
    for key in dict.fromkeys((c.dataset, c.data_dir, c.image_size, c.augment, c.max_per_class) for c in runs):
        load_data(*key)
    if jobs > 1:
        outcomes = run_packed(runs, args, jobs, threads, stop)
    else:
        outcomes = []
        try:
            for cfg in runs:
                outcome = run_here(cfg, args, stop, device, threads)
                outcomes.append(outcome)
                if len(runs) > 1 or outcome["status"] != "finished" or not args.child:
                    print(_describe(outcome), flush=True)
        except (Interrupted, KeyboardInterrupt):
            print("stopped; the last checkpoint is saved - continue with the same command and --resume",
                  file=sys.stderr, flush=True)
            return 130
    if stop.requested:
        print("stopped; continue with the same command and --resume", file=sys.stderr, flush=True)
        return 130
    bad = [o for o in outcomes if o.get("status") != "finished"]
    if len(runs) > 1 and not args.child:
        print(f"summary: {len(outcomes) - len(bad)} of {len(runs)} runs finished"
              + (f"; not finished: {', '.join(o['run_id'] + ' (' + o['status'] + ')' for o in bad)}" if bad else ""))
        if not bad:
            print(f"results: {args.results}; logs: visualdl --logdir {args.logdir} --language en")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
