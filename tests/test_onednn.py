"""The oneDNN convs: same results as paddle's conv, really run by oneDNN, chosen by an argument,
in processes started as training processes are (the pytest process keeps paddle's defaults)."""
import os
import subprocess
import sys

import paddle
import pytest

import paddle_cnns as pc
from paddle_cnns import impl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the oneDNN route exists at all (paddle 3 with oneDNN); paddle 2.6 uses the fast layers.
ONEDNN_BUILD = (int(paddle.__version__.split(".")[0]) >= 3
                and getattr(paddle.base.core, "is_compiled_with_mkldnn", lambda: False)())
needs_onednn = pytest.mark.skipif(not ONEDNN_BUILD, reason=f"paddle {paddle.__version__} has no oneDNN route")
TRAINING = 'from ablations import cli\ncli.paddle_environment("train")\n'


def test_auto_is_plain_on_a_gpu_and_fast_where_onednn_cannot_run(monkeypatch):
    monkeypatch.setattr(paddle, "get_device", lambda: "gpu:0")
    assert impl.resolve("auto")[0] == "plain"
    monkeypatch.setattr(paddle, "get_device", lambda: "cpu")
    monkeypatch.setattr(paddle, "__version__", "2.6.2")
    kind, why = impl.resolve("auto")
    assert kind == "fast" and "paddle 2.6.2" in why
    with pytest.raises(pc.UsageError, match="oneDNN layers cannot run here: paddle 2.6.2"):
        impl.resolve("onednn")


def _python(code, **env):
    """Run `code` in a fresh python from the repo root with no FLAGS_* inherited, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGS_", "ONEDNN_", "MKL_CBWR"))}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, "PYTHONPATH": ROOT, **env},
                          capture_output=True, text=True, timeout=300)


def test_training_entry_points_set_paddles_flags_before_paddle_is_imported_and_exporting_ones_clear_them():
    proc = _python("import os, sys\nimport ablations\nassert 'paddle' not in sys.modules\n"
                   "print(os.environ.get('FLAGS_use_mkldnn'), os.environ['MKL_CBWR'])\n" + TRAINING +
                   "print(os.environ['FLAGS_use_mkldnn'], os.environ['FLAGS_enable_pir_api'])\n"
                   "from paddle_cnns import impl\nprint(impl.resolve('auto')[0])")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split("\n")
    assert lines[0] == "None AUTO,STRICT"  # the library alone keeps paddle's defaults
    assert lines[1] == "1 0"
    assert lines[2] == ("onednn" if ONEDNN_BUILD else "fast")
    # An exporting process started by a training one (inheriting its flags) takes them out again.
    proc = _python("import os\nfrom ablations import cli\ncli.paddle_environment('export')\n"
                   "print(os.environ.get('FLAGS_use_mkldnn'), os.environ.get('FLAGS_enable_pir_api'))",
                   FLAGS_use_mkldnn="1", FLAGS_enable_pir_api="0")
    assert proc.returncode == 0 and proc.stdout.strip() == "None None", proc.stdout + proc.stderr[-2000:]
    # Without them (paddle imported first), auto falls back to the fast layers and says why.
    proc = _python("import paddle\nfrom paddle_cnns import impl\nprint(impl.resolve('auto'))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'fast'" in proc.stdout and "before paddle is imported" in proc.stdout


TRAIN_STEP = TRAINING + """
import paddle
import paddle_cnns as pc
from paddle_cnns import engine
paddle.seed(0)
model = pc.create_model("all_tricks", num_classes=4, image_size=32)
print("layers:", model.layers, flush=True)
sched = engine.piecewise_decay(0.01, 1, 1)
opt = engine.make_optimizer("momentum", model.parameters(), sched)
batch = [(paddle.randn([4, 3, 32, 32]), paddle.to_tensor([0, 1, 2, 3]))]
for row in engine.fit(model, opt, sched, lambda epoch: batch, batch, 1, 4):
    print("loss:", row["train_loss"], flush=True)
"""


@needs_onednn
def test_a_default_training_step_runs_its_convs_as_onednn_primitives():
    proc = _python(TRAIN_STEP, ONEDNN_VERBOSE="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "layers: onednn" in proc.stdout
    executed = [line.split(",") for line in proc.stdout.splitlines() if line.startswith("onednn_verbose,")
                and ",exec," in line and ",convolution," in line]
    kinds = {field for line in executed for field in line
             if field in ("forward_training", "forward_inference", "backward_data", "backward_weights")}
    assert {"backward_data", "backward_weights"} <= kinds and kinds & {"forward_training", "forward_inference"}


@needs_onednn
def test_onednn_layers_match_paddles_and_repeat_bitwise_in_a_training_process():
    # tests/onednn_cases.py, run as its own pytest in a process started as a training one is.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGS_", "ONEDNN_"))}
    env.update(FLAGS_use_mkldnn="1", FLAGS_enable_pir_api="0", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join("tests", "onednn_cases.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout and " skipped" not in proc.stdout
