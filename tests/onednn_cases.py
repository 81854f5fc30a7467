"""The oneDNN convs in a process whose paddle has the training flags (oneDNN on, legacy IR): the same
results as paddle's conv, bitwise repeatable. Not collected by itself: tests/test_onednn.py runs this
file in a subprocess started as a training process is (ablations.cli.paddle_environment("train")),
because the pytest process keeps paddle's defaults, which export and Grad-CAM need."""
import os

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_cnns as pc
from paddle_cnns import impl, onednn
from paddle_cnns.onednn import OneDNNConv2D

from test_fast_layers import bn_net, assert_close, assert_same

REASON = onednn.unavailable_reason()
if REASON is not None:  # started without the flags: every case below would test nothing
    raise RuntimeError(f"tests/onednn_cases.py needs the oneDNN route: {REASON}")


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


def test_onednn_conv_keeps_the_batch_gemms_on_small_maps_and_paddle_for_grouped_convs():
    assert OneDNNConv2D(8, 8, 3, padding=1).path(3, 3) == "flat"
    assert OneDNNConv2D(8, 8, 1).path(2, 2) == "flat"
    assert OneDNNConv2D(8, 8, 3, padding=1).path(4, 4) == "onednn"
    grouped = OneDNNConv2D(8, 8, 3, padding=1, groups=2)
    assert grouped.path(16, 16) == "paddle"
    assert_same(grouped, nn.Conv2D(8, 8, 3, padding=1, groups=2),
                np.random.RandomState(0).randn(2, 8, 16, 16).astype("float32"))


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


def test_a_onednn_training_step_matches_with_batch_norm_in_train_mode():
    # In float32 (oneDNN has no float64 convs; paddle's static float64 fallback is not exact
    # either), so within whole-network float32 rounding.
    onednn_net, plain = bn_net("onednn"), bn_net("plain")
    assert OneDNNConv2D in {type(m) for m in onednn_net.sublayers()}
    assert OneDNNConv2D(3, 8, 3, padding=1).path(32, 32) == "onednn"
    plain.set_state_dict(onednn_net.state_dict())
    x = np.random.RandomState(0).randn(4, 3, 32, 32).astype("float32")
    assert_same(onednn_net, plain, x, rtol=1e-4)
    for (k, a), (_, b) in zip(onednn_net.state_dict().items(), plain.state_dict().items()):
        assert_close(a.numpy(), b.numpy(), f"running statistic {k}", rtol=1e-5)
