"""The study runner end to end: real training on small data, VisualDL logs, results, resume, failures."""
import csv
import glob
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import paddle
import pytest
from visualdl import LogReader

from ablations import run as run_cli
from ablations import trainer
from ablations.results import COLUMNS, append_row, read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The smallest real runs: 10 synthetic classes x 4 images, batches of 8 (5 steps an epoch).
TINY = ["--dataset", "synthetic", "--image-size", "32", "--max-per-class", "4", "--batch-size", "8",
        "--lr", "0.01"]


def _cli(tmp, *args):
    return [sys.executable, "-m", "ablations.run", *args, "--logdir", str(tmp / "logs"),
            "--checkpoint-dir", str(tmp / "ckpt"), "--results", str(tmp / "results.csv")]


def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}


def _run(tmp, *args, check=True):
    proc = subprocess.run(_cli(tmp, *args), cwd=tmp, env=_env(), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _scalars(logdir, tag):
    files = glob.glob(os.path.join(logdir, "vdlrecords.*"))
    assert len(files) == 1, files  # VisualDL reads only the newest file of a folder
    return [(r.id, r.value) for r in LogReader(file_path=files[0]).get_data("scalar", tag)]


def _weights(path):
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


@pytest.fixture(scope="module")
def finished(module_dir):
    """One uninterrupted 3-epoch run, shared by the tests that compare against it."""
    tmp = module_dir("finished")
    proc = _run(tmp, "--variant", "all_tricks", "--epochs", "3", "--lr-decay", *TINY)
    return tmp, proc


RUN_ID = "all_tricks+lrdecay/s0/synthetic-32px"


@pytest.mark.slow
def test_first_line_names_recipe_dataset_device_and_threads(finished):
    _, proc = finished
    first = proc.stdout.splitlines()[0]
    assert first.startswith("paddle-cnns cpu recipe (auto: no GPU), dataset synthetic, device cpu, ")
    assert "thread" in first


@pytest.mark.slow
def test_run_logs_shared_scalar_tags_per_epoch_to_visualdl(finished):
    tmp, _ = finished
    logdir = tmp / "logs" / RUN_ID
    loss = _scalars(logdir, "train/loss")
    assert [step for step, _ in loss] == [1, 2, 3]
    for tag in ("train/acc", "eval/loss", "eval/acc", "eval/top5", "eval/balanced_acc", "lr",
                "time/epoch_s", "time/images_per_s"):
        assert [s for s, _ in _scalars(logdir, tag)] == [1, 2, 3], tag
    # x0.1 after 50% and 75% of 3 epochs: both round to 2, so one decay, from epoch 3 on
    lrs = [v for _, v in _scalars(logdir, "lr")]
    assert lrs == pytest.approx([0.01, 0.01, 0.001])
    reader = LogReader(file_path=glob.glob(str(logdir / "vdlrecords.*"))[0])
    assert "hparam" in reader.get_tags().get("hyper_parameters", [])
    assert _scalars(logdir, "hparam/test_acc")[0][0] == 0


@pytest.mark.slow
def test_results_row_holds_tricks_recipe_metrics_and_costs(finished):
    tmp, _ = finished
    df = read_results(str(tmp / "results.csv"))
    assert len(df) == 1
    row = df.iloc[0]
    assert row.run_id == RUN_ID and row.status == "finished" and row.variant == "all_tricks"
    assert bool(row.batch_norm) and bool(row.gap) and not bool(row.double_conv)
    assert (row.dataset, row.image_size, row.epochs, row.batch_size, row.lr, bool(row.lr_decay)) == \
        ("synthetic", 32, 3, 8, 0.01, True)
    assert row.decay_epochs == [2]
    assert row.train_size == 40 and row.eval_size == 40 and row.test_size == 40
    eval_acc = [v for _, v in _scalars(tmp / "logs" / RUN_ID, "eval/acc")]
    assert row.best_eval_acc == pytest.approx(max(eval_acc)) and row.final_eval_acc == pytest.approx(eval_acc[-1])
    assert 0 <= row.test_acc <= 1 and row.test_top5 >= row.test_acc and row.test_split == "test"
    from paddle_cnns.summary import summary
    expected = summary("all_tricks", image_size=32, in_channels=3, num_classes=10)
    assert (row.params, row.macs) == (expected.params, expected.macs)
    assert row.train_time_s > 0 and row.images_per_s > 0
    assert np.array(row.test_confusion).sum() == 40 and len(row.test_per_class_acc) == 10
    assert row.paddle_version == paddle.__version__ and row.device == "cpu"


@pytest.mark.slow
def test_finished_run_is_not_retrained_and_force_retrains(finished, tmp_path):
    tmp, _ = finished
    work = tmp_path / "copy"  # a copy: the finished run stays as it is for the other tests
    shutil.copytree(tmp, work)
    args = ["--variant", "all_tricks", "--epochs", "3", "--lr-decay", *TINY]
    again = _run(work, *args)
    assert "finished (already; --force retrains it)" in again.stdout
    assert "epoch 1/3" not in again.stdout and len(read_results(str(work / "results.csv"))) == 1
    changed = _run(work, "--variant", "all_tricks", "--epochs", "4", "--lr-decay", *TINY, check=False)
    assert changed.returncode == 2 and "other settings (decay_epochs, epochs)" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1
    old_log = glob.glob(str(work / "logs" / RUN_ID / "vdlrecords.*"))
    forced = _run(work, *args, "--force")
    assert "epoch 3/3" in forced.stdout  # trained again, from the start
    assert len(read_results(str(work / "results.csv"))) == 2  # rows are kept; the report takes the latest
    new_log = glob.glob(str(work / "logs" / RUN_ID / "vdlrecords.*"))
    assert len(new_log) == 1 and new_log != old_log


@pytest.mark.slow
def test_a_recorded_run_whose_checkpoint_folder_is_gone_is_not_retrained_over_its_logs(finished, tmp_path):
    # Checkpoints are large and live outside the repository: a user frees the space, or clones
    # the committed results and logs, and runs the study's command again.
    tmp, _ = finished
    work = tmp_path / "copy"
    shutil.copytree(tmp, work)
    shutil.rmtree(work / "ckpt")
    logs = {p: open(p, "rb").read() for p in glob.glob(str(work / "logs" / "**" / "*"), recursive=True)
            if os.path.isfile(p)}
    args = ["--variant", "all_tricks", "--epochs", "3", "--lr-decay", *TINY]
    again = _run(work, *args)
    assert "epoch 1/3" not in again.stdout
    assert f"finished (already: recorded in {work / 'results.csv'}, its checkpoint folder is gone; " \
           "--force retrains it), best eval acc" in again.stdout
    packed = _run(work, *args, "--seeds", "0,1", "--jobs", "2")  # the packed path: seed 0 skipped, seed 1 trains
    assert "started all_tricks+lrdecay/s1" in packed.stdout and "started all_tricks+lrdecay/s0" not in packed.stdout
    for path, data in logs.items():  # the recorded run's curves and predictions, byte for byte
        assert open(path, "rb").read() == data, path
    rows = read_results(str(work / "results.csv"))
    assert list(rows["seed"]) == [0, 1] and not glob.glob(str(work / "ckpt" / RUN_ID / "*.pd*"))
    forced = _run(work, *args, "--force")
    assert "epoch 3/3" in forced.stdout and len(read_results(str(work / "results.csv"))) == 3


def _train_until(tmp, args, fault):
    """Run with a fault injected at a named point (ablations.faults); return exit code and output."""
    proc = subprocess.run(_cli(tmp, *args), cwd=tmp, env={**_env(), "PADDLE_CNNS_FAULT": fault},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return proc.returncode, proc.stdout


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights_metrics_and_log_history(finished, tmp_path):
    ref_tmp, _ = finished
    args = ["--variant", "all_tricks", "--epochs", "3", "--lr-decay", *TINY]
    code, out = _train_until(tmp_path, args, "epoch=2:KILL")  # killed right after epoch 2's checkpoint
    assert code == -signal.SIGKILL and "epoch 2/3" in out and "epoch 3/3" not in out, out
    stopped = _run(tmp_path, *args, check=False)
    assert stopped.returncode == 2 and "--resume" in stopped.stderr  # no silent restart
    resumed = _run(tmp_path, *args, "--resume")
    assert "resuming after epoch" in resumed.stdout
    ref, got = _weights(ref_tmp / "ckpt" / RUN_ID / "final.pdparams"), _weights(tmp_path / "ckpt" / RUN_ID / "final.pdparams")
    assert ref.keys() == got.keys()
    assert all(np.array_equal(ref[k], got[k]) for k in ref)
    for tag in ("train/loss", "eval/acc", "lr"):
        assert _scalars(tmp_path / "logs" / RUN_ID, tag) == _scalars(ref_tmp / "logs" / RUN_ID, tag)
    a = read_results(str(ref_tmp / "results.csv")).iloc[0]
    b = read_results(str(tmp_path / "results.csv")).iloc[0]
    for col in ("best_eval_acc", "final_eval_loss", "final_train_loss", "test_acc", "test_loss"):
        assert a[col] == b[col], col


@pytest.mark.slow
def test_ctrl_c_saves_mid_epoch_and_resume_finishes_identically(finished, tmp_path):
    ref_tmp, _ = finished
    args = ["--variant", "all_tricks", "--epochs", "3", "--lr-decay", *TINY]
    code, out = _train_until(tmp_path, args, "step=7:INT")  # Ctrl-C after step 2 of epoch 2 (5 steps each)
    assert code == 130, out
    assert "--resume" in out and "Traceback" not in out
    state = paddle.load(str(tmp_path / "ckpt" / RUN_ID / "latest.pdckpt"))["state"]
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 7)
    _run(tmp_path, *args, "--resume")
    ref, got = _weights(ref_tmp / "ckpt" / RUN_ID / "final.pdparams"), _weights(tmp_path / "ckpt" / RUN_ID / "final.pdparams")
    assert all(np.array_equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_same_seed_gives_identical_losses_and_packed_sweep_matches_sequential(tmp_path):
    seq, packed = tmp_path / "seq", tmp_path / "packed"
    seq.mkdir()
    packed.mkdir()
    args = ["--variants", "gap,all_tricks", "--epochs", "2", *TINY]
    # One thread per run both ways: with more threads MKL may sum in another order (on AMD CPUs
    # even under MKL_CBWR=AUTO,STRICT, seen on an EPYC), so only equal thread counts are bitwise equal.
    _run(seq, *args, "--jobs", "1", "--threads", "1")
    out = _run(packed, *args, "--jobs", "2", "--threads", "2").stdout
    assert "2 runs, 2 at a time" in out and "summary: 2 of 2 runs finished" in out
    for variant in ("gap", "all_tricks"):
        rid = f"{variant}/s0/synthetic-32px"
        assert _scalars(seq / "logs" / rid, "train/loss") == _scalars(packed / "logs" / rid, "train/loss")
        assert os.path.exists(packed / "ckpt" / rid / "train.log")


def _poison(monkeypatch, epoch, step):
    """Feed a NaN image at (epoch, step) to make the loss non-finite there."""
    real = trainer.make_loader

    def make_loader(dataset, batch_size, *, shuffle, seed=0, epoch=0, **kw):
        loader = real(dataset, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, **kw)
        if not shuffle or epoch != poison_epoch:
            return loader

        class Poisoned:
            def __len__(self):
                return len(loader)

            def __iter__(self):
                for i, (x, y) in enumerate(loader, start=1):
                    yield (x * float("nan") if i == step else x), y
        return Poisoned()
    poison_epoch = epoch
    monkeypatch.setattr(trainer, "make_loader", make_loader)


@pytest.mark.slow
def test_non_finite_loss_stops_within_one_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _poison(monkeypatch, epoch=2, step=3)
    assert run_cli.main(["--variant", "gap", "--epochs", "3", *TINY, "--results", "r.csv"]) == 1
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 2 step 3; lower --lr" in err
    ckpt = paddle.load(str(tmp_path / "checkpoints/gap/s0/synthetic-32px/latest.pdckpt"))
    assert ckpt["state"]["epoch"] == 1 and ckpt["state"]["step_in_epoch"] == 0
    assert all(np.isfinite(np.asarray(v)).all() for v in ckpt["model"].values())
    row = read_results("r.csv").iloc[0]
    assert row.status == "diverged" and "non-finite loss at epoch 2 step 3" in row.error
    assert row.epochs_done == 1


@pytest.mark.slow
def test_one_failing_variant_does_not_stop_the_sweep_and_the_exit_code_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real = trainer.create_model

    def create_model(name, **kw):
        if name == "gap":
            raise RuntimeError("simulated crash")
        return real(name, **kw)
    monkeypatch.setattr(trainer, "create_model", create_model)
    assert run_cli.main(["--variants", "gap,dropout", "--epochs", "1", "--jobs", "1", *TINY,
                         "--results", "r.csv"]) == 1
    out = capsys.readouterr().out
    assert "summary: 1 of 2 runs finished; not finished: gap/s0/synthetic-32px (failed)" in out
    df = read_results("r.csv")
    assert sorted(df.status) == ["failed", "finished"]
    assert "simulated crash" in df[df.variant == "gap"].iloc[0].error
    assert os.path.exists("checkpoints/gap/s0/synthetic-32px/error.log")


@pytest.mark.parametrize("args,message", [
    (["--variant", "resnet50"], "unknown model 'resnet50'"),
    (["--variant", "gap", "--epochs", "-1"], "--epochs must be at least 1"),
    (["--variant", "gap", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--variant", "alexnet", "--image-size", "32"], "--image-size 32 is too small for alexnet"),
    (["--variant", "gap", "--lr", "0"], "--lr must be positive"),
    (["--tricks", "batch_norm,bn"], "unknown trick 'bn'"),
    (["--variant", "gap", "--epochs", "4", "--lr-decay", "--decay-epochs", "5"], "strictly between 0 and"),
    (["--variant", "gap", "--amp"], "--amp needs a GPU"),
    (["--variant", "gap", "--bogus"], "unrecognized arguments: --bogus"),
    (["--variant", "gap", "--logdir", "/proc/forbidden/logs"], "cannot create folders in /proc"),
    (["--variant", "gap", "--results", "/proc/r.csv"], "--results /proc/r.csv"),
    ([], "choose what to train"),
])
def test_bad_flags_give_one_line_exit_2_and_create_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        run_cli.main(args + ["--dataset", "synthetic"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert os.listdir(tmp_path) == []


def _append_many(path, worker, n):
    for i in range(n):
        append_row(path, {"run_id": f"w{worker}/r{i}", "status": "finished", "variant": "gap",
                          "test_confusion": [[i, worker], [1, 2]], "lr": 0.1 * i})


def test_concurrent_appends_to_the_results_store_lose_and_corrupt_nothing(tmp_path):
    path = str(tmp_path / "results.csv")
    procs = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(path, w, 40))
             for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == COLUMNS and len(rows) == 161 and all(len(r) == len(COLUMNS) for r in rows)
    df = read_results(path)
    assert sorted(df.run_id) == sorted(f"w{w}/r{i}" for w in range(4) for i in range(40))
    assert df.set_index("run_id").loc["w3/r7"].test_confusion == [[7, 3], [1, 2]]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_visualdl_server_serves_the_runs_scalars_over_http(finished):
    tmp, _ = finished
    port = _free_port()
    visualdl = os.path.join(os.path.dirname(sys.executable), "visualdl")
    server = subprocess.Popen([visualdl, "--logdir", str(tmp / "logs"), "--host", "127.0.0.1",
                               "--port", str(port), "--language", "en"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                runs = json.load(urllib.request.urlopen(f"{base}/app/api/runs", timeout=5))
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("VisualDL did not start")
        run = next(r for r in runs["data"] if r.endswith(RUN_ID))
        query = urllib.parse.urlencode({"run": run, "tag": "train/loss"})
        data = json.load(urllib.request.urlopen(f"{base}/app/api/scalar/list?{query}", timeout=10))["data"]
        served = [(int(point[1]), point[2]) for point in data]
        logged = _scalars(tmp / "logs" / RUN_ID, "train/loss")
        assert [s for s, _ in served] == [s for s, _ in logged]
        assert [v for _, v in served] == pytest.approx([v for _, v in logged])
        page = urllib.request.urlopen(f"{base}/app/index", timeout=10)
        assert page.status == 200  # the README's --language en: without it the page answers 500
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_readme_main_job_runs_on_real_caltech16_and_is_logged(real_archive, tmp_path):
    """The README's main-job command on the real archive, at a CI-sized scale."""
    proc = _run(tmp_path, "--variant", "all_tricks", "--lr-decay", "--data-dir", real_archive,
                "--image-size", "32", "--epochs", "2", "--max-per-class", "6")
    assert "dataset caltech16" in proc.stdout.splitlines()[0]
    rid = "all_tricks+lrdecay/s0/caltech16-32px"
    assert [s for s, _ in _scalars(tmp_path / "logs" / rid, "eval/acc")] == [1, 2]
    row = read_results(str(tmp_path / "results.csv")).iloc[0]
    assert row.status == "finished" and row.dataset == "caltech16" and row.num_classes == 16
    assert row.train_size == 96 and row.class_names[0] == "airplanes"
    assert row.test_size == 16 * 6 and 0 <= row.test_acc <= 1
