"""One run, start to end: build it from its RunConfig, feed the train loop's rows to the sinks, record the row."""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace

import paddle

from paddle_cnns import checkpoint, create_model, distributed, get_spec, inference
from paddle_cnns.data import make_datasets, make_loader, prepare_caltech16
from paddle_cnns.distributed import SINGLE, World
from paddle_cnns.engine import Diverged, Interrupted, TrainState, evaluate, fit, make_optimizer, piecewise_decay
from paddle_cnns.errors import CNNsError, DataError, NotPrepared
from paddle_cnns.summary import count_params, summarize_model

from . import cli, faults, predictions, ranks
from .config import RunConfig, Session
from .console import Progress, StopFlag
from .results import append_row
from .checkpoints import CheckpointSink, start
from .runfolder import (BEST, FINAL, LATEST, RunPaths, acquire, paths_for, read_json, release, skip_outcome, triage,
                        write_json)
from .vdl import HPARAM_METRICS, VisualDLSink

MODES = ("skip", "resume", "fresh", "force")  # what triage() may find
EVAL_BATCH = 64  # evaluation batches hold at least this many images (no gradients: memory allows)


def load_data(cfg: RunConfig, progress=None, workers: int = 0):
    """The run's datasets, downloading Caltech-101 first when Caltech-16 is not prepared and no
    data folder was given (the one-line error names the prepare command if that fails too).
    progress: where the long first-time steps report (see make_datasets). A streamed run's
    JPEGs are decoded per batch by `workers` loader processes."""
    def load():
        return make_datasets(cfg.dataset, cfg.data_dir, cfg.recipe.image_size, augment=cfg.augment,
                             max_per_class=cfg.max_per_class, progress=progress, stream=cfg.stream,
                             workers=workers)
    try:
        bundle = load()
    except NotPrepared as e:
        if cfg.dataset != "caltech16" or cfg.data_dir is not None:
            raise
        print("Caltech-16 is not prepared yet: downloading the official Caltech-101 archive (131 MB) "
              "to prepare it", flush=True)
        try:
            prepare_caltech16(None, download=True, progress=progress)
        except DataError as failed:
            raise DataError(f"{cli.explain(e)} - the download failed too ({failed})") from None
        bundle = load()
    for split, entry in bundle.info.get("cache", {}).items():
        if entry.get("repaired") == "checksum":
            print(f"note: the decoded {split} cache failed its checksum (damaged on disk); rebuilt it",
                  file=sys.stderr, flush=True)
    return bundle


def fingerprinted(runs: list, progress=None) -> list:
    """The runs with their data's fingerprint filled in (each dataset loaded once): a run's
    identity includes the data it trains on, so resuming it on other data is refused."""
    prints = {}
    out = []
    for cfg in runs:
        key = (cfg.dataset, cfg.data_dir, cfg.recipe.image_size, cfg.augment, cfg.max_per_class, cfg.stream)
        if key not in prints:
            prints[key] = load_data(cfg, progress).info["data_fingerprint"]
        out.append(cfg.replace(data_fingerprint=prints[key]))
    return out


@dataclass
class Job:
    """A run's built parts: model, optimizer and schedule, data and loaders."""
    model: object
    optimizer: object
    scheduler: object
    bundle: object
    steps: int
    blocks: list
    net: object = None            # what trains: DataParallel(model) under data parallelism, else model
    world: World = SINGLE

    @property
    def shard(self) -> dict:
        """This rank's slice of every batch (nothing to add on a single device)."""
        return {"rank": self.world.rank, "world_size": self.world.size} if self.world.parallel else {}

    def train_batches(self, cfg: RunConfig):
        return lambda epoch: make_loader(self.bundle.train, cfg.recipe.batch_size, shuffle=True,
                                         seed=cfg.seed, epoch=epoch, **self.shard)

    def loader(self, split, cfg: RunConfig):
        return make_loader(split, max(cfg.recipe.batch_size, EVAL_BATCH), shuffle=False, **self.shard)


