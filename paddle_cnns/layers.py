"""The building blocks every model is made of: one place that makes convs, activations and inits."""
import paddle
import paddle.nn as nn

from .errors import UsageError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,  # paddle's default slope 0.01, as the seed's nn.LeakyReLU()
}


def activation(name: str) -> nn.Layer:
    if name not in ACTIVATIONS:
        raise UsageError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True) -> nn.Layer:
    """The one factory for convolutions, so a faster drop-in can replace them all at once."""
    from . import fast  # late import: fast imports this module's names

    return fast.make_conv2d(in_channels, out_channels, kernel_size, stride, padding, bias)


def conv_block(in_channels, out_channels, kernel_size, stride=1, padding=0, act="relu",
               norm: str | None = None) -> nn.Sequential:
    """conv -> [BN] -> act, or conv -> act -> BN.

    norm=None: no BatchNorm; "pre": conv->BN->act (VGG-BN, GoogLeNet-BN, the usual order);
    "post": conv->act->BN (seed 004's trick CNN applies BN after the activation; we keep it).
    With "pre" the conv has no bias: BN's shift makes it redundant (as in the BN paper).
    """
    if norm not in (None, "pre", "post"):
        raise UsageError(f"norm must be None, 'pre' or 'post', got {norm!r}")
    layers = [conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=norm != "pre")]
    if norm == "pre":
        layers.append(nn.BatchNorm2D(out_channels))
    layers.append(activation(act))
    if norm == "post":
        layers.append(nn.BatchNorm2D(out_channels))
    return nn.Sequential(*layers)


def init_weights(model: nn.Layer, nonlinearity: str) -> nn.Layer:
    """Initialise every conv and linear layer explicitly, never paddle's defaults.

    Paddle's default initialisers differ from PyTorch's: with them VGG13-BN at lr 0.01 diverged
    to a loss of 25-50 where PyTorch's init stayed at 2.1. We use Xavier/Glorot uniform for
    sigmoid networks (Glorot & Bengio 2010, and seed 004's advice) and Kaiming/He uniform
    (fan_in, gain for the activation) for ReLU and LeakyReLU networks (He et al. 2015).
    Biases start at 0, BatchNorm at scale 1, shift 0. Draws use paddle's RNG, so paddle.seed
    before building makes the weights reproducible.
    """
    if nonlinearity == "sigmoid":
        weight_init = nn.initializer.XavierUniform()
    elif nonlinearity in ("relu", "leaky_relu"):
        slope = 0.01 if nonlinearity == "leaky_relu" else 0.0
        weight_init = nn.initializer.KaimingUniform(negative_slope=slope, nonlinearity=nonlinearity)
    else:
        raise UsageError(f"no initialisation rule for nonlinearity {nonlinearity!r}")
    zero, one = nn.initializer.Constant(0.0), nn.initializer.Constant(1.0)
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            weight_init(layer.weight)
            if layer.bias is not None:
                zero(layer.bias)
        elif isinstance(layer, nn.BatchNorm2D):
            one(layer.weight)
            zero(layer.bias)
    return model


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
