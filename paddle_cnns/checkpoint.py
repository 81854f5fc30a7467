"""Checkpoints that a kill cannot mix: an epoch's files are committed together by one manifest.

A run folder holds a set of files (latest.pdckpt: model, optimizer, LR scheduler, RNG and loop
state; best.pdparams; final.pdparams) and `checkpoint.json`, the manifest naming each file with
its sha256. An epoch's new files are first written as `<name>.pending`; writing the manifest
(atomically, last) is the single commit point; then the pending files are renamed into place.
Whatever a kill leaves, recover() finds a consistent set: before the commit the old manifest
and the old files hold, after it the pending files (checked against the manifest) roll forward.
Loading verifies the checksum, so a file damaged at rest is named instead of trained on.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import paddle

from .data.cache import file_sha256
from .engine import TrainState
from .errors import CNNsError

FORMAT = 1  # bump when the checkpoint layout changes
MANIFEST = "checkpoint.json"
PENDING = ".pending"


def _fsync_dir(folder: str) -> None:
    try:  # make the rename itself durable; not possible on every OS (Windows)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj, path: str) -> None:
    """paddle.save to a temporary name, fsync, then rename: a kill never leaves a torn file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        paddle.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def stage(folder: str, name: str, obj) -> dict:
    """Write obj as folder/<name>.pending (fsynced); return its manifest entry {sha256, bytes}."""
    path = os.path.join(folder, name + PENDING)
    atomic_save(obj, path)
    return {"sha256": file_sha256(path), "bytes": os.path.getsize(path)}


def checkpoint_state(model, optimizer, scheduler, state: TrainState, seed: int, meta: dict) -> dict:
    """What latest.pdckpt holds: everything a run needs to continue exactly."""
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        # The RNG state is (seed, global step): fit() reseeds paddle before every step from
        # them (engine.step_seed), so nothing else needs saving to draw the same masks again.
        "rng": {"seed": seed, "global_step": state.global_step},
        "state": asdict(state),
        "meta": meta,
    }


def save_checkpoint(path: str, model, optimizer, scheduler, state: TrainState, seed: int,
                    meta: dict) -> None:
    """One stand-alone checkpoint file (no manifest), written atomically."""
    atomic_save(checkpoint_state(model, optimizer, scheduler, state, seed, meta), path)


def read_manifest(folder: str) -> dict | None:
    """The committed manifest of folder, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def commit(folder: str, files: dict, info: dict) -> dict:
    """Make `files` ({name: entry}; staged ones still pending) the folder's set: write the manifest
    atomically (the commit point), then rename the pending files into place. Returns the manifest."""
    manifest = {"format": FORMAT, **info, "files": files}
    path = os.path.join(folder, MANIFEST)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(folder)
    return manifest


def apply(folder: str, manifest: dict, verify: bool = False) -> None:
    """Rename the manifest's pending files into place (verify: only a pending file whose checksum
    is the manifest's; any other is a write the kill interrupted before the commit, removed)."""
    for name, entry in manifest["files"].items():
        pending = os.path.join(folder, name + PENDING)
        if not os.path.exists(pending):
            continue
        if verify and file_sha256(pending) != entry.get("sha256"):
            os.remove(pending)
        else:
            os.replace(pending, os.path.join(folder, name))
    _fsync_dir(folder)


def recover(folder: str, names=()) -> dict | None:
    """The folder's committed set after finishing an interrupted commit, leftovers removed.

    `names` are the files a set may hold: one the manifest does not name is a leftover (say of
    a kill between dropping a file from the set and deleting it) and is removed. Without a
    manifest, the ones that exist (written by an earlier paddle-cnns) form an unverified set;
    None when there is nothing at all.
    """
    manifest = read_manifest(folder)
    if manifest is not None:
        apply(folder, manifest, verify=True)
        for name in names:
            if name not in manifest["files"] and os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    elif any(os.path.exists(os.path.join(folder, n)) for n in names):
        manifest = {"format": FORMAT, "files": {n: {"sha256": None} for n in names
                                                if os.path.exists(os.path.join(folder, n))}}
    for entry in os.listdir(folder) if os.path.isdir(folder) else ():
        if entry.endswith(PENDING):  # staged, never committed
            os.remove(os.path.join(folder, entry))
    return manifest


def verified_path(folder: str, name: str, manifest: dict) -> str:
    """folder/name after checking it against the manifest; CNNsError naming the file otherwise."""
    path = os.path.join(folder, name)
    entry = (manifest or {}).get("files", {}).get(name)
    if entry is None or not os.path.exists(path):
        raise CNNsError(f"checkpoint {path} is missing from the run's committed set", fix="restart")
    if entry.get("sha256") is not None and file_sha256(path) != entry["sha256"]:
        raise CNNsError(f"checkpoint {path} is damaged: its sha256 differs from the one recorded when it "
                        "was written (bit-rot or an edit)", fix="restart")
    return path


def load_checkpoint(path: str) -> dict:
    """A checkpoint file's content; CNNsError (one line, naming the file) when it is unreadable."""
    try:
        ckpt = paddle.load(path)
    except Exception as e:  # a foreign or damaged file: say which, never a traceback
        raise CNNsError(f"cannot read checkpoint {path} ({type(e).__name__})", fix="restart") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CNNsError(f"checkpoint {path} is from another version of paddle-cnns", fix="restart")
    return ckpt


def restore(ckpt: dict, model, optimizer, scheduler) -> TrainState:
    """Put model, optimizer and scheduler back as saved; return the loop state.

    Build the optimizer (and train) inside `paddle.utils.unique_name.guard()`: its state is
    keyed by generated names such as conv2d_0.w_0_velocity_0, which must come out the same as
    in the process that saved it.
    """
    model.set_state_dict(ckpt["model"])
    optimizer.set_state_dict(ckpt["optimizer"])
    scheduler.set_state_dict(ckpt["scheduler"])
    return TrainState(**ckpt["state"])
