"""Convolutions through oneDNN: paddle's static-graph executor runs them there, its dygraph does not.

Paddle's eager CPU conv is im2col + sgemm whatever FLAGS_use_mkldnn says: the eager kernel choice
takes the plain CPU backend for CPU tensors, and the flag is read only by the static-graph kernel
pass. A conv wrapped in `paddle.jit.to_static`, in a process started with FLAGS_use_mkldnn=1 and
FLAGS_enable_pir_api=0 (legacy IR: with PIR the backward crashed), runs forward, backward-data and
backward-weights as oneDNN primitives, 2-4x faster than the eager conv on 8x8 maps and up
(paddle 3.3.1, oneDNN 3.6.2, 2 threads; 4x at 4x4 against our batch GEMMs). The flags must be in the environment before paddle is
imported (set at run time, the first backward segfaults): ablations.cli.paddle_environment()
sets them for every entry point and its workers. paddle 2.6's oneDNN backward aborts
(dnnl::error), so this route needs paddle 3.

Reproducibility: the same process, seed and thread count give bitwise the same numbers (and a
resumed run the uninterrupted one's). But oneDNN's weight gradient sums over the batch in an
order that depends on the thread count (1 vs 2 threads differ in the last bits; its forward and
data gradient do not), and MKL_CBWR does not reach oneDNN: a run at 1 thread (packed) and at 2
(sequential) drift apart as training amplifies that. layers="fast" keeps the thread-count
independence. (A weight gradient computed as a forward conv of the input with the output
gradient is thread-count independent, but cost 10-35% of a training step here and, in a
PyLayer, broke exact resume for a reason not found, so it is not offered.)
"""
from __future__ import annotations

import paddle
import paddle.nn.functional as F

from .fast import FastConv2D, _on_cpu, _out_size, add_channel_bias

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


def release_executors() -> None:
    """Free the executors of every static program run so far (they are rebuilt on the next call).

    Paddle caches one executor per program process-wide, and a dead model's oneDNN convs leave
    theirs behind: building VGG-11-BN at 64, 96 and 128 px twice in one process grew it from 486
    to 1,278 MiB, and to 652 MiB with this before each build. impl.building_with calls it.
    """
    clear = getattr(paddle.base.core, "clear_executor_cache", None)
    if clear is not None:
        clear()


def _static(fn):
    # full_graph=True: the AST translation into one legacy program (SOT would split the graph).
    return paddle.jit.to_static(fn, full_graph=True)


def _conv_function(stride, padding, dilation):
    def conv(x, weight):
        return F.conv2d(x, weight, None, stride, padding, dilation)
    return _static(conv)


class OneDNNConv2D(FastConv2D):
    """FastConv2D whose convs on 4x4 outputs and up go through oneDNN (the static executor's kernels).

    Smaller outputs keep FastConv2D's one-GEMM path (faster there), and anything FastConv2D leaves
    to paddle (groups, string padding, off the CPU) stays paddle's. Same parameters, same results.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Static functions per layer, each keeping a program per input shape (a last short batch
        # adds one), under paddle's limit of 10 before it warns. Two of them: a program first traced
        # without autograd (evaluation, or output_shape at build time) and then run with it fails
        # in its backward ("input tensor's layout should be ONEDNN"), so training never reuses one.
        self._conv = self._conv_eval = None
        if self._geometry is not None:
            self._conv, self._conv_eval = _conv_function(*self._geometry), _conv_function(*self._geometry)

    # Outputs of fewer pixels (2x2, 1x1) keep FastConv2D's one-GEMM path. Whole training steps
    # (batch 32, 2 threads, busy machine, interleaved): oneDNN from 4x4 up was 1.13-1.22x faster
    # than from 2x2 up and 1.15-1.4x faster than from 8x8 up (googlenet, all_tricks at 64 px);
    # single convs: at 4x4 oneDNN is ~4x the GEMMs, at 2x2 they are even.
    min_pixels = 16

    def path(self, h: int, w: int) -> str:
        """How an h x w input is convolved on the CPU: 'flat', 'batched', 'paddle' or 'onednn'."""
        path = super().path(h, w)
        if self._conv is None or path == "paddle":
            return "onednn" if self._conv is not None else path
        _, _, kh, kw = self.weight.shape
        stride, pad, dil = self._geometry
        pixels = _out_size(h, kh, stride[0], pad[0], dil[0]) * _out_size(w, kw, stride[1], pad[1], dil[1])
        return path if pixels < self.min_pixels else "onednn"

    def forward(self, x):
        """The conv through the cached oneDNN static program on maps it is faster for, else as FastConv2D."""
        if self._conv is None or not _on_cpu(x) or self.path(x.shape[2], x.shape[3]) != "onednn":
            return FastConv2D.forward(self, x)  # not super(): it recurses when paddle.jit traces this
        if paddle.is_grad_enabled() and not (x.stop_gradient and self.weight.stop_gradient):
            y = self._conv(x, self.weight)  # forward, and both backward passes, in oneDNN
        else:
            y = self._conv_eval(x, self.weight)
        return y if self.bias is None else add_channel_bias(y, self.bias)


__all__ = ["OneDNNConv2D", "unavailable_reason"]
