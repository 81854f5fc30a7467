"""The building blocks every model is made of: one place that makes convs, activations and inits."""
from __future__ import annotations

import contextlib
import functools

import paddle
import paddle.nn as nn

from . import impl
from .errors import UsageError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    # The article's conv2d(act='leaky_relu') is fluid's leaky_relu with its default slope 0.02
    # (paddle 2's nn.LeakyReLU defaults to 0.01).
    "leaky_relu": functools.partial(nn.LeakyReLU, 0.02),
}


def activation(name: str) -> nn.Layer:
    """A new activation layer by name: relu, sigmoid or leaky_relu (slope 0.02)."""
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
    every negative logit to 0 and stalls learning for classes whose scores start negative
    (a deviation from the article, listed in paddle_cnns.models.DEVIATIONS, as is the dropout's).
    """
    c, h, w = output_shape(features, in_channels, image_size)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def batch_norm(channels: int) -> nn.BatchNorm2D:
    """BatchNorm over `channels` feature maps, starting from scale 1 and shift 0."""
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


# std 0.01 for the linear layers of the ReLU classics, as torchvision's VGG and AlexNet (a uniform
# draw of the same spread: paddle's normal sampler is 2.5x slower, which the 100 M-weight FC
# layers of VGG at 224 px feel).
_SMALL_LINEAR = 0.01 * 3 ** 0.5

# The initialisation schemes a ModelSpec can name (its `init` field).
INITS = ("fluid", "xavier", "he")


def weight_initializer(scheme: str) -> nn.initializer.Initializer:
    """The weight initializer of an init scheme: "fluid", "xavier" or "he" (see below).

    "fluid": the article's, i.e. paddle fluid's defaults: convs normal with std sqrt(2/fan_in),
    linear layers Xavier/Glorot uniform. Paddle 2's nn.Conv2D and nn.Linear still default to
    the same; naming it keeps it independent of a paddle release. The whole trick chain uses it,
    so a trick changes no layer's initialisation but those of the layers it adds or replaces.
    "xavier": Xavier/Glorot uniform everywhere (Glorot & Bengio 2010), for the sigmoid LeNet.
    "he": Kaiming/He uniform on convs (He et al. 2015) and small linear layers (std 0.01), for
    the ReLU classics: He-scaled FC layers gave AlexNet and VGG11-BN logits large enough that
    one Momentum step at lr 0.01 sent the loss from 2.9 to 34, then NaN.
    "xavier" and "he" are deviations from the article (paddle_cnns.models.DEVIATIONS).
    """
    if scheme == "fluid":
        return _ByShape(nn.initializer.KaimingNormal(nonlinearity="relu"), nn.initializer.XavierUniform())
    if scheme == "xavier":
        return nn.initializer.XavierUniform()
    if scheme == "he":
        return _ByShape(nn.initializer.KaimingUniform(nonlinearity="relu"),
                        nn.initializer.Uniform(-_SMALL_LINEAR, _SMALL_LINEAR))
    raise UsageError(f"unknown init scheme {scheme!r}; known: {', '.join(INITS)}")


@contextlib.contextmanager
def init_scope(scheme: str):
    """Every conv and linear layer created inside starts from weight_initializer(scheme).

    Biases start at zero, BatchNorm at scale 1, shift 0 (batch_norm above). The classics do not
    use paddle's (= fluid's) defaults: with them VGG13-BN at lr 0.01 diverged to a loss of 25-50
    where PyTorch's init stayed at 2.1. Initialising while the layers are created, instead of
    overwriting them afterwards, halves the build time of the big FC nets (VGG at 224 px:
    ~120 M weights). Draws use paddle's RNG: paddle.seed makes them reproducible.
    """
    nn.initializer.set_global_initializer(weight_initializer(scheme), nn.initializer.Constant(0.0))
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
