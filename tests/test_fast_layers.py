"""Every fast layer is a drop-in: the plain paddle layer's parameters, outputs and gradients."""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_cnns as pc
from paddle_cnns import fast, impl
from paddle_cnns.summary import summary


def assert_close(actual, expected, what, rtol=1e-5):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def run_both(fast_layer, plain_layer, x_np, input_grad=True):
    """Forward and backward (a fixed random upstream gradient) through both layers."""
    plain_layer.set_state_dict(fast_layer.state_dict())
    results = []
    for layer in (fast_layer, plain_layer):
        x = paddle.to_tensor(x_np, stop_gradient=not input_grad)
        y = layer(x)
        upstream = paddle.to_tensor(np.random.RandomState(1).randn(*y.shape).astype(x_np.dtype))
        paddle.autograd.backward([y], [upstream])
        grads = {name: p.grad.numpy() for name, p in layer.named_parameters() if p.grad is not None}
        results.append((y.numpy(), x.grad.numpy() if input_grad else None, grads))
        layer.clear_gradients()
    return results


def assert_same(fast_layer, plain_layer, x_np, input_grad=True, rtol=1e-5):
    """Equal within float32 rounding; whole networks sum in other orders through many layers,
    so they get rtol 1e-4 (of the largest magnitude) instead of a layer's 1e-5."""
    (y1, dx1, g1), (y2, dx2, g2) = run_both(fast_layer, plain_layer, x_np, input_grad)
    assert_close(y1, y2, "output", rtol)
    if input_grad:
        assert_close(dx1, dx2, "input gradient", rtol)
    trainable = sorted(n for n, p in plain_layer.named_parameters() if not p.stop_gradient)
    assert sorted(g1) == sorted(g2) == trainable  # BatchNorm's running statistics have none
    for name in g2:
        assert_close(g1[name], g2[name], f"gradient of {name}", rtol)


# (batch, in, out, height, width, kernel, stride, padding, dilation, bias): every path of
# FastConv2D: flat GEMM (outputs < 64 px), batched GEMM (1x1 convs on 64-256 px, both ways of
# their weight gradient), paddle's conv (the rest; one-pixel maps on paddle 2.6's fold);
# direct and strided 1x1, 5x5, 11x11/4 (AlexNet's conv1), dilation, non-square, one-pixel maps.
CONVS = [
    (4, 8, 16, 6, 6, 3, 1, 1, 1, True),
    (2, 4, 6, 9, 9, 3, 1, 1, 1, True),
    (2, 4, 6, 2, 2, 3, 1, 1, 1, True),
    (2, 4, 6, 3, 3, 3, 2, 1, 1, False),
    (2, 5, 3, 4, 4, 5, 1, 2, 1, True),
    (4, 8, 16, 6, 6, 3, 1, 1, 1, False),
    (3, 16, 8, 20, 20, 3, 1, 1, 1, True),
    (4, 8, 16, 7, 7, 1, 1, 0, 1, True),
    (4, 8, 16, 24, 24, 1, 1, 0, 1, True),
    (3, 8, 16, 10, 10, 1, 1, 0, 1, True),
    (2, 8, 16, 16, 16, 1, 1, 0, 1, False),
    (2, 8, 6, 9, 9, 1, 2, 0, 1, True),
    (3, 5, 7, 9, 9, 5, 2, 2, 1, False),
    (2, 3, 6, 35, 35, 11, 4, 2, 1, True),
    (2, 4, 6, 8, 8, 3, 1, 2, 2, True),
    (2, 4, 6, 5, 9, 3, 1, 1, 1, True),
    (3, 6, 4, 1, 1, 3, 1, 1, 1, True),
    (3, 6, 4, 2, 2, 5, 1, 2, 1, True),
]


def test_the_conv_cases_cover_every_path():
    paths = {fast.FastConv2D(cin, cout, k, stride, pad, dil).path(h, w)
             for n, cin, cout, h, w, k, stride, pad, dil, bias in CONVS}
    assert paths == {"flat", "batched", "paddle"}


@pytest.mark.parametrize("n,cin,cout,h,w,k,stride,pad,dil,bias", CONVS)
def test_fast_conv_matches_paddle_conv_outputs_and_gradients(n, cin, cout, h, w, k, stride, pad, dil, bias):
    paddle.seed(0)
    args = dict(stride=stride, padding=pad, dilation=dil, bias_attr=None if bias else False)
    fast_conv, plain = fast.FastConv2D(cin, cout, k, **args), nn.Conv2D(cin, cout, k, **args)
    if bias:  # a non-zero bias, so its path is exercised
        fast_conv.bias.set_value(paddle.randn([cout]))
    x = np.random.RandomState(0).randn(n, cin, h, w).astype("float32")
    assert_same(fast_conv, plain, x)
    assert_same(fast_conv, plain, x, input_grad=False)  # a first layer: no gradient for the images


