"""Faster drop-in layers for paddle's CPU kernels (paddle_cnns.impl chooses them or the plain ones).

Paddle's dygraph CPU convolution is im2col + one small sgemm per image, and its bias add is a
generic broadcast over NCHW; both are far from the machine's GEMM speed. Measured on a 2-core
AVX-512 Xeon, machine otherwise idle (paddle 3.3.1, 2 threads, batch 32, forward + backward,
medians of 11-15 interleaved repetitions):

* bias add: `y + b.reshape([1, C, 1, 1])` and its gradient cost 3-5x a bias-free 1x1 conv.
  Broadcasting over the *leading* axis (`y + b.expand([C, H, W])`) is fast, and the bias
  gradient is two contiguous sums: `_ChannelBias` does both, with paddle ops.
* small maps: below 8x8 outputs each image's GEMM is thin (4-49 columns) and parallelises
  badly. One GEMM over every image's unfold()ed patches side by side is faster: 3x3 convs
  1.2x at 7x7, 1.3-1.5x at 4x4, 3x at 2x2. At 8x8 and up paddle's conv wins (0.7-0.8x).
* 1x1 convs: GEMMs on the NCHW tensor as it lies (no im2col) win up to 16x16 maps (1.5x at
  4x4, 1.2x at 8x8 and 16x16); at 28x28 paddle's conv is as fast.
* max pool: paddle's plain max pool gradient rescans every window; the index-returning
  kernel (`return_mask=True`) scatters through the saved argmax, 1.4-1.9x faster, and
  non-overlapping pools (2x2/2) go back through `max_unpool2d`, faster still.

Every fast layer subclasses the plain one with the same parameters (so state_dict keys,
checkpoints, init and the MAC counter are unchanged), takes paddle's own path off the CPU
(these measurements say nothing about GPUs), and gives the plain layer's outputs and
gradients within float rounding (tests/test_fast_layers.py). The kernels they call are
paddle's, so they run on paddle 2.6 and 3.x alike.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer

# Conv outputs (pixels per image) below this use one GEMM over all images' pixels ("flat").
FLAT_MAX_PIXELS = 64
# Unpadded stride-1 1x1 convs up to this many pixels use per-image GEMMs ("batched") ...
DIRECT_MAX_PIXELS = 256
# ... with the weight gradient as one GEMM over all pixels below this, else as per-image
# GEMMs summed (which would leave an N x Cout x Cin temporary on small maps).
_BATCHED_WGRAD_MIN_PIXELS = 144


def _pair(v):
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    return v if len(v) == 2 else None


def _on_cpu(x) -> bool:
    # Only eager CPU tensors: a model traced by paddle.jit (export) gets paddle's own layers.
    return paddle.in_dynamic_mode() and x.place.is_cpu_place()


# ---------------------------------------------------------------- bias

class _ChannelBias(PyLayer):
    """y + bias per channel of an NCHW tensor, forward and backward without a middle-axis broadcast."""

    @staticmethod
    def forward(ctx, y, bias):
        """y + bias per channel, without paddle's NCHW broadcast add."""
        ctx.y_grad = not y.stop_gradient
        return _add_bias(y, bias)

    @staticmethod
    def backward(ctx, grad):
        # paddle wants None, not a gradient, for an input that does not require one.
        """The bias gradient is the sum over batch and pixels; y's passes through."""
        return grad if ctx.y_grad else None, grad.sum(axis=[2, 3]).sum(axis=0)


def _add_bias(y, bias):
    c, h, w = y.shape[1:]
    return y + bias.reshape([c, 1, 1]).expand([c, h, w])


def add_channel_bias(y, bias):
    """`y + bias.reshape([1, C, 1, 1])` for NCHW `y`, several times faster on CPU."""
    if not paddle.is_grad_enabled() or bias.stop_gradient:
        return _add_bias(y, bias)
    return _ChannelBias.apply(y, bias)


# ---------------------------------------------------------------- conv as GEMMs over the batch

def _out_size(size, k, stride, pad, dil):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _columns(x, kernel, stride, padding, dilation):
    """im2col of the whole batch, N x (Cin*kh*kw) x L; x itself for an unpadded stride-1 1x1 conv."""
    n, cin, h, w = x.shape
    if kernel == [1, 1] and stride == [1, 1] and padding == [0, 0]:
        return x.reshape([n, cin, h * w])
    return F.unfold(x, kernel, stride, padding, dilation)


def _uncolumns(dcols, x_shape, kernel, stride, padding, dilation):
    """The adjoint of _columns: col2im (fold) of N x K x L back to the input's shape."""
    if kernel == [1, 1] and stride == [1, 1] and padding == [0, 0]:
        return dcols.reshape(x_shape)
    return F.fold(dcols, x_shape[2:], kernel, stride, padding, dilation)


