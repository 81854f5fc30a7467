"""BlockNet: a network that is a named sequence of blocks, so summaries can walk its stages."""
from __future__ import annotations

import paddle.nn as nn


class BlockNet(nn.Layer):
    """Runs `blocks` in order. Subclasses with side branches (GoogLeNet's aux heads) override forward."""

    def __init__(self, blocks: list[tuple[str, nn.Layer]]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        """The last block's output."""
        return self.blocks(x)

    def named_blocks(self):
        """[(name, block), ...] in order."""
        return list(self.blocks.named_children())
