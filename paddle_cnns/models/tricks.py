"""The article's trick CNN: one builder, one frozen set of named tricks, every variant of the ablation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import paddle.nn as nn

from ..errors import UsageError
from ..layers import activation, batch_norm, conv_block, max_pool2d, output_shape
from ..registry import ModelSpec, register, register_resolver
from .base import BlockNet
from .googlenet import Inception


@dataclass(frozen=True)
class Tricks:
    """Which tricks are on. Each flag is read in exactly one place, in trick_cnn below."""
    batch_norm: bool = False   # BatchNorm after each conv (after its activation, as the article)
    leaky_relu: bool = False   # LeakyReLU (slope 0.02) instead of sigmoid, in convs and the hidden FC
    gap: bool = False          # global average pooling + one Linear instead of flatten + FC 1024
    dropout: bool = False      # dropout 0.5 before the last Linear
    conv3x3: bool = False      # 3x3 kernels instead of 5x5
    double_conv: bool = False  # two convs per stage, each with its activation and BN
    concat5: bool = False      # stage 5 is the article's Inception-style ConcatConv block
    concat6: bool = False      # stage 6 is a ConcatConv block too (on 1024 input channels)

    @classmethod
    def names(cls) -> list[str]:
        """The trick names, in field order."""
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
        """The names of the tricks that are on."""
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

# The article's ConcatConv widths, in Inception's order (1x1, (3x3 reduce, 3x3), (5x5 reduce,
# 5x5), pool proj): 1x1 ->384 | 1x1 ->384 -> 3x3 ->256 | 1x1 ->256 -> 5x5 ->256 | 3x3 max pool
# -> 1x1 ->128, concatenated to 384 + 256 + 256 + 128 = 1024 channels.
CONCAT_WIDTHS = (384, (384, 256), (256, 256), 128)


class ConcatConv(Inception):
    """The article's Inception-style multi-scale block (widths: CONCAT_WIDTHS), on `cin` channels.

    Every conv is followed by the activation, as Inception's; there is no BatchNorm inside:
    the article puts ONE BatchNorm after the concatenation (trick_cnn adds it).
    """

    def __init__(self, cin, act):
        super().__init__(cin, *CONCAT_WIDTHS, act=act)


def trick_cnn(num_classes, in_channels, image_size, tricks: Tricks):
    """Six conv stages (64..1024 channels), a 2x2 max pool after each of the first five, a head.

    Every variant starts from the same initialisation (the "fluid" scheme, see _spec), so a
    trick changes only the layers it names.
    """
    act = "leaky_relu" if tricks.leaky_relu else "sigmoid"
    # "post": conv -> activation -> BN, the article's order, kept in every stage.
    norm = "post" if tricks.batch_norm else None
    k = 3 if tricks.conv3x3 else 5
    concat_stages = {5} if tricks.concat5 else set()
    concat_stages |= {6} if tricks.concat6 else set()
    blocks, cin = [], in_channels
    for stage, cout in enumerate(STAGE_CHANNELS, start=1):
        if stage in concat_stages:
            # conv -> activation in every branch, then one BN on the concatenation: BN after
            # the activations, the same "post" order as the plain stages.
            block = ConcatConv(cin, act)
            layers = [block] + ([batch_norm(block.out_channels)] if norm else [])
        else:
            convs = 2 if tricks.double_conv else 1
            layers = [conv_block(cin if i == 0 else cout, cout, k, padding=k // 2, act=act, norm=norm)
                      for i in range(convs)]
        if stage <= 5:
            layers.append(max_pool2d(2, 2))
        blocks.append((f"stage{stage}", nn.Sequential(*layers)))
        cin = cout
    # paddle 2's upscale-in-train dropout, not fluid's default (see DEVIATIONS in __init__).
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
    # One initialisation for the whole chain, the article's (fluid's defaults), whatever the
    # activation: tying it to the activation would make leaky_relu vs baseline measure two
    # changes at once.
    # Revision 2: the article's ConcatConv, fluid's init for every variant, LeakyReLU slope 0.02
    # (revision 1 had 256-wide ConcatConv branches with a BN each and an activation-tied init).
    on = ", ".join(tricks.enabled()) or "none"
    return ModelSpec(name, trick_cnn, min_size=MIN_SIZE, family="trick", init="fluid",
                     summary=f"trick CNN, tricks: {on}", options={"tricks": tricks}, revision=2)


for _name, _tricks in VARIANTS.items():
    register(_spec(_name, _tricks))


@register_resolver
def _adhoc(name: str) -> ModelSpec | None:
    """Any other trick combination, named 'tricks-a+b' (as Tricks.variant names it)."""
    if not name.startswith(ADHOC_PREFIX):
        return None
    tricks = Tricks.parse(name[len(ADHOC_PREFIX):])
    return _spec(tricks.variant, tricks)
