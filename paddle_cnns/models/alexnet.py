"""AlexNet (Krizhevsky et al. 2012), single-tower, with the paper's 96-256-384-384-256 channels."""
from __future__ import annotations

import paddle.nn as nn

from ..layers import conv2d, fc_classifier, max_pool2d
from ..registry import ModelSpec, register
from .base import BlockNet


def _conv_relu(cin, cout, k, stride=1, padding=0):
    return [conv2d(cin, cout, k, stride, padding), nn.ReLU()]


def alexnet(num_classes, in_channels, image_size):
    """AlexNet for `num_classes` classes on square `image_size` inputs."""
    # Overlapping 3x3/2 max pools as in the paper. The paper's LRN layers are left out, as in
    # torchvision, the d2l chapters and the article. conv1 pads 2 so 224 px gives 55x55 maps and a 256x6x6
    # flatten: 62,378,344 parameters for 1000 classes, the paper's count.
    features = [
        ("stage1", nn.Sequential(*_conv_relu(in_channels, 96, 11, 4, 2), max_pool2d(3, 2))),
        ("stage2", nn.Sequential(*_conv_relu(96, 256, 5, padding=2), max_pool2d(3, 2))),
        ("stage3", nn.Sequential(*_conv_relu(256, 384, 3, padding=1),
                                 *_conv_relu(384, 384, 3, padding=1),
                                 *_conv_relu(384, 256, 3, padding=1), max_pool2d(3, 2))),
    ]
    # FC 4096-4096 with dropout 0.5 and linear logits (the article's ReLU on the logits is a
    # bug: see fc_classifier and DEVIATIONS).
    classifier = fc_classifier(nn.Sequential(*features), in_channels, image_size, num_classes)
    return BlockNet(features + [("classifier", classifier)])


# 63 px is the smallest input whose third max pool still has output:
# 63 -> conv1 15 -> pool 7 -> pool 3 -> pool 1; at 62 px the third pool gets 2x2 and gives 0.
register(ModelSpec("alexnet", alexnet, min_size=63, family="classic",
                   summary="AlexNet: 5 convs, 3 overlapping max pools, FC 4096-4096, dropout 0.5"))
