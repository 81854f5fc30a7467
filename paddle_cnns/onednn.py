"""Convolutions through oneDNN: paddle's static-graph executor runs them there, its dygraph does not.

Paddle's eager CPU conv is im2col + sgemm whatever FLAGS_use_mkldnn says: the eager kernel choice
takes the plain CPU backend for CPU tensors, and the flag is read only by the static-graph kernel
pass. A conv wrapped in `paddle.jit.to_static`, in a process started with FLAGS_use_mkldnn=1 and
FLAGS_enable_pir_api=0 (legacy IR: with PIR the backward crashed), runs forward, backward-data and
backward-weights as oneDNN primitives, 2-4x faster than the eager conv on 8x8 maps and up
(paddle 3.3.1, oneDNN 3.6.2, 2 threads). The flags must be in the environment before paddle is
imported (set at run time, the first backward segfaults): ablations.cli.paddle_environment()
sets them for every entry point and its workers. paddle 2.6's oneDNN backward aborts
(dnnl::error), so this route needs paddle 3.

oneDNN's weight gradient sums over the batch in an order that depends on the thread count (1 vs 2
threads differ in the last bits; forward and data gradient do not). Under MKL_CBWR=...STRICT,
the project's promise that a run's numbers do not depend on --threads or packing, the weight
gradient is computed instead as a forward convolution of the input with the output gradient
(batch as the reduction axis), which oneDNN parallelises over outputs only: bitwise the same at
any thread count.
"""
from __future__ import annotations

import os

import paddle
import paddle.nn.functional as F
from paddle.autograd import PyLayer

from .fast import FLAT_MAX_PIXELS, FastConv2D, _on_cpu, add_channel_bias

ENV_FLAGS = {"FLAGS_use_mkldnn": True, "FLAGS_enable_pir_api": False}


def unavailable_reason() -> str | None:
    """Why convs cannot go through oneDNN in this process, or None when they can."""
    major = int(paddle.__version__.split(".")[0])
    if major < 3 and paddle.__version__ != "0.0.0":
        return f"paddle {paddle.__version__}'s oneDNN backward aborts; the oneDNN layers need paddle 3"
    compiled = getattr(paddle.base.core, "is_compiled_with_mkldnn", lambda: False)()
    if not compiled:
        return "this paddle build has no oneDNN"
    try:
        flags = paddle.get_flags(list(ENV_FLAGS))
    except ValueError:
        flags = {}
    wrong = [name for name, value in ENV_FLAGS.items() if flags.get(name) != value]
    if wrong:
        wanted = " ".join(f"{n}={int(v)}" for n, v in ENV_FLAGS.items())
        return f"{wanted} must be in the environment before paddle is imported (not set: {', '.join(wrong)})"
    return None


def thread_invariant() -> bool:
    """Whether weight gradients must not depend on the thread count (MKL_CBWR=...STRICT, the project's default)."""
    return "STRICT" in os.environ.get("MKL_CBWR", "").upper()


def _static(fn):
    # full_graph=True: the AST translation into one legacy program (SOT would split the graph).
    return paddle.jit.to_static(fn, full_graph=True)


def _conv_function(stride, padding, dilation):
    def conv(x, weight):
        return F.conv2d(x, weight, None, stride, padding, dilation)
    return _static(conv)


class _DataGrad(paddle.nn.Layer):
    """dx of a conv: its transpose. A layer in eval mode, because oneDNN's transposed conv runs only
    with is_test=True, which a static function gets from its layer's mode."""

    def __init__(self, stride, padding, dilation):
        super().__init__()
        self.geometry = (stride, padding, dilation)

    def forward(self, grad, weight, size):
        stride, padding, dilation = self.geometry
        return F.conv2d_transpose(grad, weight, None, stride, padding, dilation=dilation, output_size=size)


def _data_grad_function(stride, padding, dilation):
    layer = _static(_DataGrad(stride, padding, dilation))
    layer.eval()
    return layer


def _weight_grad_function(stride, padding, dilation, kernel):
    def weight_grad(x, grad):
        # dW[o, i, a, b] = sum over n, y, x of grad[n, o, y, x] * x_padded[n, i, y*s + a*d, x*s + b*d]:
        # a conv of x (channels as batch, images as channels) with the gradient as kernel.
        w = F.conv2d(x.transpose([1, 0, 2, 3]), grad.transpose([1, 0, 2, 3]), None,
                     dilation, padding, stride)
        return w[:, :, :kernel[0], :kernel[1]].transpose([1, 0, 2, 3])
    return _static(weight_grad)


class _InvariantConv(PyLayer):
    """oneDNN conv whose weight gradient is a forward conv, so it sums in the same order at any thread count."""

    @staticmethod
    def forward(ctx, x, weight, layer):
        with paddle.no_grad():
            y = layer._fns["conv"](x, weight)
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.needs = layer, (not x.stop_gradient, not weight.stop_gradient)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        fns = ctx.layer._fns
        with paddle.no_grad():
            dx = fns["data_grad"](grad, weight, list(x.shape[2:])) if ctx.needs[0] else None
            dw = fns["weight_grad"](x, grad) if ctx.needs[1] else None
        return dx, dw


class OneDNNConv2D(FastConv2D):
    """FastConv2D whose convs on 8x8 outputs and up go through oneDNN (the static executor's kernels).

    Smaller outputs keep FastConv2D's batch GEMMs (faster there), and anything FastConv2D leaves to
    paddle (groups, string padding, off the CPU) stays paddle's. Same parameters, same results.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._fns = None
        if self._geometry is not None:
            stride, pad, dil = self._geometry
            kernel = list(self.weight.shape[2:])
            self._fns = {"conv": _conv_function(stride, pad, dil),
                         "data_grad": _data_grad_function(stride, pad, dil),
                         "weight_grad": _weight_grad_function(stride, pad, dil, kernel)}

    def path(self, h: int, w: int) -> str:
        """How an h x w input is convolved on the CPU: 'flat', 'batched' or 'onednn'."""
        path = super().path(h, w)
        return "onednn" if path == "paddle" and self._fns is not None else path

    def forward(self, x):
        if self._fns is None or not _on_cpu(x) or self.path(x.shape[2], x.shape[3]) != "onednn":
            return super().forward(x)
        if not paddle.is_grad_enabled() or (x.stop_gradient and self.weight.stop_gradient):
            with paddle.no_grad():
                y = self._fns["conv"](x, self.weight)
        elif thread_invariant():
            y = _InvariantConv.apply(x, self.weight, self)
        else:
            y = self._fns["conv"](x, self.weight)
        return y if self.bias is None else add_channel_bias(y, self.bias)


__all__ = ["OneDNNConv2D", "unavailable_reason", "thread_invariant", "FLAT_MAX_PIXELS"]
