"""The oneDNN convs: same results as paddle's conv, really run by oneDNN, chosen by an argument."""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_cnns as pc
from paddle_cnns import impl, onednn
from paddle_cnns.onednn import OneDNNConv2D

from test_fast_layers import assert_close, assert_same

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_onednn = pytest.mark.skipif(onednn.unavailable_reason() is not None,
                                  reason=f"no oneDNN route here: {onednn.unavailable_reason()}")

# (batch, in, out, height, width, kernel, stride, padding, dilation, bias): the convs the models
# run on 4x4 outputs and up: 3x3 (VGG, trick CNN's conv3x3, Inception), 5x5 (trick CNN,
# Inception), GoogLeNet's 7x7/2 and AlexNet's 11x11/4 stems, 1x1 above the GEMM threshold,
# dilation, non-square maps, bias or not.
CONVS = [
    (2, 8, 16, 4, 4, 3, 1, 1, 1, True),
    (2, 16, 8, 4, 4, 1, 1, 0, 1, False),
    (2, 8, 16, 8, 8, 3, 1, 1, 1, True),
    (2, 16, 8, 16, 16, 3, 1, 1, 1, False),
    (2, 4, 6, 12, 12, 5, 1, 2, 1, True),
    (2, 3, 8, 32, 32, 7, 2, 3, 1, False),
    (2, 3, 6, 35, 35, 11, 4, 2, 1, True),
    (2, 8, 6, 20, 20, 1, 1, 0, 1, True),
    (2, 4, 6, 12, 12, 3, 1, 2, 2, True),
    (2, 4, 6, 9, 13, 3, 1, 1, 1, True),
]


@needs_onednn
@pytest.mark.parametrize("n,cin,cout,h,w,k,stride,pad,dil,bias", CONVS)
def test_onednn_conv_matches_paddle_conv_outputs_and_both_gradients(n, cin, cout, h, w, k, stride, pad, dil, bias):
    paddle.seed(0)
    args = dict(stride=stride, padding=pad, dilation=dil, bias_attr=None if bias else False)
    conv, plain = OneDNNConv2D(cin, cout, k, **args), nn.Conv2D(cin, cout, k, **args)
    assert conv.path(h, w) == "onednn"
    if bias:
        conv.bias.set_value(paddle.randn([cout]))
    x = np.random.RandomState(0).randn(n, cin, h, w).astype("float32")
    assert_same(conv, plain, x)                     # forward, backward data, backward weights
    assert_same(conv, plain, x, input_grad=False)   # a first layer: weights only
    plain.set_state_dict(conv.state_dict())
    with paddle.no_grad():                          # evaluation
        t = paddle.to_tensor(x)
        assert_close(conv(t).numpy(), plain(t).numpy(), "no_grad output")


@needs_onednn
def test_onednn_conv_keeps_the_batch_gemms_on_small_maps_and_paddle_for_grouped_convs():
    assert OneDNNConv2D(8, 8, 3, padding=1).path(3, 3) == "flat"
    assert OneDNNConv2D(8, 8, 1).path(2, 2) == "flat"
    assert OneDNNConv2D(8, 8, 3, padding=1).path(4, 4) == "onednn"
    grouped = OneDNNConv2D(8, 8, 3, padding=1, groups=2)
    assert grouped.path(16, 16) == "paddle"
    assert_same(grouped, nn.Conv2D(8, 8, 3, padding=1, groups=2),
                np.random.RandomState(0).randn(2, 8, 16, 16).astype("float32"))


@needs_onednn
def test_convs_first_run_without_autograd_still_train_at_the_same_shape():
    # create_model's output_shape runs the layers once, eval mode, no_grad, on one image; a
    # batch of one then trains at that very shape (LeNet at 28 px in tests/test_models.py).
    from paddle_cnns.layers import conv2d, max_pool2d, output_shape

    def lenet_start(kind):
        with impl.building_with(kind):
            paddle.seed(0)
            return nn.Sequential(conv2d(1, 6, 5, 1, 0, True), nn.Sigmoid(), max_pool2d(2, 2),
                                 conv2d(6, 16, 5, 1, 0, True), nn.Sigmoid())
    net = lenet_start("onednn")
    assert output_shape(net, 1, 28) == [16, 8, 8]
    x = np.random.RandomState(0).randn(1, 1, 28, 28).astype("float32")
    assert_same(net, lenet_start("plain"), x, input_grad=False)  # the images need no gradient
    assert_same(net, lenet_start("plain"), x)


