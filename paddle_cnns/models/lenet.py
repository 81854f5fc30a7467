"""LeNet as the article runs it on large inputs: 3 sigmoid convs, 2 max pools, 2 FC layers."""
from __future__ import annotations

import paddle.nn as nn

from ..layers import conv2d, max_pool2d, output_shape
from ..registry import ModelSpec, register
from .base import BlockNet

# F6, LeNet-5's hidden layer: 84 units (LeCun et al. 1998), as in the article.
HIDDEN = 84


def lenet(num_classes, in_channels, image_size):
    """LeNet-5's layers for `num_classes` classes on square `image_size` inputs."""
    # LeCun et al. 1998's layer sizes (6, 16, 120 maps; 5x5, 5x5, 4x4 kernels) on a larger
    # input, as in PaddlePaddle's tutorial and the article: the 120-map conv3 is no longer 1x1,
    # so fc1 sees 120 x 50 x 50 = 300,000 features at 224 px (computed below for any size).
    features = [
        ("conv1", nn.Sequential(conv2d(in_channels, 6, 5), nn.Sigmoid())),
        ("pool1", max_pool2d(2, 2)),
        ("conv2", nn.Sequential(conv2d(6, 16, 5), nn.Sigmoid())),
        ("pool2", max_pool2d(2, 2)),
        ("conv3", nn.Sequential(conv2d(16, 120, 4), nn.Sigmoid())),
    ]
    c, h, w = output_shape(nn.Sequential(*features), in_channels, image_size)
    head = [
        ("fc1", nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, HIDDEN), nn.Sigmoid())),
        ("fc2", nn.Linear(HIDDEN, num_classes)),
    ]
    return BlockNet(features + head)


# 28 px: 24 -> 12 -> 8 -> 4 -> 1; at 27 px conv3 has nothing left.
# Xavier uniform, the usual init for a sigmoid network, not the article's fluid defaults (listed
# in DEVIATIONS; the trick chain, whose variants are compared with each other, uses fluid's).
# Revision 2: the hidden layer has 84 units (revision 1 had 64).
register(ModelSpec("lenet", lenet, min_size=28, family="classic", init="xavier", revision=2,
                   summary="LeNet-5 layout on large inputs: 3 sigmoid convs, 2 max pools, FC 84, FC"))