def build(cfg: RunConfig, bundle, world: World = SINGLE, sync_bn: bool = False) -> Job:
    """Model (seeded), optimizer and LR schedule of the run, inside the caller's unique_name guard.

    Under data parallelism every rank builds the same model from the seed; --batch-size is the
    global batch, split over the ranks."""
    r = cfg.recipe
    paddle.seed(cfg.seed)
    model = create_model(cfg.variant, num_classes=bundle.num_classes, in_channels=bundle.in_channels,
                         image_size=r.image_size, layers=cfg.layers)
    blocks = summarize_model(model, bundle.in_channels, r.image_size)
    model, net = distributed.parallel_model(model, world, sync_bn)
    job = Job(model, None, None, bundle, 0, blocks, net, world)
    job.steps = len(make_loader(bundle.train, r.batch_size, shuffle=True, seed=cfg.seed, epoch=1, **job.shard))
    job.scheduler = piecewise_decay(r.lr, r.epochs, job.steps, cfg.decay_epochs)
    job.optimizer = make_optimizer(r.optimizer, model.parameters(), job.scheduler, r.weight_decay, r.momentum)
    return job


def train(cfg: RunConfig, job: Job, state: TrainState, stop: StopFlag, checkpoints: CheckpointSink,
          sinks: list) -> tuple:
    """Run the loop to the end, feeding every epoch's row to the sinks; (status, error).

    Under data parallelism only rank 0 checkpoints and reports (the other ranks hold the same state)."""
    main = job.world.is_main
    progress = Progress(cfg.run_id, cfg.recipe.epochs, job.steps)
    sinks = [checkpoints, *sinks, progress] if main else []

    def on_step(s: TrainState) -> None:
        if main:
            progress.step(s)
        faults.hit("step", s.global_step)
    try:
        for row in fit(job.net, job.optimizer, job.scheduler, job.train_batches(cfg), job.loader(job.bundle.eval, cfg),
                       cfg.recipe.epochs, job.bundle.num_classes, state, seed=cfg.seed, amp=cfg.amp,
                       stop_requested=stop, on_step=on_step, world=job.world):
            row["time"] = time.time()
            for sink in sinks:
                sink(row)
            faults.hit("epoch", row["epoch"])
    except Diverged as e:
        error = f"{e}; {cli.HINTS['lr']}"
        if main:
            print(f"{cfg.run_id}: {error}", file=sys.stderr, flush=True)
        return "diverged", error
    except Interrupted:
        if main:
            checkpoints.save()
        raise
    return "finished", ""


def test_metrics(cfg: RunConfig, job: Job, checkpoints: CheckpointSink) -> dict:
    """Keep the final weights, then evaluate the best-eval checkpoint on the test split (eval if none)."""
    if job.world.is_main:
        checkpoints.save_final()
        job.model.set_state_dict(checkpoints.best_weights())
    job.world.broadcast_state(job.model)  # rank 0 read the best weights: the other ranks get them from it
    split = "test" if job.bundle.test is not None else "eval"
    test = evaluate(job.model, job.loader(getattr(job.bundle, split), cfg), job.bundle.num_classes, job.world)
    return {**test, "split": split}


