"""Beyond one device: data-parallel runs over gloo on this CPU (2 processes), loopback multi-node, GPU sweep scheduling."""
import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from visualdl import LogReader

from ablations import launch, trainer
from ablations import run as run_cli
from ablations.config import Session
from ablations.console import StopFlag
from ablations.devices import DevicePool, jobs_for, parse_devices, worker_env
from ablations.results import read_results
from ablations.sweep import run_packed
from paddle_cnns.data import ArrayDataset, make_loader
from paddle_cnns.distributed import World
from paddle_cnns.engine import PeerLost
from paddle_cnns.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# LeNet has no BatchNorm and no dropout: 2 ranks x half batches must equal 1 process x whole batches.
# 40 images in global batches of 7: five batches split 4 + 3 over two ranks, the last (5) 3 + 2,
# so uneven slices are covered too.
TINY = ["--variant", "lenet", "--dataset", "synthetic", "--image-size", "32", "--max-per-class", "4",
        "--batch-size", "7", "--lr", "0.05", "--epochs", "3"]
RUN_ID = "lenet/s0/synthetic-32px"


def _env(**extra):
    return {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1", **extra}


def _outputs(tmp):
    return ["--logdir", str(tmp / "logs"), "--checkpoint-dir", str(tmp / "ckpt"), "--results", str(tmp / "results.csv")]


def _run(tmp, *args, env=None):
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "ablations.run", *args, *_outputs(tmp)], cwd=tmp,
                          env=env or _env(), capture_output=True, text=True, timeout=900)


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _history(tmp, tag):
    files = glob.glob(str(tmp / "logs" / RUN_ID / "vdlrecords.*"))
    assert len(files) == 1, files
    return [r.value for r in LogReader(file_path=files[0]).get_data("scalar", tag)]


def _weights(tmp):
    return {k: np.asarray(v) for k, v in paddle.load(str(tmp / "ckpt" / RUN_ID / "final.pdparams")).items()}


@pytest.fixture(scope="module")
def one_process(module_dir):
    """The reference: one process, global batch 7, one thread (each rank below has one too)."""
    tmp = module_dir("one")
    return tmp, _ok(_run(tmp, *TINY, "--threads", "1"))


@pytest.fixture(scope="module")
def two_ranks(module_dir):
    """The same run data parallel: 2 processes over gloo, started by the --nproc-per-node shorthand."""
    tmp = module_dir("two")
    return tmp, _ok(_run(tmp, *TINY, "--nproc-per-node", "2"))


# ------------------------------------------------------------------ data-parallel runs, end to end