@needs_onednn
@pytest.mark.parametrize("name,size", [("googlenet", 64), ("all_tricks", 64), ("vgg11_bn", 32), ("alexnet", 63)])
def test_models_built_with_onednn_layers_match_plain_layers(name, size):
    paddle.seed(0)
    model = pc.create_model(name, num_classes=5, image_size=size, layers="onednn")
    paddle.seed(0)
    plain = pc.create_model(name, num_classes=5, image_size=size, layers="plain")
    assert model.layers == "onednn"
    assert any(m.path(size, size) == "onednn" for m in model.sublayers() if isinstance(m, OneDNNConv2D))
    assert list(model.state_dict()) == list(plain.state_dict())  # checkpoints move between them
    plain.set_state_dict(model.state_dict())
    model.eval(), plain.eval()
    assert_same(model, plain, np.random.RandomState(0).randn(2, 3, size, size).astype("float32"), rtol=1e-4)


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


def test_importing_ablations_sets_paddles_flags_before_paddle_is_imported():
    proc = _python("import os, sys\nimport ablations\nassert 'paddle' not in sys.modules\n"
                   "print(os.environ['FLAGS_use_mkldnn'], os.environ['FLAGS_enable_pir_api'], os.environ['MKL_CBWR'])\n"
                   "from paddle_cnns import impl\nprint(impl.resolve('auto')[0])")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split("\n")
    assert lines[0] == "1 0 AUTO,STRICT"
    assert lines[1] == ("onednn" if onednn.unavailable_reason() is None else "fast")
    # Without them (paddle imported first), auto falls back to the fast layers and says why.
    proc = _python("import paddle\nfrom paddle_cnns import impl\nprint(impl.resolve('auto'))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'fast'" in proc.stdout and "before paddle is imported" in proc.stdout


TRAIN_STEP = """
import ablations
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


def _two_steps(layers, threads):
    from paddle_cnns import engine
    from paddle_cnns.runtime import set_threads

    set_threads(threads)
    try:
        with paddle.utils.unique_name.guard():
            paddle.seed(0)
            model = pc.create_model("all_tricks", num_classes=4, image_size=32, layers=layers)
            sched = engine.piecewise_decay(0.01, 1, 2)
            opt = engine.make_optimizer("momentum", model.parameters(), sched)
            rng = np.random.RandomState(0)
            batches = [(paddle.to_tensor(rng.randn(8, 3, 32, 32).astype("float32")),
                        paddle.to_tensor(rng.randint(0, 4, 8))) for _ in range(2)]
            losses = []  # the running loss sum after each step, then every weight's bytes
            list(engine.fit(model, opt, sched, lambda epoch: batches, batches[:1], 1, 4,
                            on_step=lambda state: losses.append(state.partial["loss_sum"])))
            return losses + [v.numpy().tobytes() for v in model.state_dict().values()]
    finally:
        set_threads()


@needs_onednn
def test_same_seed_same_numbers_twice_and_the_fast_layers_at_any_thread_count():
    # Bitwise: the library-level twin of the runner's resume and packing checks.
    assert _two_steps("onednn", 2) == _two_steps("onednn", 2)
    assert _two_steps("onednn", 1) == _two_steps("onednn", 1)
    # MKL_CBWR=AUTO,STRICT (set by importing ablations) makes MKL's sums independent of the
    # thread count; oneDNN's weight gradient is not (paddle_cnns.onednn's docstring).
    assert os.environ.get("MKL_CBWR") == "AUTO,STRICT"
    assert _two_steps("fast", 1) == _two_steps("fast", 2)


def test_fast_and_onednn_layers_fall_back_to_paddles_conv_inside_a_traced_model():
    # paddle.jit traces (export) see paddle's own ops: no nested static functions or PyLayers.
    with impl.building_with("fast"):
        paddle.seed(0)
        net = nn.Sequential(pc.layers.conv2d(3, 4, 3, padding=1), pc.layers.max_pool2d(2, 2))
    x = paddle.randn([2, 3, 8, 8])
    net.eval()
    eager = net(x).numpy()
    traced = paddle.jit.to_static(net, full_graph=True)
    assert_close(traced(x).numpy(), eager, "traced output")
