"""The building blocks every model is made of: one place that makes convs, activations and inits."""
from __future__ import annotations
import contextlib

import paddle
import paddle.nn as nn

from . import impl
from .errors import UsageError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,  # paddle's default slope 0.01, as the article's nn.LeakyReLU()
}


def activation(name: str) -> nn.Layer:
    if name not in ACTIVATIONS:
        raise UsageError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True) -> nn.Layer:
    """The one factory for convolutions: the implementation being built (impl.building_with) makes it."""
    return impl.conv2d(in_channels, out_channels, kernel_size, stride, padding, bias)


def max_pool2d(kernel_size, stride=None, padding=0) -> nn.Layer:
    """The one factory for max pools: the implementation being built (impl.building_with) makes it."""
    return impl.max_pool2d(kernel_size, stride, padding)


def conv_block(in_channels, out_channels, kernel_size, stride=1, padding=0, act="relu",
               norm: str | None = None) -> nn.Sequential:
    """conv -> [BN] -> act, or conv -> act -> BN.

    norm=None: no BatchNorm; "pre": conv->BN->act (VGG-BN, GoogLeNet-BN, the usual order);
    "post": conv->act->BN (the article's trick CNN applies BN after the activation; we keep it).
    With "pre" the conv has no bias: BN's shift makes it redundant (as in the BN paper).
    """
    if norm not in (None, "pre", "post"):
        raise UsageError(f"norm must be None, 'pre' or 'post', got {norm!r}")
    layers = [conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=norm != "pre")]
    if norm == "pre":
        layers.append(batch_norm(out_channels))
    layers.append(activation(act))
    if norm == "post":
        layers.append(batch_norm(out_channels))
    return nn.Sequential(*layers)


def fc_classifier(features: nn.Layer, in_channels: int, image_size: int, num_classes: int,
                  hidden: int = 4096, dropout: float = 0.5) -> nn.Sequential:
    """AlexNet's and VGG's head: flatten, two hidden ReLU layers with dropout, linear logits.

    Its input width is the features' real output at `image_size`, so the head fits any size.
    The logits stay linear: the article's AlexNet puts a ReLU after the last layer, which clips
    every negative logit to 0 and stalls learning for classes whose scores start negative.
    """
    c, h, w = output_shape(features, in_channels, image_size)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def batch_norm(channels: int) -> nn.BatchNorm2D:
    # Explicit scale 1, shift 0: a ParamAttr initializer outranks init_scope's global one.
    return nn.BatchNorm2D(channels, weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)),
                          bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)))


class _ByShape(nn.initializer.Initializer):
    """One initializer for convs (4-d weights) and another for linear layers (2-d weights)."""

    def __init__(self, conv, linear):
        super().__init__()
        self.conv, self.linear = conv, linear

    def __call__(self, param, block=None):
        return (self.conv if len(param.shape) == 4 else self.linear)(param, block)

    forward = __call__


# std 0.01 for the linear layers of ReLU networks, as torchvision's VGG and AlexNet (a uniform
# draw of the same spread: paddle's normal sampler is 2.5x slower, which the 100 M-weight FC
# layers of VGG at 224 px feel).
_SMALL_LINEAR = 0.01 * 3 ** 0.5


def weight_initializer(nonlinearity: str):
    """Xavier/Glorot uniform everywhere for sigmoid networks (Glorot & Bengio 2010, and seed
    004's advice). For ReLU and LeakyReLU networks Kaiming/He uniform on convs, with the
    activation's gain and the fan-in (He et al. 2015), and small linear layers (std 0.01):
    He-scaled FC layers gave AlexNet and VGG11-BN logits large enough that one Momentum step
    at lr 0.01 sent the loss from 2.9 to 34, then NaN."""
    if nonlinearity == "sigmoid":
        return nn.initializer.XavierUniform()
    if nonlinearity in ("relu", "leaky_relu"):
        slope = 0.01 if nonlinearity == "leaky_relu" else 0.0
        return _ByShape(nn.initializer.KaimingUniform(negative_slope=slope, nonlinearity=nonlinearity),
                        nn.initializer.Uniform(-_SMALL_LINEAR, _SMALL_LINEAR))
    raise UsageError(f"no initialisation rule for nonlinearity {nonlinearity!r}")


@contextlib.contextmanager
def init_scope(nonlinearity: str):
    """Every conv and linear layer created inside starts from weight_initializer(nonlinearity)
    and zero biases; BatchNorm from scale 1, shift 0 (batch_norm above). Never paddle's defaults.

    Paddle's default initialisers differ from PyTorch's: with them VGG13-BN at lr 0.01 diverged
    to a loss of 25-50 where PyTorch's init stayed at 2.1. Initialising while the layers are
    created, instead of overwriting them afterwards, halves the build time of the big FC nets
    (VGG at 224 px: ~120 M weights). Draws use paddle's RNG: paddle.seed makes them reproducible.
    """
    nn.initializer.set_global_initializer(weight_initializer(nonlinearity), nn.initializer.Constant(0.0))
    try:
        yield
    finally:
        nn.initializer.set_global_initializer(None)


@paddle.no_grad()
def output_shape(layer: nn.Layer, in_channels: int, image_size: int) -> list[int]:
    """Shape of `layer`'s output for one image, by running it once in eval mode.

    Used to size the first Linear after flattening from the actual input size instead of a
    hard-coded 224-px number, so every model works at every size from its minimum up.
    """
    was_training = layer.training
    layer.eval()
    try:
        out = layer(paddle.zeros([1, in_channels, image_size, image_size]))
    finally:
        if was_training:
            layer.train()
    return list(out.shape[1:])
