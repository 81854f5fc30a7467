"""VGG 11/13/16/19 (Simonyan & Zisserman 2014), with and without BatchNorm after every conv."""
import paddle.nn as nn

from ..layers import conv_block, fc_classifier, max_pool2d
from ..registry import ModelSpec, register
from .base import BlockNet

# Convs per block for configurations A, B, D and E of the paper; channels double per block.
DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2),
          "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)


def vgg(num_classes, in_channels, image_size, depths, batch_norm):
    blocks, cin = [], in_channels
    for i, (n_convs, cout) in enumerate(zip(depths, CHANNELS), start=1):
        layers = []
        for _ in range(n_convs):
            layers += list(conv_block(cin, cout, 3, padding=1, norm="pre" if batch_norm else None))
            cin = cout
        blocks.append((f"block{i}", nn.Sequential(*layers, max_pool2d(2, 2))))
    # The paper's classifier on a 512 x (size/32)^2 flatten: 7x7 at 224 px, as published
    # (VGG16 with 1000 classes: 138,357,544 parameters).
    classifier = fc_classifier(nn.Sequential(*blocks), in_channels, image_size, num_classes)
    return BlockNet(blocks + [("classifier", classifier)])


for _name, _depths in DEPTHS.items():
    for _bn in (False, True):
        # Five 2x2 pools: 32 px is the smallest input that keeps a 1x1 map after the last one.
        register(ModelSpec(
            _name + ("_bn" if _bn else ""), vgg, min_size=32, family="classic",
            summary=f"VGG-{sum(_depths) + 3}" + (" with BatchNorm after every conv" if _bn else ""),
            options={"depths": _depths, "batch_norm": _bn}))
