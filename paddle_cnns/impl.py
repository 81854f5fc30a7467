"""Which implementation a model's convs and max pools get: an argument of create_model, resolved per build.

    "plain"   paddle's nn.Conv2D and nn.MaxPool2D (cuDNN on a GPU)
    "fast"    paddle_cnns.fast: batch GEMMs on small maps, fast bias add, argmax max pool
    "onednn"  "fast", with convs on 4x4 maps and up through oneDNN (paddle_cnns.onednn; paddle 3)
    "auto"    the best this device and paddle have: plain on a GPU, else onednn when it works
              in this process, else fast

The choice is made when a model is built and lives in the layers it builds (`model.layers` says
which); nothing read later, at forward time, depends on a process-wide switch.
"""
from __future__ import annotations

import contextlib

import paddle
import paddle.nn as nn

from .errors import UsageError

KINDS = ("auto", "plain", "fast", "onednn")

# The kind the factories below build while a `building_with` block is open (create_model opens
# one around every build); outside of one they build paddle's plain layers.
_building = ["plain"]


def resolve(kind: str = "auto") -> tuple[str, str]:
    """The concrete kind ('plain', 'fast' or 'onednn') that `kind` means here, and why."""
    if kind not in KINDS:
        raise UsageError(f"unknown layer implementation {kind!r}; known: {', '.join(KINDS)}")
    from . import onednn

    on_cpu = paddle.get_device() == "cpu"
    if kind == "auto":
        if not on_cpu:
            return "plain", "paddle's own layers on the GPU (cuDNN)"
        reason = onednn.unavailable_reason()
        if reason is None:
            return "onednn", "oneDNN convs on the CPU"
        return "fast", f"fast layers without oneDNN: {reason}"
    if kind == "onednn":
        reason = onednn.unavailable_reason()
        if reason is not None:
            raise UsageError(f"the oneDNN layers cannot run here: {reason}")
    return kind, "as asked"


@contextlib.contextmanager
def building_with(kind: str):
    """Layers made by conv2d()/max_pool2d() inside this block are of `kind` (resolved first)."""
    concrete, _ = resolve(kind)
    if concrete == "onednn":
        # One model trains at a time: free what earlier models' oneDNN convs left (see there).
        from .onednn import release_executors

        release_executors()
    _building.append(concrete)
    try:
        yield concrete
    finally:
        _building.pop()


def conv2d(in_channels, out_channels, kernel_size, stride, padding, bias) -> nn.Conv2D:
    """A conv of the kind being built."""
    from .fast import FastConv2D
    from .onednn import OneDNNConv2D

    cls = {"plain": nn.Conv2D, "fast": FastConv2D, "onednn": OneDNNConv2D}[_building[-1]]
    return cls(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
               bias_attr=None if bias else False)


def max_pool2d(kernel_size, stride=None, padding=0) -> nn.MaxPool2D:
    """A max pool of the kind being built (oneDNN builds use the fast one: its pool gradient aborts)."""
    from .fast import FastMaxPool2D

    cls = nn.MaxPool2D if _building[-1] == "plain" else FastMaxPool2D
    return cls(kernel_size, stride, padding)