class _GemmConv(PyLayer):
    """Bias-free conv2d (groups 1) as im2col of the whole batch and GEMMs.

    cols = unfold(x), N x K x L (K = Cin*kh*kw, L output pixels), y = W[Cout, K] @ cols.
    `flat` lays every image's pixels side by side, K x (N*L), so each product is one GEMM:
    worth its two transposes when L is small (< 64), where per-image GEMMs are too thin.
    Backward: dW = dy @ cols^T and dx = fold(W^T @ dy), the same GEMMs transposed.
    """

    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation, flat):
        """The conv as one GEMM of the weights with the unfolded input columns."""
        n, cin, h, w = x.shape
        cout, _, kh, kw = weight.shape
        ho, wo = _out_size(h, kh, stride[0], padding[0], dilation[0]), _out_size(w, kw, stride[1], padding[1], dilation[1])
        cols = _columns(x, [kh, kw], stride, padding, dilation)
        k = cin * kh * kw
        w2 = weight.reshape([cout, k])
        if flat:
            cols = cols.transpose([1, 0, 2]).reshape([k, n * ho * wo])
            y = paddle.matmul(w2, cols).reshape([cout, n, ho * wo]).transpose([1, 0, 2])
        else:
            y = paddle.matmul(w2, cols)
        ctx.save_for_backward(cols, w2)
        ctx.geometry = (flat, [n, cin, h, w], [cout, cin, kh, kw], stride, padding, dilation)
        ctx.needs = (not x.stop_gradient, not weight.stop_gradient)
        return y.reshape([n, cout, ho, wo])

    @staticmethod
    def backward(ctx, grad):
        """Both gradients from the saved columns: dW = grad x cols^T, dx = fold(W^T x grad)."""
        cols, w2 = ctx.saved_tensor()
        flat, x_shape, w_shape, stride, padding, dilation = ctx.geometry
        n, cout, pixels = x_shape[0], w_shape[0], grad.shape[2] * grad.shape[3]
        dx = dw = None  # paddle wants None for an input that needs no gradient (the images)
        if flat:
            g = grad.reshape([n, cout, pixels]).transpose([1, 0, 2]).reshape([cout, n * pixels])
            if ctx.needs[1]:
                dw = paddle.matmul(g, cols, transpose_y=True)
            if ctx.needs[0]:
                dcols = paddle.matmul(w2, g, transpose_x=True)  # K x (N*L)
                dcols = dcols.reshape([w2.shape[1], n, pixels]).transpose([1, 0, 2])
        else:
            g = grad.reshape([n, cout, pixels])
            if ctx.needs[1]:
                if pixels >= _BATCHED_WGRAD_MIN_PIXELS:
                    dw = paddle.matmul(g, cols, transpose_y=True).sum(axis=0)
                else:  # one GEMM over all pixels, no N x Cout x K temporary
                    gt = g.transpose([1, 0, 2]).reshape([cout, n * pixels])
                    dw = paddle.matmul(gt, cols.transpose([1, 0, 2]).reshape([w2.shape[1], n * pixels]),
                                       transpose_y=True)
            if ctx.needs[0]:
                dcols = paddle.matmul(w2, g, transpose_x=True)  # N x K x L
        if ctx.needs[0]:
            dx = _uncolumns(dcols, x_shape, w_shape[2:], stride, padding, dilation)
        return dx, None if dw is None else dw.reshape(w_shape)


def _gemm_conv_eval(x, weight, stride, padding, dilation):
    """_GemmConv's forward without saving anything, for evaluation under no_grad."""
    n, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    ho, wo = _out_size(h, kh, stride[0], padding[0], dilation[0]), _out_size(w, kw, stride[1], padding[1], dilation[1])
    cols = _columns(x, [kh, kw], stride, padding, dilation)
    return paddle.matmul(weight.reshape([cout, cin * kh * kw]), cols).reshape([n, cout, ho, wo])


_FOLD_1PX = None


def _fold_takes_1px() -> bool:
    """paddle 2.6's fold refuses 1-pixel-high or -wide outputs (3.x does not): probe once."""
    global _FOLD_1PX
    if _FOLD_1PX is None:
        try:
            F.fold(paddle.zeros([1, 1, 1]), [1, 1], 1)
            _FOLD_1PX = True
        except (ValueError, RuntimeError, OSError):
            _FOLD_1PX = False
    return _FOLD_1PX


