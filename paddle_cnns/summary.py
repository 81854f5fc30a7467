"""Per-block output shapes, parameter counts and multiply-accumulate counts of a model.

Our own counter, because `paddle.flops` crashes under numpy 2 in paddle 3.3. It counts the
multiply-accumulates (MACs) of convolutions and linear layers, the convention in which
published "FLOPs" are usually given (VGG16 at 224 px: 15.5 G); pooling, BatchNorm,
activations and bias adds are left out. One MAC is two floating-point operations.
"""
from __future__ import annotations
from dataclasses import dataclass

import paddle
import paddle.nn as nn

from .registry import create_model


@dataclass(frozen=True)
class BlockRow:
    name: str
    output_shape: tuple[int, ...]   # per image, without the batch dimension
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    model: str
    image_size: int
    in_channels: int
    num_classes: int
    blocks: list[BlockRow]
    params: int
    macs: int

    @property
    def size_mb(self) -> float:
        """Size of the float32 weights in MiB."""
        return self.params * 4 / 2**20  # float32 weights


def count_params(layer: nn.Layer) -> int:
    """Parameters of the layer, BatchNorm running statistics included (as paddle counts them)."""
    return sum(int(p.size) for p in layer.parameters())


def _layer_macs(layer, out) -> int:
    if isinstance(layer, nn.Conv2D):
        _, cin_per_group, kh, kw = layer.weight.shape
        return int(out.size) * cin_per_group * kh * kw
    if isinstance(layer, nn.Linear):
        return int(out.size) * layer.weight.shape[0]
    return 0


@paddle.no_grad()
def summarize_model(model: nn.Layer, in_channels: int, image_size: int) -> list[BlockRow]:
    """Run one image through `model` in eval mode and record each top-level block's output."""
    macs_by_block: dict[str, int] = {}
    current = [None]
    hooks = []
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            hooks.append(layer.register_forward_post_hook(
                lambda layer, inputs, out: macs_by_block.__setitem__(
                    current[0], macs_by_block.get(current[0], 0) + _layer_macs(layer, out))))
    was_training = model.training
    model.eval()
    try:
        rows, x = [], paddle.zeros([1, in_channels, image_size, image_size])
        for name, block in model.named_blocks():
            current[0] = name
            x = block(x)
            rows.append(BlockRow(name, tuple(x.shape[1:]), count_params(block), macs_by_block.get(name, 0)))
    finally:
        for h in hooks:
            h.remove()
        if was_training:
            model.train()
    return rows


def summary(name: str, image_size: int = 224, in_channels: int = 3, num_classes: int = 16,
            layers: str = "plain", **options) -> Summary:
    """Build model `name` and summarise it. Auxiliary heads (train-only) count in params, not MACs.

    Paddle's plain layers by default: the counts are the same with every implementation, and the
    oneDNN one would trace a program per conv for one forward pass."""
    model = create_model(name, num_classes=num_classes, in_channels=in_channels,
                         image_size=image_size, layers=layers, **options)
    rows = summarize_model(model, in_channels, image_size)
    return Summary(model.model_name, image_size, in_channels, num_classes, rows,
                   params=count_params(model), macs=sum(r.macs for r in rows))
