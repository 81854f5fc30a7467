"""VGG 11/13/16/19 (Simonyan & Zisserman 2014), with and without BatchNorm after every conv."""
from __future__ import annotations

import paddle.nn as nn

from ..layers import conv_block, fc_classifier, max_pool2d
from ..registry import ModelSpec, register
from .base import BlockNet

# Convs per block for configurations A, B, D and E of the paper; channels double per block.
DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2),
          "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)

# The article's VGG_BN is VGG13 with two BatchNorms only, after conv 4 (block 2's last) and
# conv 9 (block 5's first); the article found more than 2-3 BN layers lowered its accuracy.
ARTICLE_BN_CONVS = (4, 9)


def vgg(num_classes, in_channels, image_size, depths, batch_norm=False, bn_after=()):
    """A VGG with `depths` convs per block and the paper's FC head.

    batch_norm=True: conv-BN-ReLU for every conv (the usual VGG-BN). bn_after: numbers (from 1)
    of the convs followed by a BatchNorm after their ReLU (conv-ReLU-BN, the order of the
    article's trick CNN, whose style its VGG_BN shares); their convs keep their bias, as in
    the article's fluid convs.
    """
    blocks, cin, n = [], in_channels, 0
    for i, (n_convs, cout) in enumerate(zip(depths, CHANNELS), start=1):
        layers = []
        for _ in range(n_convs):
            n += 1
            norm = "pre" if batch_norm else "post" if n in bn_after else None
            layers += list(conv_block(cin, cout, 3, padding=1, norm=norm))
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
    if _name == "vgg13":
        register(ModelSpec(
            "vgg13_bn_article", vgg, min_size=32, family="classic",
            summary="VGG-13 with the article's two BatchNorms, after conv 4 and conv 9",
            options={"depths": _depths, "bn_after": ARTICLE_BN_CONVS}))
