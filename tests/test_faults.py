"""Fault injection on real runs: kills at named points, full disks, bit-rot, two processes at once.

Whatever happens, a run resumes to the uninterrupted result (bitwise, equal thread counts), is
recorded exactly once, and its VisualDL steps stay unique; a fault it cannot survive is a
visible failure, never a silent success. Kills land at points named by ablations.faults.
Faults that need no training process are in test_faults_input.py.
"""
import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from visualdl import LogReader

from ablations.results import read_results
from ablations.runfolder import read_json
from data_helpers import make_caltech_tree, make_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# LeNet with Adam on 10 synthetic classes x 4 images: 5 steps an epoch, a few seconds a run, and
# its eval accuracy peaks at epoch 3, so epoch 3 rewrites both latest.pdckpt and best.pdparams.
SMALL = ["--variant", "lenet", "--optimizer", "adam", "--lr", "0.01", "--epochs", "3", "--dataset", "synthetic",
         "--image-size", "32", "--max-per-class", "4", "--batch-size", "8"]
ONE = [*SMALL, "--threads", "1"]  # one run, one thread: bitwise comparable with the reference
RID = "lenet/s0/synthetic-32px"
METRICS = ("best_eval_acc", "best_epoch", "final_eval_acc", "final_eval_loss", "final_train_loss", "epochs_done",
           "test_acc", "test_loss", "test_top5", "data_fingerprint", "status")


def _cli(tmp, *args, results="results.csv", logdir="logs"):
    return [sys.executable, "-m", "ablations.run", *args, "--logdir", str(tmp / logdir),
            "--checkpoint-dir", str(tmp / "ckpt"), "--results", str(tmp / results)]


def _env(fault=None):
    env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}
    env.pop("PADDLE_CNNS_FAULT", None)
    if fault:
        env["PADDLE_CNNS_FAULT"] = fault
    return env


def _run(tmp, *args, fault=None, check=True, **where):
    proc = subprocess.run(_cli(tmp, *args, **where), cwd=tmp, env=_env(fault), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}")
    return proc


def _weights(path):
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def _rows(path, run_id=RID):
    df = read_results(str(path))
    return df[df.run_id == run_id]


def _steps(logdir, tag="train/loss"):
    files = glob.glob(os.path.join(logdir, "vdlrecords.*"))
    assert len(files) == 1, files  # VisualDL reads only the newest file of a folder
    return [r.id for r in LogReader(file_path=files[0]).get_data("scalar", tag)]


@pytest.fixture(scope="module")
def reference(module_dir):
    """Uninterrupted runs, seeds 0 and 1, one thread each: what every faulted run must end as."""
    tmp = module_dir("reference")
    _run(tmp, *SMALL, "--seeds", "0,1", "--jobs", "1", "--threads", "1")
    return tmp


def assert_as_uninterrupted(tmp, ref, run_id=RID, results="results.csv", logdir="logs"):
    """Same final and best weights, one row per run with the same metrics, one VisualDL file with unique steps."""
    for name in ("final.pdparams", "best.pdparams"):
        want, got = _weights(ref / "ckpt" / run_id / name), _weights(tmp / "ckpt" / run_id / name)
        assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want), name
    want, got = _rows(ref / "results.csv", run_id), _rows(tmp / results, run_id)
    assert len(got[got.status == "finished"]) == 1, got[["run_id", "status", "error"]]
    got = got[got.status == "finished"]
    for col in METRICS:
        assert want.iloc[0][col] == got.iloc[0][col], col
    assert got.iloc[0].data_fingerprint and got.iloc[0].attempt
    assert _steps(tmp / logdir / run_id) == [1, 2, 3]
    assert _steps(tmp / logdir / run_id, "hparam/test_acc") == [0]
    leftovers = [p for p in os.listdir(tmp / "ckpt" / run_id) if ".tmp-" in p or p.endswith(".pending")]
    assert not leftovers and not os.path.exists(tmp / "ckpt" / run_id / "latest.pdckpt")


# ---------------------------------------------------------------- kills (cases 1, 4, 9)