@pytest.mark.parametrize("shape", [(4, 8, 16, 6, 6, 3, 1, 1), (3, 16, 8, 20, 20, 3, 1, 1), (4, 8, 16, 7, 7, 1, 1, 0),
                                   (2, 4, 6, 9, 9, 3, 1, 1), (2, 4, 6, 2, 2, 3, 1, 1)])
def test_fast_conv_evaluation_without_autograd_matches(shape):
    n, cin, cout, h, w, k, stride, pad = shape
    fast_conv, plain = fast.FastConv2D(cin, cout, k, stride, pad), nn.Conv2D(cin, cout, k, stride, pad)
    fast_conv.bias.set_value(paddle.randn([cout]))
    plain.set_state_dict(fast_conv.state_dict())
    x = paddle.randn([n, cin, h, w])
    with paddle.no_grad():
        assert_close(fast_conv(x).numpy(), plain(x).numpy(), "no_grad output")


def test_fast_conv_falls_back_to_paddle_for_what_it_does_not_cover():
    # Grouped convs and string padding take nn.Conv2D's own forward.
    for args in (dict(groups=2, padding=1), dict(padding="SAME")):
        fast_conv, plain = fast.FastConv2D(8, 8, 3, **args), nn.Conv2D(8, 8, 3, **args)
        assert fast_conv._geometry is None
        assert_same(fast_conv, plain, np.random.RandomState(0).randn(2, 8, 6, 6).astype("float32"))


# (kernel, stride, padding, size): 2x2/2 (VGG, trick CNN), 3x3/2 pad 1 (GoogLeNet),
# 3x3/1 pad 1 (Inception's pool branch), 3x3/2 (AlexNet, NiN), odd sizes that drop a border.
POOLS = [(2, 2, 0, 8), (2, 2, 0, 7), (3, 2, 1, 9), (3, 2, 1, 8), (3, 1, 1, 6), (3, 2, 0, 13), (3, 2, 0, 6)]


@pytest.mark.parametrize("k,stride,pad,size", POOLS)
def test_fast_max_pool_matches_paddle_max_pool_including_ties(k, stride, pad, size):
    x = np.random.RandomState(0).randn(3, 4, size, size).astype("float32")
    x[0, 0] = 0.0             # a flat map: every window ties
    x[1, 1, ::2] = x[1, 1, 1::2][: x[1, 1, ::2].shape[0]] if size % 2 == 0 else x[1, 1, ::2]
    x[2] = np.maximum(x[2], 0)  # ReLU-like zeros
    assert_same(fast.FastMaxPool2D(k, stride, pad), nn.MaxPool2D(k, stride, pad), x)
    with paddle.no_grad():
        t = paddle.to_tensor(x)
        assert_close(fast.FastMaxPool2D(k, stride, pad)(t).numpy(), nn.MaxPool2D(k, stride, pad)(t).numpy(), "eval")


def test_channel_bias_matches_broadcast_add():
    rs = np.random.RandomState(0)
    y_np, b_np = rs.randn(3, 5, 4, 6).astype("float32"), rs.randn(5).astype("float32")
    grads = []
    for fn in (fast.add_channel_bias, lambda y, b: y + b.reshape([1, -1, 1, 1])):
        y, b = paddle.to_tensor(y_np, stop_gradient=False), paddle.to_tensor(b_np, stop_gradient=False)
        out = fn(y, b)
        (out * paddle.to_tensor(rs.randn(*out.shape).astype("float32"))).sum().backward()
        grads.append((out.numpy(), y.grad.numpy(), b.grad.numpy()))
        rs = np.random.RandomState(0)
        rs.randn(3, 5, 4, 6), rs.randn(5)  # the same upstream gradient both times
    for a, e, what in zip(grads[0], grads[1], ("output", "input gradient", "bias gradient")):
        assert_close(a, e, what)


