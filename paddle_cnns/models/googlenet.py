"""GoogLeNet / Inception v1 (Szegedy et al. 2014), optionally with BatchNorm and auxiliary heads."""
from __future__ import annotations

import paddle
import paddle.nn as nn

from ..layers import batch_norm as batch_norm2d, conv_block, max_pool2d
from ..registry import ModelSpec, register
from .base import BlockNet


class Inception(nn.Layer):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 pool->1x1."""

    def __init__(self, cin, c1, c3, c5, pool_proj, norm=None, act="relu"):
        super().__init__()
        block = lambda i, o, k: conv_block(i, o, k, padding=k // 2, act=act, norm=norm)  # noqa: E731
        self.branch1 = block(cin, c1, 1)
        self.branch3 = nn.Sequential(block(cin, c3[0], 1), block(c3[0], c3[1], 3))
        # A true 5x5, as in the paper (torchvision's port uses 3x3 here by mistake).
        self.branch5 = nn.Sequential(block(cin, c5[0], 1), block(c5[0], c5[1], 5))
        self.branch_pool = nn.Sequential(max_pool2d(3, 1, padding=1), block(cin, pool_proj, 1))
        self.out_channels = c1 + c3[1] + c5[1] + pool_proj

    def forward(self, x):
        """The four branches' outputs, concatenated on channels."""
        return paddle.concat([self.branch1(x), self.branch3(x), self.branch5(x),
                              self.branch_pool(x)], axis=1)


class AuxHead(nn.Layer):
    """The paper's auxiliary classifier: 5x5/3 avg pool, 1x1 conv 128, FC 1024, dropout 0.7, FC."""

    def __init__(self, cin, num_classes, feature_size, norm=None):
        super().__init__()
        # 5x5 with stride 3 turns 4a's and 4d's 14x14 maps into 4x4 at 224 px, as published.
        # Smaller inputs have maps under 5x5; the window shrinks to the map so the head still
        # sees the whole map (1x1 output) instead of failing.
        k = min(5, feature_size)
        out = (feature_size - k) // 3 + 1
        self.pool = nn.AvgPool2D(k, 3)
        self.conv = conv_block(cin, 128, 1, norm=norm)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(128 * out * out, 1024), nn.ReLU(),
                                nn.Dropout(0.7), nn.Linear(1024, num_classes))

    def forward(self, x):
        """Class scores from an intermediate feature map."""
        return self.fc(self.conv(self.pool(x)))


# (in, 1x1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool proj): Table 1 of the paper.
INCEPTION_3 = [(192, 64, (96, 128), (16, 32), 32), (256, 128, (128, 192), (32, 96), 64)]
INCEPTION_4 = [(480, 192, (96, 208), (16, 48), 64), (512, 160, (112, 224), (24, 64), 64),
               (512, 128, (128, 256), (24, 64), 64), (512, 112, (144, 288), (32, 64), 64),
               (528, 256, (160, 320), (32, 128), 128)]
INCEPTION_5 = [(832, 256, (160, 320), (32, 128), 128), (832, 384, (192, 384), (48, 128), 128)]


def _pooled(size):
    """Size after a 3x3/2 max pool (or 7x7/2 conv) with 'same'-style padding: ceil(size / 2)."""
    return (size + 1) // 2


class GoogLeNet(BlockNet):
    """GoogLeNet: stem (b1, b2), Inception stages b3-b5 with global pooling, dropout, one Linear.

    batch_norm=True: conv-BN-ReLU everywhere (Ioffe & Szegedy's Inception-BN style).
    article_bn=True: the article's GoogLeNet_BN, three BatchNorms only: after b1's pool, after
    b3's pool and after the global pooling (the article found more than 2-3 BN layers lowered
    its accuracy).
    """

    def __init__(self, num_classes, in_channels, image_size, batch_norm=False, aux_logits=False,
                 article_bn=False):
        norm = "pre" if batch_norm else None
        pool = lambda: max_pool2d(3, 2, padding=1)  # noqa: E731  d2l's padding=1 pools
        bn = lambda c: [batch_norm2d(c)] if article_bn else []  # noqa: E731
        blocks = [
            ("b1", nn.Sequential(conv_block(in_channels, 64, 7, 2, 3, norm=norm), pool(), *bn(64))),
            ("b2", nn.Sequential(conv_block(64, 64, 1, norm=norm),
                                 conv_block(64, 192, 3, padding=1, norm=norm), pool())),
            ("b3", nn.Sequential(*[Inception(*c, norm=norm) for c in INCEPTION_3], pool(), *bn(480))),
            ("b4", nn.Sequential(*[Inception(*c, norm=norm) for c in INCEPTION_4], pool())),
            # BatchNorm2D on the 1x1 pooled map, before flattening: the same normalisation as a
            # 1-d BatchNorm on the 1024 features.
            ("b5", nn.Sequential(*[Inception(*c, norm=norm) for c in INCEPTION_5],
                                 nn.AdaptiveAvgPool2D(1), *bn(1024), nn.Flatten())),
            # Dropout 0.4 before the single Linear, as in the paper.
            ("head", nn.Sequential(nn.Dropout(0.4), nn.Linear(1024, num_classes))),
        ]
        super().__init__(blocks)
        self.aux_logits = aux_logits
        if aux_logits:
            size_4 = image_size
            for _ in range(4):  # conv1, pool1, pool2, pool3: the size inside stage 4
                size_4 = _pooled(size_4)
            self.aux1 = AuxHead(512, num_classes, size_4, norm=norm)  # after 4a
            self.aux2 = AuxHead(528, num_classes, size_4, norm=norm)  # after 4d

    def forward(self, x):
        """Logits; in training with aux heads, (logits, aux1 logits, aux2 logits)."""
        if not (self.aux_logits and self.training):
            return self.blocks(x)  # evaluation ignores the auxiliary heads
        b = dict(self.named_blocks())
        x = b["b3"](b["b2"](b["b1"](x)))
        aux = []
        for i, layer in enumerate(b["b4"].children()):
            x = layer(x)
            if i == 0:
                aux.append(self.aux1(x))
            elif i == 3:
                aux.append(self.aux2(x))
        logits = b["head"](b["b5"](x))
        # The train loop adds 0.3 x each auxiliary loss to the main loss (the paper's weight).
        return logits, *aux


def googlenet(num_classes, in_channels, image_size, batch_norm=False, aux_logits=False, article_bn=False):
    """A GoogLeNet for `num_classes` classes (options: see GoogLeNet)."""
    return GoogLeNet(num_classes, in_channels, image_size, batch_norm, aux_logits, article_bn)


# Five stride-2 stages take 32 px to a 1x1 map before global pooling; smaller inputs run but
# every stage from b4 on would see a single pixel.
for _bn in (False, True):
    for _aux in (False, True):
        register(ModelSpec(
            "googlenet" + ("_bn" if _bn else "") + ("_aux" if _aux else ""), googlenet,
            min_size=32, family="classic",
            summary="GoogLeNet (Inception v1)" + (", conv-BN-ReLU everywhere" if _bn else "")
                    + (", two auxiliary classifiers" if _aux else ""),
            options={"batch_norm": _bn, "aux_logits": _aux}))
register(ModelSpec("googlenet_bn_article", googlenet, min_size=32, family="classic",
                   summary="GoogLeNet (Inception v1) with the article's three BatchNorms: after "
                           "the first pool, after stage 3's pool and after global pooling",
                   options={"article_bn": True}))