@pytest.mark.parametrize("fault,resumes_after", [
    ("between_checkpoint_writes=3:KILL", 2),  # epoch 3's latest.pdckpt staged, its best.pdparams not yet
    ("after_checkpoint_commit=3:KILL", 3),    # epoch 3's manifest written, its files not yet renamed
    ("after_row_append:KILL", 3),             # the row is in the store, outcome.json (finished) is not
])
def test_a_kill_at_any_save_point_resumes_to_the_uninterrupted_result_recorded_once(reference, tmp_path, fault,
                                                                                     resumes_after):
    killed = _run(tmp_path, *ONE, fault=fault, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout
    ckpt = tmp_path / "ckpt" / RID
    # A leftover of a write a kill cut short (a dead PID): cleaned up on the run's next start.
    (ckpt / "latest.pdckpt.pending.tmp-999999999").write_bytes(b"\0" * 4096)
    resumed = _run(tmp_path, *ONE, "--resume")
    assert f"resuming after epoch {resumes_after} step 0" in resumed.stdout
    assert not os.path.exists(ckpt / "latest.pdckpt.pending.tmp-999999999")
    assert_as_uninterrupted(tmp_path, reference)


def test_a_resumed_runs_wall_time_counts_its_earlier_attempts(tmp_path):
    _run(tmp_path, *ONE, fault="epoch=2:KILL", check=False)
    manifest_path = tmp_path / "ckpt" / RID / "checkpoint.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["epoch"] == 2 and manifest["wall_time_s"] > 0  # the first attempt, to its last commit
    manifest["wall_time_s"] = 10_000.0  # as if the first attempt had taken hours: easy to tell apart
    manifest_path.write_text(json.dumps(manifest))
    _run(tmp_path, *ONE, "--resume")
    row = _rows(tmp_path / "results.csv").iloc[-1]
    assert row.status == "finished" and 10_000 < row.wall_time_s < 10_000 + 600


def test_bit_rot_in_a_checkpoint_names_the_file_and_is_never_trained_on(tmp_path):
    _run(tmp_path, *ONE, fault="epoch=2:KILL", check=False)
    latest = tmp_path / "ckpt" / RID / "latest.pdckpt"
    with open(latest, "r+b") as f:  # 64 bytes inside the tensor data: the file still unpickles
        f.seek(os.path.getsize(latest) // 2)
        f.write(b"\x7f" * 64)
    proc = _run(tmp_path, *ONE, "--resume", check=False)
    assert proc.returncode == 1 and "epoch 3/3" not in proc.stdout, proc.stdout
    assert f"checkpoint {latest} is damaged" in proc.stdout and "--force" in proc.stdout
    row = _rows(tmp_path / "results.csv").iloc[-1]
    assert row.status == "failed" and "damaged" in row.error and "diverged" not in proc.stdout


# ---------------------------------------------------------------- identity, locks, parents (cases 2, 3, 5, 5a)

def _class_folder(root, classes):
    make_image_folder(str(root), classes=classes, counts={"train": 4, "val": 2}, stray=False)
    return str(root)


def test_resume_on_other_data_is_refused_like_a_changed_flag(tmp_path):
    a = _class_folder(tmp_path / "a", ("cat", "dog", "emu"))
    b = _class_folder(tmp_path / "b", ("cat", "dog", "yak"))  # one class differs
    args = [*ONE[:ONE.index("--dataset")], "--dataset", "folder", "--image-size", "32", "--batch-size", "4",
            "--threads", "1"]
    _run(tmp_path, *args, "--data-dir", a, fault="epoch=1:KILL", check=False)
    proc = _run(tmp_path, *args, "--data-dir", b, "--resume", check=False)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: "), proc.stdout
    assert "holds a run with other settings (data: other images or classes)" in lines[-1]
    assert "epoch 2/3" not in proc.stdout and not os.path.exists(tmp_path / "results.csv")


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _wait(condition, what, tries=1200):
    for _ in range(tries):  # polls a condition (no timing threshold): up to 10 min on a loaded machine
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_same_run_started_twice_at_once_trains_once_and_the_second_exits_2(reference, tmp_path):
    first = subprocess.Popen(_cli(tmp_path, *ONE), cwd=tmp_path, env=_env("epoch=1:STOP"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait(lambda: _state(first.pid) == "T", "the first run to freeze after epoch 1")  # holding its lock
        second = _run(tmp_path, *ONE, check=False)
    finally:
        first.send_signal(signal.SIGCONT)
        out = first.communicate(timeout=600)[0]
    lines = second.stdout.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), second.stdout
    assert f"is being trained by another process (pid {first.pid})" in lines[0]
    assert first.returncode == 0, out
    assert_as_uninterrupted(tmp_path, reference)


def _lock_pid(tmp, run_id):
    text = open(tmp / "ckpt" / run_id / "run.lock").read().strip() if os.path.exists(tmp / "ckpt" / run_id /
                                                                                       "run.lock") else ""
    return int(text) if text.isdigit() else None


SWEEP = [*SMALL, "--seeds", "0,1", "--jobs", "2", "--threads", "2"]  # one thread per worker
SWEEP_RIDS = [RID, RID.replace("/s0/", "/s1/")]


@contextlib.contextmanager
def _frozen_sweep(tmp_path):
    """A packed sweep of two runs whose workers froze after epoch 1: yields (parent, worker pids), and
    lets the workers go on when the block ends, whatever happened inside it."""
    parent = subprocess.Popen(_cli(tmp_path, *SWEEP), cwd=tmp_path, env=_env("epoch=1:STOP"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = []
    try:
        _wait(lambda: all(_lock_pid(tmp_path, r) not in (None, parent.pid) for r in SWEEP_RIDS),
              "both workers to take over their run's lock")
        workers = [_lock_pid(tmp_path, r) for r in SWEEP_RIDS]
        _wait(lambda: all(_state(w) == "T" for w in workers), "both workers to freeze after epoch 1")
        yield parent, workers
    finally:
        for w in workers:
            if _state(w) != "gone":
                os.kill(w, signal.SIGCONT)


def _assert_stopped_after_epoch_1_then_resumes(tmp_path, reference):
    """Both runs saved at the step after epoch 1 and never finished; --resume ends them as uninterrupted."""
    for r in SWEEP_RIDS:
        assert _outcome(tmp_path / "ckpt" / r) in (None, "interrupted")
        state = paddle.load(str(tmp_path / "ckpt" / r / "latest.pdckpt"))["state"]
        assert (state["epoch"], state["step_in_epoch"]) == (1, 1), state
    assert not os.path.exists(tmp_path / "results.csv")
    assert "summary: 2 of 2 runs finished" in _run(tmp_path, *SWEEP, "--resume").stdout
    assert len(read_results(str(tmp_path / "results.csv"))) == 2
    for r in SWEEP_RIDS:
        assert_as_uninterrupted(tmp_path, reference, run_id=r)


def test_workers_of_a_killed_sweep_stop_with_it_and_resume_records_each_run_once(reference, tmp_path):
    with _frozen_sweep(tmp_path) as (parent, workers):
        parent.kill()  # kill -9 of the sweep's parent, its workers mid-run
        parent.wait(60)
    # they stop at the next step (the parent-death signal) and save
    _wait(lambda: all(_state(w) in ("gone", "Z") for w in workers), "the orphaned workers to stop")
    _assert_stopped_after_epoch_1_then_resumes(tmp_path, reference)


def _pending(pid, signum):
    """Whether signal `signum` waits, undelivered, for process `pid` (a stopped process keeps it)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return any(int(fields[k].strip(), 16) >> (signum - 1) & 1 for k in ("SigPnd", "ShdPnd"))


def test_a_stop_sent_to_the_sweeps_parent_alone_stops_its_workers_at_the_next_step(reference, tmp_path):
    # `kill PID` of the sweep (or a scheduler's SIGTERM) reaches only the parent, not a terminal's
    # whole process group: the workers must stop with it instead of training their runs to the end.
    with _frozen_sweep(tmp_path) as (parent, workers):
        parent.send_signal(signal.SIGTERM)
        _wait(lambda: all(_pending(w, signal.SIGTERM) for w in workers), "the parent to pass the stop on")
    out, _ = parent.communicate(timeout=600)
    assert parent.returncode == 130, out
    _assert_stopped_after_epoch_1_then_resumes(tmp_path, reference)


def _outcome(run_folder):
    """The status a worker wrote in its outcome.json, or None without one."""
    return (read_json(str(run_folder / "outcome.json")) or {}).get("status")


def test_a_finished_run_pointed_at_a_new_store_is_recorded_there_exactly_once(reference, tmp_path):
    shutil.copytree(reference / "ckpt", tmp_path / "ckpt")
    before = (reference / "results.csv").read_bytes()
    for _ in range(2):
        proc = _run(tmp_path, *ONE, results="new.csv", logdir="newlogs")
        assert "finished (already; --force retrains it)" in proc.stdout and "epoch 1/3" not in proc.stdout
    new = read_results(str(tmp_path / "new.csv"))
    want = _rows(reference / "results.csv").iloc[0]
    assert len(new) == 1 and all(new.iloc[0][c] == want[c] for c in (*METRICS, "attempt", "run_id", "logdir"))
    assert (reference / "results.csv").read_bytes() == before


# ---------------------------------------------------------------- full disks (cases 6, 7) and a real one

def test_disk_full_while_appending_the_row_leaves_the_store_intact_and_resume_records_it_once(reference, tmp_path):
    with open(reference / "results.csv") as f:  # a store holding seed 1's row already
        header, *rows = f.read().splitlines(keepends=True)
    other = header + "".join(r for r in rows if "/s1/" in r)
    (tmp_path / "results.csv").write_text(other)
    failed = _run(tmp_path, *ONE, fault="write=results:ENOSPC@300", check=False)
    assert failed.returncode == 1 and "No space left on device" in failed.stdout, failed.stdout
    assert (tmp_path / "results.csv").read_text() == other  # the partial row was cut back off
    _run(tmp_path, *ONE, "--resume")
    assert len(read_results(str(tmp_path / "results.csv"))) == 2
    assert_as_uninterrupted(tmp_path, reference)


def test_a_visualdl_log_that_cannot_be_written_fails_the_run_and_resume_completes_it(reference, tmp_path):
    failed = _run(tmp_path, *ONE, fault="write=visualdl:ENOSPC@0", check=False)
    assert failed.returncode == 1 and "could not be written (is the disk full?)" in failed.stdout, failed.stdout
    assert "epoch 2/3" not in failed.stdout
    assert list(read_results(str(tmp_path / "results.csv")).status) == ["failed"]
    _run(tmp_path, *ONE, "--resume")
    assert_as_uninterrupted(tmp_path, reference)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB tmpfs (mounting needs root; skipped, and said so, where it is impossible)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the real-full-disk case is not run")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_real_full_disk_mid_run_fails_visibly_and_resume_after_freeing_space_finishes(reference, tiny_disk):
    best = os.path.getsize(reference / "ckpt" / RID / "best.pdparams")
    # Room for epoch 1's set (latest, about 3x best with Adam's moments, plus best) but not for
    # epoch 2's latest staged next to it.
    stat = os.statvfs(tiny_disk)
    filler = stat.f_bavail * stat.f_frsize - (4 * best + 2 * best)
    with open(tiny_disk / "filler", "wb") as f:
        f.write(b"\0" * filler)
    failed = _run(tiny_disk, *ONE, check=False)
    assert failed.returncode == 1 and "No space left on device" in failed.stdout, failed.stdout
    assert "epoch 1/3" in failed.stdout and "epoch 2/3" not in failed.stdout
    ckpt = tiny_disk / "ckpt" / RID
    assert not [p for p in os.listdir(ckpt) if ".tmp-" in p]
    os.remove(tiny_disk / "filler")
    _run(tiny_disk, *ONE, "--resume")
    assert_as_uninterrupted(tiny_disk, reference)


def _fill(disk, leave):
    """Fill disk up to `leave` free bytes."""
    stat = os.statvfs(disk)
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * (stat.f_bavail * stat.f_frsize - leave))


# One quick epoch on a fake Caltech-101 folder: prepared into data/caltech16 and cached in
# data/cache, both under the working directory (the tiny disk below).
CALTECH = ["--variant", "lenet", "--epochs", "1", "--batch-size", "8", "--threads", "1"]


def test_a_full_disk_while_preparing_caltech_is_one_line_and_leaves_no_half_prepared_images(tmp_path, tiny_disk):
    tree = make_caltech_tree(str(tmp_path / "source"))
    _fill(tiny_disk, leave=64 * 1024)  # a few of the fake JPEGs fit, not all
    failed = _run(tiny_disk, "--data-dir", tree, *CALTECH, check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stdout, failed.stdout
    last = failed.stdout.strip().splitlines()[-1]
    assert last.startswith("error: no space left on device writing data/caltech16; free space there"), last
    assert os.listdir(tiny_disk / "data" / "caltech16") == []  # no images/, no temporaries


def test_a_full_disk_while_caching_resized_images_is_one_line_not_a_bus_error_and_rerun_finishes(tmp_path, tiny_disk):
    tree = make_caltech_tree(str(tmp_path / "source"))
    # 4 MiB hold the prepared JPEGs but not the 224 px cache (about 150 KB an image, ~18 MB); the
    # rerun needs ~230 MB (the article's LeNet at 224 px has 25 M weights: ~190 MB of checkpoints).
    failed = _run(tiny_disk, "--data-dir", tree, *CALTECH, "--image-size", "224", check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stdout, failed.stdout  # was -7: SIGBUS
    assert "no space left on device writing data/cache" in failed.stdout.lower(), failed.stdout
    assert os.listdir(tiny_disk / "data" / "cache") == []  # no half-written entry
    assert len(os.listdir(tiny_disk / "data" / "caltech16" / "images")) == 17  # 16 classes + provenance: kept
    subprocess.run(["mount", "-o", "remount,size=1g", str(tiny_disk)], check=True)  # space freed
    done = _run(tiny_disk, "--data-dir", tree, *CALTECH, "--image-size", "224")
    assert "lenet/s0/caltech16-224px: finished" in done.stdout, done.stdout