@pytest.mark.slow
def test_two_ranks_with_half_batches_match_one_process_with_the_whole_batch(one_process, two_ranks):
    (one, _), (two, _) = one_process, two_ranks
    for tag in ("train/loss", "train/acc", "eval/loss", "eval/acc"):
        assert _history(two, tag) == pytest.approx(_history(one, tag), rel=1e-5, abs=1e-6), tag
    losses = _history(one, "train/loss")
    assert max(losses) - min(losses) > 1e-3  # the weights moved far more than the tolerance: the match means something
    a, b = _weights(one), _weights(two)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_data_parallel_run_records_one_row_with_world_size_and_one_visualdl_history(two_ranks):
    tmp, proc = two_ranks
    df = read_results(str(tmp / "results.csv"))
    assert len(df) == 1
    row = df.iloc[0]
    assert row.status == "finished" and row.world_size == 2 and row.per_device_batch == 4 and row.batch_size == 7
    assert not bool(row.sync_bn)  # no SyncBatchNorm on a CPU
    assert len(glob.glob(str(tmp / "logs" / RUN_ID / "vdlrecords.*"))) == 1
    assert len(_history(tmp, "train/loss")) == 3
    assert np.array(row.test_confusion).sum() == 40  # evaluation counted every test image once, over both ranks
    assert proc.stdout.count("epoch 3/3") == 1 and "data parallel over 2 processes" in proc.stdout
    assert "LAUNCH" not in proc.stdout and proc.stderr.strip() == ""


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_with_one_line_and_resume_finishes_it(two_ranks, tmp_path):
    ref, _ = two_ranks
    # Rank 1 dies (SIGKILL) after global step 7 (epoch 2, step 1); rank 0's next all_reduce fails.
    killed = _run(tmp_path, *TINY, "--nproc-per-node", "2", env=_env(PADDLE_CNNS_FAULT="step=7@1:KILL"))
    assert killed.returncode == 1, killed.stdout + killed.stderr
    lines = killed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rank 1 of 2 stopped") and "--resume" in lines[0]
    assert not (tmp_path / "results.csv").exists()  # no row for a run that did not end
    saved = paddle.load(str(tmp_path / "ckpt" / RUN_ID / "latest.pdckpt"))
    assert saved["state"]["global_step"] == 7  # rank 0 saved at the last step both ranks finished
    resumed = _ok(_run(tmp_path, *TINY, "--nproc-per-node", "2", "--resume"))
    assert "resuming after epoch" in resumed.stdout
    assert len(read_results(str(tmp_path / "results.csv"))) == 1
    assert _history(tmp_path, "train/loss") == pytest.approx(_history(ref, "train/loss"), rel=1e-6)
    a, b = _weights(ref), _weights(tmp_path)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-7, err_msg=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_launchers_on_loopback_train_one_run_as_two_nodes(two_ranks, tmp_path):
    """Multi-node: paddle's launcher on each 'node' (--nnodes 2 --master), both on 127.0.0.1."""
    ref, _ = two_ranks
    master = f"127.0.0.1:{_free_port()}"
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nnodes", "2", "--master", master, "--rank",
               str(node), "--nproc_per_node", "1", "--log_dir", str(tmp_path / f"launch{node}"),
               sys.executable, "-m", "ablations.run", *TINY, *_outputs(tmp_path)]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outs)
    df = read_results(str(tmp_path / "results.csv"))
    assert len(df) == 1 and df.iloc[0].world_size == 2
    a, b = _weights(ref), _weights(tmp_path)
    for name in a:  # the same global batches: equal to the one-machine run (threads may differ)
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_on_a_cpu_each_rank_normalises_batchnorm_over_its_own_shard(tmp_path):
    """No SyncBatchNorm on a CPU: the first step's loss is the mean of the two shards' losses,
    each with BatchNorm statistics of its own 5 images, not the loss of the batch of 10."""
    args = ["--variant", "baseline", "--dataset", "synthetic", "--image-size", "32", "--max-per-class", "1",
            "--batch-size", "10", "--epochs", "1", "--lr", "0.01"]
    _ok(_run(tmp_path, *args, "--nproc-per-node", "2"))
    row = read_results(str(tmp_path / "results.csv")).iloc[0]
    assert row.per_device_batch == 5
    cfg = run_cli.plan(run_cli.build_parser().parse_args(args + _outputs(tmp_path)), on_gpu=False)[0]
    bundle = trainer.load_data(cfg)
    with paddle.utils.unique_name.guard():
        model = trainer.build(cfg, bundle).model
    model.train()
    order = np.random.default_rng([cfg.seed, 1]).permutation(len(bundle.train))  # epoch 1's batch order

    def loss(indices):
        x, y = bundle.train.get_batch(indices)
        return float(F.cross_entropy(model(paddle.to_tensor(x)), paddle.to_tensor(y)))
    per_shard = np.mean([loss(half) for half in np.array_split(order, 2)])
    whole = loss(order)
    assert abs(per_shard - whole) > 1e-3  # the two readings are far enough apart to tell
    assert row.final_train_loss == pytest.approx(per_shard, rel=1e-4)


# ------------------------------------------------------------------ pieces, in this process

