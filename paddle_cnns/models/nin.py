"""Network in Network (Lin et al. 2013) in d2l's ImageNet layout: mlpconv blocks and global pooling."""
from __future__ import annotations

import paddle.nn as nn

from ..layers import conv2d, max_pool2d
from ..registry import ModelSpec, register
from .base import BlockNet


def nin_block(cin, cout, kernel_size, stride, padding):
    """One mlpconv block: a k x k conv and two 1x1 convs, each with its ReLU."""
    # One k x k conv followed by two 1x1 convs: the "micro network" shared across positions.
    return nn.Sequential(conv2d(cin, cout, kernel_size, stride, padding), nn.ReLU(),
                         conv2d(cout, cout, 1), nn.ReLU(),
                         conv2d(cout, cout, 1), nn.ReLU())


def nin(num_classes, in_channels, image_size):
    """NiN for `num_classes` classes on square `image_size` inputs."""
    blocks = [
        ("mlpconv1", nn.Sequential(nin_block(in_channels, 96, 11, 4, 0), max_pool2d(3, 2))),
        ("mlpconv2", nn.Sequential(nin_block(96, 256, 5, 1, 2), max_pool2d(3, 2))),
        ("mlpconv3", nn.Sequential(nin_block(256, 384, 3, 1, 1), max_pool2d(3, 2), nn.Dropout(0.5))),
        # The last block has one map per class; global average pooling turns each map into its
        # class score, replacing the FC layers. Its final ReLU is the paper's (the Caffe
        # model's cccp8 -> relu8 -> global pool) and d2l's: scores are >= 0 before softmax.
        ("mlpconv4", nin_block(384, num_classes, 3, 1, 1)),
        ("gap", nn.Sequential(nn.AdaptiveAvgPool2D(1), nn.Flatten())),
    ]
    return BlockNet(blocks)


# 67 px: conv1 15 -> pool 7 -> pool 3 -> pool 1; at 66 px the third pool gets 2x2 and gives 0.
register(ModelSpec("nin", nin, min_size=67, family="classic",
                   summary="Network in Network: 4 mlpconv blocks, dropout 0.5, global average pooling"))