def test_the_layer_argument_chooses_the_classes_without_a_global_switch():
    with impl.building_with("plain"):
        assert type(impl.conv2d(3, 4, 3, 1, 1, True)) is nn.Conv2D
        assert type(impl.max_pool2d(2, 2)) is nn.MaxPool2D
        with impl.building_with("fast"):  # nested builds see the innermost choice
            assert type(impl.conv2d(3, 4, 3, 1, 1, False)) is fast.FastConv2D
        assert type(impl.conv2d(3, 4, 3, 1, 1, True)) is nn.Conv2D
    assert type(impl.conv2d(3, 4, 3, 1, 1, True)) is nn.Conv2D  # outside a build: paddle's own
    paddle.seed(0)
    fast_model = pc.create_model("lenet", num_classes=3, image_size=28, layers="fast")
    plain = pc.create_model("lenet", num_classes=3, image_size=28, layers="plain")
    assert (fast_model.layers, plain.layers) == ("fast", "plain")
    assert any(type(m) is fast.FastConv2D for m in fast_model.sublayers())
    assert not any(isinstance(m, (fast.FastConv2D, fast.FastMaxPool2D)) for m in plain.sublayers())
    with pytest.raises(pc.UsageError, match="unknown layer implementation 'turbo'; known: auto, plain"):
        pc.create_model("lenet", num_classes=3, image_size=28, layers="turbo")


def _build(name, size, on):
    paddle.seed(0)
    return pc.create_model(name, num_classes=5, image_size=size, layers="fast" if on else "plain")


@pytest.mark.parametrize("name,size", [("googlenet", 64), ("all_tricks", 64), ("vgg11_bn", 32),
                                       ("alexnet", 63), ("nin", 67), ("lenet", 28)])
def test_models_with_fast_layers_have_the_same_parameters_outputs_and_gradients(name, size):
    fast_model, plain = _build(name, size, True), _build(name, size, False)
    assert any(isinstance(m, fast.FastConv2D) for m in fast_model.sublayers())
    assert not any(isinstance(m, (fast.FastConv2D, fast.FastMaxPool2D)) for m in plain.sublayers())
    fs, ps = fast_model.state_dict(), plain.state_dict()
    assert list(fs) == list(ps)
    assert all(list(fs[k].shape) == list(ps[k].shape) for k in fs)
    plain.set_state_dict(fs)  # checkpoints move between the two
    x = np.random.RandomState(0).randn(4, 3, size, size).astype("float32")
    # eval(): no dropout masks to match; BatchNorm uses its running statistics.
    fast_model.eval(), plain.eval()
    assert_same(fast_model, plain, x, rtol=1e-4)
    assert summary(name, size, num_classes=5).macs == _macs_plain(name, size)


def _macs_plain(name, size):
    return summary(name, size, num_classes=5, layers="plain").macs


def bn_net(kind):
    """conv -> act -> BN and conv -> BN -> act blocks, pools, 1x1 and small-map convs: every fast path."""
    from paddle_cnns.layers import conv_block, max_pool2d

    with impl.building_with(kind):
        paddle.seed(0)
        return nn.Sequential(
            conv_block(3, 8, 3, padding=1, act="sigmoid", norm="post"), max_pool2d(2, 2),   # 16x16
            conv_block(8, 16, 5, padding=2, norm="pre"), max_pool2d(3, 2, padding=1),       # 8x8
            conv_block(16, 16, 1, act="leaky_relu", norm="post"), max_pool2d(2, 2),         # 4x4
            conv_block(16, 8, 3, padding=1, norm="post"), nn.Flatten(), nn.Linear(128, 3))


def test_a_training_step_matches_with_batch_norm_in_train_mode():
    # In float64, so the comparison shows the same arithmetic: in float32, train-mode BatchNorm's
    # mean subtraction amplifies rounding to ~0.4% of some small bias gradients in the plain
    # network itself (against its own float64 result), fast layers or not.
    if os.environ.get("MKL_CBWR", "COMPATIBLE") != "COMPATIBLE":
        # paddle 3.3.1's MKL dies with an illegal instruction on float64 GEMMs under any other
        # MKL_CBWR (AUTO, AVX2, ...,STRICT) on this AMD CPU: rerun in a process that has COMPATIBLE.
        test = f"{__file__}::test_a_training_step_matches_with_batch_norm_in_train_mode"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                              env={**os.environ, "MKL_CBWR": "COMPATIBLE"}, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
        return
    fast_net, plain = bn_net("fast"), bn_net("plain")
    assert {type(m) for m in fast_net.sublayers()} >= {fast.FastConv2D, fast.FastMaxPool2D}
    assert {fast.FastConv2D(16, 16, 1).path(8, 8), fast.FastConv2D(16, 8, 3, padding=1).path(4, 4)} == {"batched", "flat"}
    plain.set_state_dict(fast_net.state_dict())
    fast_net.to(dtype="float64"), plain.to(dtype="float64")
    x = np.random.RandomState(0).randn(4, 3, 32, 32)
    assert_same(fast_net, plain, x, rtol=1e-9)
    for (k, a), (_, b) in zip(fast_net.state_dict().items(), plain.state_dict().items()):
        assert_close(a.numpy(), b.numpy(), f"running statistic {k}", rtol=1e-9)