def _dataset(n):
    return ArrayDataset(np.zeros((n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 3, [0.5], [0.25])


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_take_disjoint_slices_that_cover_each_global_batch(world_size):
    data = _dataset(23)
    whole = list(make_loader(data, 8, shuffle=True, seed=4, epoch=2).batches())
    parts = [list(make_loader(data, 8, shuffle=True, seed=4, epoch=2, rank=r, world_size=world_size).batches())
             for r in range(world_size)]
    assert all(len(p) == len(whole) == 3 for p in parts)  # 23 = 8 + 8 + 7: every rank has a slice of each
    for step, batch in enumerate(whole):
        slices = [p[step] for p in parts]
        assert np.array_equal(np.concatenate(slices), batch)  # contiguous, in rank order, nothing twice
        assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_a_last_batch_smaller_than_the_ranks_is_left_out_of_training_but_not_of_evaluation():
    data = _dataset(17)  # 8 + 8 + 1: the last training batch cannot give both ranks an image
    train = [make_loader(data, 8, shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    assert len(train[0]) == len(train[1]) == 2 and len(make_loader(data, 8, shuffle=True)) == 3
    assert sum(len(b) for t in train for b in t.batches()) == 16
    evaluation = [list(make_loader(data, 8, shuffle=False, rank=r, world_size=2).batches()) for r in (0, 1)]
    assert sorted(np.concatenate(evaluation[0] + evaluation[1]).tolist()) == list(range(17))


def test_a_failed_collective_becomes_peer_lost_and_other_errors_pass_through():
    world = World(rank=1, size=2)
    with pytest.raises(PeerLost, match="rank 1 of 2: the gradient all-reduce failed - another process"):
        with world.guard("the gradient all-reduce"):
            raise RuntimeError("[/paddle/third_party/gloo/gloo/transport/tcp/pair.cc:584] TIMEOUT self_rank = 1")
    with pytest.raises(RuntimeError, match="out of memory"):
        with world.guard("the gradient all-reduce"):
            raise RuntimeError("out of memory")


def test_stop_flag_ignores_the_launchers_repeated_sigterm_but_not_a_second_ctrl_c():
    import signal

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = StopFlag().install()
        for _ in range(3):  # paddle.distributed.launch sends up to three, 0.2 s apart
            os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def test_shorthand_runs_paddles_launcher_with_this_interpreter_and_the_other_flags():
    argv = ["--variant", "lenet", "--nproc-per-node", "2", "--epochs=1", "--nproc-per-node=2"]
    cmd = launch.launcher_argv(argv, 2, "ckpt/launch", devices="0,1")
    assert cmd[:3] == [sys.executable, "-m", "paddle.distributed.launch"]
    assert cmd[3:9] == ["--nproc_per_node", "2", "--log_dir", "ckpt/launch", "--devices", "0,1"]
    assert cmd[9:] == [sys.executable, "-m", "ablations.run", "--variant", "lenet", "--epochs=1"]


# ------------------------------------------------------------------ sweeps across GPUs: the scheduling

def test_device_pool_gives_each_worker_the_least_busy_gpu_and_takes_it_back():
    pool = DevicePool([2, 0])
    assert [pool.acquire(), pool.acquire(), pool.acquire()] == [2, 0, 2]  # one each, then sharing
    pool.release(0)
    assert pool.acquire() == 0
    assert DevicePool(None).acquire() is None and DevicePool([]).acquire() is None
    assert worker_env(3) == {"CUDA_VISIBLE_DEVICES": "3"} and worker_env(None) == {}


def test_device_choice_and_jobs_follow_devices_and_refuse_what_cannot_work():
    assert parse_devices(None, 4) == [0, 1, 2, 3] and parse_devices("3,1", 4) == [3, 1]
    for bad, message in (("1,1", "distinct"), ("4", "GPUs 0-3"), ("a", "GPU ids")):
        with pytest.raises(UsageError, match=message):
            parse_devices(bad, 4)
    assert jobs_for(None, runs=40, threads=8, gpus=[0, 1, 2, 3], data_parallel=False) == 4  # one run per GPU
    assert jobs_for(None, runs=3, threads=2, gpus=[], data_parallel=False) == 2  # CPU packing as before
    assert jobs_for(None, runs=3, threads=2, gpus=[], data_parallel=True) == 1
    with pytest.raises(UsageError, match="use one of them"):
        jobs_for(2, runs=3, threads=2, gpus=[], data_parallel=True)


# A stand-in worker: it records the environment the scheduler gave it as the run's outcome, so
# the real scheduler (processes, slots, logs) is exercised without a GPU.
_RECORDER = ("import json, os, sys, time; start = time.time(); time.sleep(0.5); "
             "json.dump({'run_id': os.path.relpath(os.path.dirname(sys.argv[1]), sys.argv[2]), 'status': 'finished', "
             "'best_eval_acc': 0.0, 'cuda': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': start, "
             "'end': time.time()}, open(os.path.join(os.path.dirname(sys.argv[1]), 'outcome.json'), 'w'))")


def test_a_packed_sweep_on_gpus_gives_each_worker_one_visible_device(tmp_path, capsys):
    args = ["--variants", "lenet,gap,baseline", "--dataset", "synthetic", "--image-size", "32", "--epochs", "1",
            *_outputs(tmp_path)]
    runs = run_cli.plan(run_cli.build_parser().parse_args(args), on_gpu=False)
    session = Session(logdir=str(tmp_path / "logs"), checkpoint_dir=str(tmp_path / "ckpt"),
                      results=str(tmp_path / "results.csv"), device="gpu", threads=2)
    outcomes = run_packed(runs, session, 2, StopFlag(), devices=[1, 0],
                          command=lambda config, s: [sys.executable, "-c", _RECORDER, config, s.checkpoint_dir])
    got = {o["run_id"]: o for o in outcomes}
    first, second, third = (got[cfg.run_id] for cfg in runs)
    assert (first["cuda"], second["cuda"]) == ("1", "0")  # two workers at once, one GPU each
    previous = first if third["cuda"] == first["cuda"] else second
    assert third["cuda"] == previous["cuda"] and third["start"] >= previous["end"]  # never two runs on one GPU
    assert "(GPU 1, 1 thread;" in capsys.readouterr().out
    assert json.load(open(tmp_path / "ckpt" / runs[0].run_id / "config.json"))["variant"] == "lenet"


def test_devices_without_a_gpu_and_jobs_with_data_parallelism_are_one_line_errors(tmp_path):
    for extra, words in ((["--devices", "0"], "--devices chooses GPUs"),
                         (["--jobs", "2", "--nproc-per-node", "2"], "use one of them")):
        proc = _run(tmp_path, *TINY, *extra)
        assert proc.returncode == 2 and words in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ckpt").exists()
