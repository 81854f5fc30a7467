"""The article's trick CNN: one builder, one frozen set of named tricks, every variant of the ablation."""
from __future__ import annotations
from dataclasses import asdict, dataclass, fields

import paddle
import paddle.nn as nn

from ..errors import UsageError
from ..layers import activation, conv_block, max_pool2d, output_shape
from ..registry import ModelSpec, register, register_resolver
from .base import BlockNet


@dataclass(frozen=True)
class Tricks:
    """Which tricks are on. Each flag is read in exactly one place, in trick_cnn below."""
    batch_norm: bool = False   # BatchNorm after each conv (after its activation, as the article)
    leaky_relu: bool = False   # LeakyReLU instead of sigmoid, in convs and the hidden FC
    gap: bool = False          # global average pooling + one Linear instead of flatten + FC 1024
    dropout: bool = False      # dropout 0.5 before the last Linear
    conv3x3: bool = False      # 3x3 kernels instead of 5x5
    double_conv: bool = False  # two convs per stage, each with its activation and BN
    concat5: bool = False      # stage 5 is an Inception-style ConcatConv block
    concat6: bool = False      # stage 6 is a ConcatConv block too

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, text: str) -> "Tricks":
        """'batch_norm,gap' (or 'batch_norm+gap') -> Tricks(batch_norm=True, gap=True)."""
        wanted = [t.strip() for t in text.replace("+", ",").split(",") if t.strip()]
        unknown = [t for t in wanted if t not in cls.names()]
        if unknown:
            raise UsageError(f"unknown trick {unknown[0]!r}; known: {', '.join(cls.names())}")
        return cls(**{t: True for t in wanted})

    def enabled(self) -> list[str]:
        return [name for name, on in asdict(self).items() if on]

    @property
    def variant(self) -> str:
        """The variant's name: a named variant's when the set matches one, else 'tricks-a+b'."""
        for name, tricks in VARIANTS.items():
            if tricks == self:
                return name
        return ADHOC_PREFIX + "+".join(self.enabled())


ADHOC_PREFIX = "tricks-"

# The article's ablation chain, in study order: each variant adds one trick to `baseline`
# (baseline itself adds BatchNorm to `sigmoid`), and `all_tricks` combines them.
VARIANTS: dict[str, Tricks] = {
    "sigmoid": Tricks(),
    "baseline": Tricks(batch_norm=True),
    "leaky_relu": Tricks(batch_norm=True, leaky_relu=True),
    "gap": Tricks(batch_norm=True, gap=True),
    "dropout": Tricks(batch_norm=True, dropout=True),
    "conv3x3": Tricks(batch_norm=True, conv3x3=True, double_conv=True),
    "concat_conv": Tricks(batch_norm=True, concat5=True, dropout=True),
    "all_tricks": Tricks(batch_norm=True, leaky_relu=True, gap=True, dropout=True, conv3x3=True,
                         concat5=True, concat6=True),
}

# The variant each one is compared against in the ablation table.
PARENTS = {"baseline": "sigmoid", **{v: "baseline" for v in VARIANTS if v not in ("sigmoid", "baseline")}}

STAGE_CHANNELS = (64, 128, 256, 512, 1024, 1024)


class ConcatConv(nn.Layer):
    """Inception-style multi-scale block: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 pool->1x1, concatenated.

    Each branch gives a quarter of the output channels. The 1x1 reductions before the 3x3 and
    5x5 convs keep half and a quarter of a branch's width, in the spirit of Inception v1's
    table (e.g. 3a: 96->128 and 16->32), so the block costs a fraction of one wide 5x5 conv.
    """

    def __init__(self, cin, cout, act, norm):
        super().__init__()
        width = cout // 4
        block = lambda i, o, k: conv_block(i, o, k, padding=k // 2, act=act, norm=norm)  # noqa: E731
        self.branch1 = block(cin, width, 1)
        self.branch3 = nn.Sequential(block(cin, width // 2, 1), block(width // 2, width, 3))
        self.branch5 = nn.Sequential(block(cin, width // 4, 1), block(width // 4, width, 5))
        self.branch_pool = nn.Sequential(max_pool2d(3, 1, padding=1), block(cin, width, 1))

    def forward(self, x):
        return paddle.concat([self.branch1(x), self.branch3(x), self.branch5(x),
                              self.branch_pool(x)], axis=1)


def trick_cnn(num_classes, in_channels, image_size, tricks: Tricks):
    """Six conv stages (64..1024 channels), a 2x2 max pool after each of the first five, a head."""
    act = "leaky_relu" if tricks.leaky_relu else "sigmoid"
    norm = "post" if tricks.batch_norm else None
    k = 3 if tricks.conv3x3 else 5
    concat_stages = {5} if tricks.concat5 else set()
    concat_stages |= {6} if tricks.concat6 else set()
    blocks, cin = [], in_channels
    for stage, cout in enumerate(STAGE_CHANNELS, start=1):
        if stage in concat_stages:
            layers = [ConcatConv(cin, cout, act, norm)]
        else:
            convs = 2 if tricks.double_conv else 1
            layers = [conv_block(cin if i == 0 else cout, cout, k, padding=k // 2, act=act, norm=norm)
                      for i in range(convs)]
        if stage <= 5:
            layers.append(max_pool2d(2, 2))
        blocks.append((f"stage{stage}", nn.Sequential(*layers)))
        cin = cout
    drop = [nn.Dropout(0.5)] if tricks.dropout else []
    if tricks.gap:
        head = [nn.AdaptiveAvgPool2D(1), nn.Flatten(), *drop, nn.Linear(cin, num_classes)]
    else:
        c, h, w = output_shape(nn.Sequential(*blocks), in_channels, image_size)
        head = [nn.Flatten(), nn.Linear(c * h * w, 1024), activation(act), *drop,
                nn.Linear(1024, num_classes)]
    model = BlockNet(blocks + [("head", nn.Sequential(*head))])
    model.tricks = tricks
    return model


# Five 2x2 pools with 'same' padding: 32 px leaves a 1x1 map for stage 6.
MIN_SIZE = 32


def _spec(name: str, tricks: Tricks) -> ModelSpec:
    on = ", ".join(tricks.enabled()) or "none"
    return ModelSpec(name, trick_cnn, min_size=MIN_SIZE, family="trick",
                     nonlinearity="leaky_relu" if tricks.leaky_relu else "sigmoid",
                     summary=f"trick CNN, tricks: {on}", options={"tricks": tricks})


for _name, _tricks in VARIANTS.items():
    register(_spec(_name, _tricks))


@register_resolver
def _adhoc(name: str) -> ModelSpec | None:
    """Any other trick combination, named 'tricks-a+b' (as Tricks.variant names it)."""
    if not name.startswith(ADHOC_PREFIX):
        return None
    tricks = Tricks.parse(name[len(ADHOC_PREFIX):])
    return _spec(tricks.variant, tricks)