class FastConv2D(nn.Conv2D):
    """nn.Conv2D with faster CPU paths, chosen per input size; the same parameters and results.

    Outputs under FLAT_MAX_PIXELS, and 1x1 convs up to DIRECT_MAX_PIXELS: GEMMs over the whole
    batch (_GemmConv). Larger maps: paddle's conv. The bias goes through add_channel_bias.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pad, stride, dil = _pair(self._padding), _pair(self._stride), _pair(self._dilation)
        plain = (self._data_format != "NCHW" or self._padding_mode != "zeros" or self._groups != 1
                 or None in (pad, stride, dil) or isinstance(self._padding, str))
        self._geometry = None if plain else (stride, pad, dil)

    def path(self, h: int, w: int) -> str:
        """How an h x w input is convolved on the CPU: 'flat', 'batched' or 'paddle'."""
        if self._geometry is None:
            return "paddle"
        stride, pad, dil = self._geometry
        _, _, kh, kw = self.weight.shape
        pixels = _out_size(h, kh, stride[0], pad[0], dil[0]) * _out_size(w, kw, stride[1], pad[1], dil[1])
        if kh == kw == 1 and stride == [1, 1] and pad == [0, 0]:
            if pixels > DIRECT_MAX_PIXELS:
                return "paddle"
            return "flat" if pixels < FLAT_MAX_PIXELS else "batched"
        if pixels < FLAT_MAX_PIXELS and (min(h, w) > 1 or _fold_takes_1px()):
            return "flat"
        return "paddle"

    def forward(self, x):
        """Paddle's conv, or a GEMM conv on small maps (CPU), and the channel-bias add."""
        if self._geometry is None or not _on_cpu(x):  # measured on CPUs only: paddle's own elsewhere
            return nn.Conv2D.forward(self, x)  # not super(): it recurses when paddle.jit traces this
        h, w = x.shape[2], x.shape[3]
        path = self.path(h, w)
        if path == "paddle":  # paddle's conv, but the fast bias add
            y = F.conv2d(x, self.weight, None, *self._geometry)
        elif paddle.is_grad_enabled() and not (x.stop_gradient and self.weight.stop_gradient):
            y = _GemmConv.apply(x, self.weight, *self._geometry, path == "flat")
        else:
            y = _gemm_conv_eval(x, self.weight, *self._geometry)
        return y if self.bias is None else add_channel_bias(y, self.bias)


# ---------------------------------------------------------------- max pool

def _pool_with_argmax(x, kernel, stride, padding):
    """max_pool2d's output and argmax, safe when a window holds no number.

    Paddle's index-returning kernel compares with `>` from -FLT_MAX, so a window of NaNs (a
    diverging run) or of -inf yields -3.4e38 and the index -1; scattering a gradient through
    -1 writes outside the tensor and corrupts the heap. Such windows get the plain kernel's
    value (NaN propagates, so the loss still shows the divergence) and index 0.
    """
    y, mask = F.max_pool2d(x, kernel, stride, padding, return_mask=True)
    bad = mask < 0
    if bool(bad.any()):  # one cheap reduction; the branch runs only on non-numbers
        y = paddle.where(bad, F.max_pool2d(x, kernel, stride, padding), y)
        mask = paddle.where(bad, paddle.zeros_like(mask), mask)
    return y, mask


class _UnpoolMax(PyLayer):
    """Non-overlapping max pool whose gradient goes back through max_unpool2d (argmax scatter)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        """The max pool and the argmax mask its gradient needs."""
        y, mask = _pool_with_argmax(x, kernel, stride, padding)
        ctx.save_for_backward(mask)
        ctx.geometry = (kernel, stride, padding, list(x.shape[2:]))
        return y

    @staticmethod
    def backward(ctx, grad):
        """Scatter the gradient back to each window's argmax (max_unpool)."""
        (mask,) = ctx.saved_tensor()
        kernel, stride, padding, size = ctx.geometry
        return F.max_unpool2d(grad, mask, kernel, stride, padding, output_size=size)


class FastMaxPool2D(nn.MaxPool2D):
    """nn.MaxPool2D whose CPU gradient scatters through the argmax instead of rescanning windows.

    Ties go to the first maximum in each window, as in paddle's own kernel.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode)
        k, s = _pair(kernel_size), _pair(kernel_size if stride is None else stride)
        p = _pair(padding) if not isinstance(padding, str) else None
        plain = ceil_mode or None in (k, s, p)
        self._geometry = None if plain else (k, s, p)

    def forward(self, x):
        """Max pool through its argmax on a CPU; paddle's own elsewhere or when a mask is asked for."""
        if self._geometry is None or self.return_mask or not _on_cpu(x) or self.data_format != "NCHW":
            return nn.MaxPool2D.forward(self, x)
        k, s, p = self._geometry
        if not paddle.is_grad_enabled() or x.stop_gradient:
            return F.max_pool2d(x, k, s, p)
        if k[0] <= s[0] and k[1] <= s[1] and p == [0, 0]:  # disjoint windows: unpooling is the gradient
            return _UnpoolMax.apply(x, k, s, p)
        y, mask = F.max_pool2d(x, k, s, p, return_mask=True)
        if bool((mask < 0).any()):  # a window without a number: see _pool_with_argmax
            return F.max_pool2d(x, k, s, p)
        return y