def results_row(cfg: RunConfig, status: str, error: str, session: Session, started: float,
                job: Job | None = None, state: TrainState | None = None, test: dict | None = None,
                logdir: str = "", attempt: str = "") -> dict:
    """{run, **identity, model and data facts, metrics, environment}: one row of the results store."""
    spec = get_spec(cfg.variant)
    row = {"run_id": cfg.run_id, "attempt": attempt, "name": cfg.name, "status": status, "error": error,
           "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **cfg.identity(),
           "family": spec.family, "model_revision": spec.revision, "wall_time_s": time.time() - started,
           "paddle_version": paddle.__version__, "device": session.device, "threads": session.threads,
           "world_size": session.world_size, "sync_bn": session.sync_bn,
           "per_device_batch": -(-cfg.recipe.batch_size // session.world_size)}
    tricks = spec.options.get("tricks")
    if tricks is not None:
        row.update(asdict(tricks))
    if job is None:
        return row
    b, test, history = job.bundle, test or {}, state.history
    last = history[-1] if history else {}
    row.update({
        "layers_used": getattr(job.model, "layers", ""),
        "in_channels": b.in_channels, "num_classes": b.num_classes, "train_size": len(b.train),
        "eval_size": len(b.eval), "test_size": len(b.test) if b.test is not None else 0,
        "best_eval_acc": state.best_eval_acc if history else None, "best_epoch": state.best_epoch or None,
        "final_eval_acc": last.get("eval_acc"), "final_eval_loss": last.get("eval_loss"),
        "final_train_acc": last.get("train_acc"), "final_train_loss": last.get("train_loss"),
        "epochs_done": len(history), "test_split": test.get("split", ""),
        "test_acc": test.get("acc"), "test_top5": test.get("top5"),
        "test_balanced_acc": test.get("balanced_acc"), "test_loss": test.get("loss"),
        "params": count_params(job.model), "macs": sum(blk.macs for blk in job.blocks),
        "train_time_s": sum(r["epoch_time"] for r in history),
        "images_per_s": (sum(r["images_per_s"] for r in history) / len(history)) if history else None,
        "logdir": logdir, "class_names": b.class_names, "test_per_class_acc": test.get("per_class_acc"),
        "test_confusion": test.get("confusion"),
        "blocks": [[blk.name, list(blk.output_shape), blk.params, blk.macs] for blk in job.blocks],
    })
    return row


def hparams(cfg: RunConfig) -> dict:
    """What VisualDL's HParams view shows of a run: its identity and its tricks (0/1)."""
    tricks = get_spec(cfg.variant).options.get("tricks")
    return {**cfg.identity(), **({t: int(v) for t, v in asdict(tricks).items()} if tricks else {})}


def train_run(cfg: RunConfig, paths: RunPaths, mode: str, session: Session, stop: StopFlag,
              world: World = SINGLE) -> dict:
    """Train one run to the end (or divergence) and record it. Returns its outcome.

    Under data parallelism every rank trains; rank 0 alone writes the run's folders, VisualDL
    history, results row and outcome (resuming ranks all read rank 0's checkpoint)."""
    started = time.time()
    bundle = load_data(cfg, workers=session.loader_workers)
    if bundle.info["data_fingerprint"] != cfg.data_fingerprint:
        raise DataError(f"the data of run {cfg.run_id} changed while the command ran (its split lists or "
                        "classes differ); run the command again")
    if world.is_main:
        if mode == "force":
            paths.clear()
        os.makedirs(paths.ckpt_dir, exist_ok=True)
        write_json(paths.config, cfg.to_json())
        # What prediction and export need beyond the config (classes, input normalisation), so a
        # run folder is usable without its dataset (paddle_cnns.inference.load_trained reads it).
        write_json(os.path.join(paths.ckpt_dir, inference.FACTS_FILE), inference.run_facts(
            cfg.run_id, cfg.variant, cfg.recipe.image_size, bundle.class_names, bundle.in_channels,
            bundle.train.mean.tolist(), bundle.train.std.tolist(), cfg.dataset))
    with paddle.utils.unique_name.guard():  # the names optimizer checkpoints are keyed by
        job = build(cfg, bundle, world, session.sync_bn)
        if not world.is_main:
            return ranks.follow(cfg, job, paths, mode, stop)
        state, attempt, manifest = start(cfg, paths, mode, job)
        checkpoints = CheckpointSink(job, paths, state, cfg, attempt, manifest, started)
        visualdl = VisualDLSink(paths.logdir, state.history)
        try:
            status, error = train(cfg, job, state, stop, checkpoints, [visualdl])
        except Interrupted:
            visualdl.close()
            raise
        test = test_metrics(cfg, job, checkpoints) if status == "finished" else {}
        if status == "finished":  # beside the results store, before its row: the report pairs runs per image
            predictions.record(cfg, replace(job, world=SINGLE), session.results, test["split"])  # all of the split
    # wall_time_s counts every attempt: as if this one had started when the first did, minus the gaps
    row = results_row(cfg, status, error, session, started - checkpoints.wall_before, job, state, test,
                      paths.logdir, attempt)
    # The log first: a log that cannot be written fails the run before a 'finished' row exists.
    visualdl.finish(hparams(cfg), {k: row[k] for k in HPARAM_METRICS})
    visualdl.close()
    append_row(session.results, row)  # once per attempt: a resumed run finds its row there
    faults.hit("after_row_append")
    outcome = {"run_id": cfg.run_id, "attempt": attempt, "status": status, "error": error,
               "best_eval_acc": row["best_eval_acc"], "test_acc": row["test_acc"],
               "test_split": row["test_split"], "wall_time_s": row["wall_time_s"], "row": row}
    try:
        write_json(paths.outcome, outcome)  # the run is done from here on
        if status == "finished":
            checkpoints.drop_latest()
    except OSError as e:  # recorded already: not a failure (a 'failed' row would be a second row)
        print(f"{cfg.run_id}: recorded, but its folder could not be marked done ({e}); --resume completes "
              "that without training", file=sys.stderr, flush=True)
    return {k: v for k, v in outcome.items() if k != "row"}


def record_failure(cfg: RunConfig, session: Session, error: str, started: float) -> dict:
    """Record a run that crashed (not a divergence) so the sweep's summary and the store show it."""
    try:
        append_row(session.results, results_row(cfg, "failed", error, session, started))
    except (OSError, CNNsError):
        pass
    return {"run_id": cfg.run_id, "status": "failed", "error": error}


def run_here(cfg: RunConfig, session: Session, stop: StopFlag) -> dict:
    """Train one run in this process, holding its folder's lock; any failure becomes a 'failed'
    outcome (one line, log kept). Another process training the run raises RunBusy."""
    if not cfg.data_fingerprint:  # a caller that did not load the data first
        cfg = fingerprinted([cfg])[0]
    paths = paths_for(cfg, session)
    world = distributed.launched() if session.world_size > 1 else SINGLE
    main = world.is_main  # under data parallelism rank 0 holds the lock and writes; the others follow it
    if main:
        acquire(paths)
    try:
        if main and os.path.isdir(paths.ckpt_dir):  # what a kill left: finish its commit, drop its temporaries
            checkpoint.recover(paths.ckpt_dir, (LATEST, BEST, FINAL))
            paths.remove_temporaries()
        mode = triage(cfg, paths, session) if main else None
        if world.parallel:  # every rank does what rank 0 found
            mode = MODES[int(world.all_sum([MODES.index(mode) if main else 0])[0])]
        if mode == "skip":
            if main:
                return skip_outcome(cfg, paths, session)
            return {**{k: v for k, v in (read_json(paths.outcome) or {}).items() if k != "row"}, "skipped": True}
        started = time.time()
        try:
            return train_run(cfg, paths, mode, session, stop, world)
        except (Interrupted, KeyboardInterrupt):
            raise
        except CNNsError as e:
            if not main:  # rank 0 records the run; the other ranks' errors go to their logs
                raise
            return record_failure(cfg, session, cli.explain(e), started)
        except Exception as e:  # a bug or resource problem: keep the traceback, report one line
            if not main:
                raise
            os.makedirs(paths.ckpt_dir, exist_ok=True)
            try:
                with open(paths.error_log, "w") as f:
                    traceback.print_exc(file=f)
            except OSError:  # a full disk, say: the one line below still says what happened
                pass
            return record_failure(cfg, session, f"{type(e).__name__}: {e} (traceback in {paths.error_log})", started)
    finally:
        if main:
            release(paths)
