"""A smoke run that CI also repeats on paddlepaddle 2.6.2 (numpy 1.26): the GPU users' version.

Kept small: every model trains one step, the loop resumes exactly, and the README's main job
runs end to end on real data. The full suite runs on paddle 3.x.
"""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import paddle_cnns as pc
from paddle_cnns import checkpoint, engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", pc.list_models())
def test_every_model_takes_a_training_step_at_its_minimum_size(name):
    size = max(32, pc.get_spec(name).min_size)
    paddle.seed(0)
    model = pc.create_model(name, num_classes=3, in_channels=3, image_size=size)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    out = model(paddle.randn([2, 3, size, size]))
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits, paddle.to_tensor([0, 2]))
    loss.backward()
    opt.step()
    assert np.isfinite(float(loss))


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 3, 32, 32)).astype("float32")
    y = np.arange(48) % 4
    x[np.arange(48), y % 3, :8, :8] += 2.0
    return x, y


def _batches(x, y):
    def epoch_batches(epoch):
        order = np.random.default_rng([0, epoch]).permutation(len(x))
        for i in range(0, len(x), 16):
            idx = order[i:i + 16]
            yield paddle.to_tensor(x[idx]), paddle.to_tensor(y[idx].astype("int64"))
    return epoch_batches


class _Eval:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        yield paddle.to_tensor(self.x[:16]), paddle.to_tensor(self.y[:16].astype("int64"))


def _build():
    paddle.seed(0)
    model = pc.create_model("concat_conv", num_classes=4, image_size=32)  # dropout: RNG matters
    sched = engine.piecewise_decay(0.01, 3, 3, (2,))
    return model, engine.make_optimizer("momentum", model.parameters(), sched), sched


@pytest.mark.slow
def test_a_run_stopped_after_an_epoch_resumes_to_identical_weights(tmp_path):
    x, y = _data()
    with paddle.utils.unique_name.guard():
        model, opt, sched = _build()
        list(engine.fit(model, opt, sched, _batches(x, y), _Eval(x, y), 3, 4))
        ref = {k: v.numpy() for k, v in model.state_dict().items()}
    with paddle.utils.unique_name.guard():
        model, opt, sched = _build()
        state = engine.TrainState()
        list(engine.fit(model, opt, sched, _batches(x, y), _Eval(x, y), 1, 4, state))
        checkpoint.save_checkpoint(str(tmp_path / "latest.pdckpt"), model, opt, sched, state, 0, {})
    paddle.seed(123)
    with paddle.utils.unique_name.guard():
        model, opt, sched = _build()
        state = checkpoint.restore(checkpoint.load_checkpoint(str(tmp_path / "latest.pdckpt")), model, opt, sched)
        list(engine.fit(model, opt, sched, _batches(x, y), _Eval(x, y), 3, 4, state))
    for k, v in model.state_dict().items():
        assert np.array_equal(ref[k], v.numpy()), k


@pytest.mark.slow
def test_the_readme_main_job_runs_on_real_data(real_archive, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ablations.run", "--variant", "all_tricks", "--lr-decay",
         "--data-dir", real_archive, "--image-size", "32", "--epochs", "1", "--max-per-class", "4",
         "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt"),
         "--results", str(tmp_path / "results.csv")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"paddle {paddle.__version__}" in proc.stdout.splitlines()[0]
    assert "all_tricks+lrdecay/s0/caltech16-32px: finished" in proc.stdout
