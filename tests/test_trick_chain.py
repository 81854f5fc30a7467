"""The article's trick-CNN chain: its sizes, and that each trick changes only the layers it names."""
import functools

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_cnns as pc


def _trainable(model):
    return sum(int(p.size) for p in model.parameters() if not p.stop_gradient)


# Trainable parameters at 224 px and 16 classes, worked out by hand from the article's layer
# list (weights + biases; BatchNorm: scale + shift, 2 per channel; its running statistics are
# not trained). A k x k conv cin -> cout has cin*cout*k*k + cout.
#
# 5x5 stages: 3->64: 3*64*25 + 64 = 4,864; 64->128: 204,800 + 128 = 204,928;
#   128->256: 819,200 + 256 = 819,456; 256->512: 3,276,800 + 512 = 3,277,312;
#   512->1024: 13,107,200 + 1,024 = 13,108,224; 1024->1024: 26,214,400 + 1,024 = 26,215,424;
#   together 43,630,208. A BN after each: 2 * (64+128+256+512+1024+1024) = 6,016.
# FC head: five 2x2 pools leave 224/32 = 7, so 1024*7*7 = 50,176 features:
#   50,176*1024 + 1,024 = 51,381,248, then 1024*16 + 16 = 16,400: 51,397,648.
# GAP head: one Linear 1024*16 + 16 = 16,400.
# conv3x3 (two 3x3 convs per stage, each with its BN):
#   stage1 1,792 + 36,928 + 256 = 38,976;          stage2 73,856 + 147,584 + 512 = 221,952;
#   stage3 295,168 + 590,080 + 1,024 = 886,272;    stage4 1,180,160 + 2,359,808 + 2,048 = 3,542,016;
#   stage5 4,719,616 + 9,438,208 + 4,096 = 14,161,920; stage6 2 * 9,438,208 + 4,096 = 18,880,512;
#   together 37,731,648.
# ConcatConv on cin channels: 1x1 cin->384 | 1x1 cin->384, 3x3 384->256 | 1x1 cin->256,
#   5x5 256->256 | pool, 1x1 cin->128, one BN(1024):
#   cin*(384+384+256+128) + (384+384+256+256+256+128) + 384*256*9 + 256*256*25 + 2*1024
#   = 1,152*cin + 1,664 + 884,736 + 1,638,400 + 2,048 = 1,152*cin + 2,526,848,
#   i.e. 3,116,672 on 512 channels (stage 5) and 3,706,496 on 1,024 (stage 6).
# 5x5 stages 1-4 with BN: 4,992 + 205,184 + 819,968 + 3,278,336 = 4,308,480.
# 3x3 stages 1-4 with BN: (1,792+128) + (73,856+256) + (295,168+512) + (1,180,160+1,024) = 1,552,896.
ARTICLE_PARAMS_224 = {
    "sigmoid": 95_027_856,      # 43,630,208 + 51,397,648
    "baseline": 95_033_872,     # + 6,016 BN
    "leaky_relu": 95_033_872,   # activations have no parameters
    "gap": 43_652_624,          # 43,630,208 + 6,016 + 16,400
    "dropout": 95_033_872,
    "conv3x3": 89_129_296,      # 37,731,648 + 51,397,648
    "concat_conv": 85_040_272,  # 4,308,480 + 3,116,672 + (26,215,424 + 2,048) + 51,397,648
    "all_tricks": 8_392_464,    # 1,552,896 + 3,116,672 + 3,706,496 + 16,400 (the article: about 8.4 M)
}


def test_every_variant_has_a_hand_computed_count():
    assert set(ARTICLE_PARAMS_224) == set(pc.VARIANTS)


@pytest.mark.parametrize("name", sorted(pc.VARIANTS))
def test_trick_variant_has_the_articles_parameter_count_at_224_px(name):
    model = pc.create_model(name, num_classes=16, image_size=224)
    assert _trainable(model) == ARTICLE_PARAMS_224[name]


# ---------------------------------------------------------------- what each trick changes

def _kind(layer):
    """The paddle.nn class a layer is (FastConv2D is a Conv2D), or our own block class."""
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("paddle.nn"):
            return cls.__name__
    return type(layer).__name__


def _hparams(layer):
    """What defines a leaf layer beyond its type: parameter shapes and the settings that matter."""
    shapes = tuple(tuple(p.shape) for p in layer.parameters(include_sublayers=False))
    extra = {"Conv2D": lambda m: (tuple(m._stride), m._padding),
             "MaxPool2D": lambda m: (m.ksize, m.stride, m.padding),
             "LeakyReLU": lambda m: m._negative_slope,
             "Dropout": lambda m: m.p}.get(_kind(layer), lambda m: None)(layer)
    return shapes, extra


def _leaves(model):
    """(block name, leaf layer) in creation order."""
    return [(name, layer) for name, block in model.named_blocks()
            for _, layer in block.named_sublayers(include_self=True) if not list(layer.children())]


ACTS = {"Sigmoid", "LeakyReLU"}
STAGES = {f"stage{i}" for i in range(1, 7)}
# For each trick: the blocks it may change, and the layer types it adds, removes or alters there.
NAMED = {
    "batch_norm": (STAGES, {"BatchNorm2D"}),                    # a BN after each conv's activation
    "leaky_relu": (STAGES | {"head"}, ACTS),                    # every activation
    "gap": ({"head"}, {"AdaptiveAvgPool2D", "Linear"} | ACTS),  # GAP + one Linear for FC-act-FC
    "dropout": ({"head"}, {"Dropout"}),                         # dropout before the last Linear
    "conv3x3": (STAGES, {"Conv2D"}),                            # 3x3 kernels instead of 5x5
    "double_conv": (STAGES, {"Conv2D", "BatchNorm2D"} | ACTS),  # a second conv, its act and BN
    # the stage's conv becomes the multi-branch block; its single BN stays one BN
    "concat5": ({"stage5"}, {"Conv2D", "MaxPool2D"} | ACTS),
    "concat6": ({"stage6"}, {"Conv2D", "MaxPool2D"} | ACTS),
}


@functools.lru_cache(maxsize=None)
def _build(name, seed=7):
    """One seeded 32 px build per variant, shared by the tests below (none changes a weight)."""
    paddle.seed(seed)
    return pc.create_model(name, num_classes=16, image_size=32)


def _random_weights(leaves):
    """The layers whose weights are drawn from the RNG, in drawing order (biases are constants)."""
    return [layer for _, layer in leaves if _kind(layer) in ("Conv2D", "Linear")]


def _same_distribution(a, b):
    """Two draws of one initialiser: same spread (10%) and the same shape of distribution."""
    a, b = a.ravel(), b.ravel()
    tails = lambda w: np.abs(w).max() / w.std()  # noqa: E731  normal: >3 here; uniform: sqrt(3)
    return abs(a.std() / b.std() - 1) < 0.1 and abs(tails(a) - tails(b)) < 0.5 * tails(b)


@pytest.mark.parametrize("name", [v for v in pc.VARIANTS if v in pc.PARENTS])
def test_each_variant_differs_from_its_parent_only_in_the_layers_its_tricks_name(name):
    parent = pc.PARENTS[name]
    child_tricks, parent_tricks = pc.VARIANTS[name], pc.VARIANTS[parent]
    changed_tricks = [t for t in pc.Tricks.names() if getattr(child_tricks, t) != getattr(parent_tricks, t)]
    named_blocks = set().union(*(NAMED[t][0] for t in changed_tricks))
    named_types = set().union(*(NAMED[t][1] for t in changed_tricks))

    child, par = _leaves(_build(name)), _leaves(_build(parent))  # same seed
    rows = lambda leaves, blk: [(_kind(m), _hparams(m)) for b, m in leaves if b == blk]  # noqa: E731
    blocks = dict.fromkeys(b for b, _ in child + par)
    assert {b for b in blocks if rows(child, b) != rows(par, b)} == named_blocks

    # Outside the named layers everything is the same, in the same order.
    kept = lambda leaves: [(b, m) for b, m in leaves  # noqa: E731
                           if not (b in named_blocks and _kind(m) in named_types)]
    kc, kp = kept(child), kept(par)
    assert [(b, _kind(m), _hparams(m)) for b, m in kc] == [(b, _kind(m), _hparams(m)) for b, m in kp]

    # ... initialisation included. Up to the first weight whose shape differs the two builds
    # draw the same random numbers, so unchanged layers there must hold identical values;
    # after it, the same distribution.
    wc, wp = _random_weights(child), _random_weights(par)
    aligned = next((i for i, (a, b) in enumerate(zip(wc, wp)) if a.weight.shape != b.weight.shape),
                   min(len(wc), len(wp)))
    for (_, a), (_, b) in zip(kc, kp):
        for pa, pb in zip(a.parameters(include_sublayers=False), b.parameters(include_sublayers=False)):
            va, vb = pa.numpy(), pb.numpy()
            random = pa.ndim >= 2
            if not random or (a in wc[:aligned] and wc.index(a) == wp.index(b)):
                assert np.array_equal(va, vb), (name, _kind(a), pa.name)
            else:
                assert _same_distribution(va, vb), (name, _kind(a), pa.name)


@pytest.mark.parametrize("name", sorted(pc.VARIANTS))
def test_every_trick_variant_starts_from_fluids_default_initialisation(name):
    """The article's init in every variant: convs normal std sqrt(2/fan_in), Linear Xavier
    uniform, zero biases, BN scale 1 and shift 0; whatever the activation."""
    checked = 0
    for _, layer in _leaves(_build(name)):
        kind = _kind(layer)
        if kind == "Conv2D":
            w = layer.weight.numpy()
            std = np.sqrt(2.0 / np.prod(w.shape[1:]))
            assert abs(w.std() / std - 1) < 0.1 and abs(w.mean()) < 0.15 * std
            assert np.abs(w).max() > 2.5 * std  # a normal draw's tails, not a uniform's
        elif kind == "Linear":
            w = layer.weight.numpy()
            bound = np.sqrt(6.0 / sum(w.shape))
            assert 0.9 * bound < np.abs(w).max() <= bound + 1e-6
            assert abs(w.std() * np.sqrt(3) / bound - 1) < 0.1
        elif kind == "BatchNorm2D":
            assert np.all(layer.weight.numpy() == 1) and np.all(layer.bias.numpy() == 0)
        else:
            continue
        if getattr(layer, "bias", None) is not None and kind != "BatchNorm2D":
            assert np.all(layer.bias.numpy() == 0)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name", [v for v in pc.VARIANTS if pc.VARIANTS[v].batch_norm])
def test_batchnorm_follows_the_activation_never_the_conv(name):
    """The article's order, conv -> activation -> BN, in every stage (ConcatConv: see below)."""
    leaves = [m for _, m in _leaves(_build(name))]
    kinds = [_kind(m) for m in leaves]
    assert "BatchNorm2D" in kinds
    for i, kind in enumerate(kinds):
        if kind == "BatchNorm2D":
            assert kinds[i - 1] in ACTS, (name, i)


def test_leaky_relu_has_fluids_default_slope():
    slopes = {m._negative_slope for _, m in _leaves(_build("all_tricks")) if _kind(m) == "LeakyReLU"}
    assert slopes == {0.02}


@pytest.mark.parametrize("name,stage,cin", [("concat_conv", "stage5", 512), ("all_tricks", "stage5", 512),
                                            ("all_tricks", "stage6", 1024)])
def test_concat_conv_is_the_articles_block_with_one_batchnorm_after_the_concatenation(name, stage, cin):
    model = _build(name)
    children = list(getattr(model.blocks, stage).children())
    block = children[0]
    assert [_kind(m) for m in children[1:]] == ["BatchNorm2D"] + (["MaxPool2D"] if stage == "stage5" else [])
    assert children[1].weight.shape == [1024]
    branches = [[(_kind(m), tuple(m.weight.shape)) if _kind(m) == "Conv2D" else _kind(m)
                 for m in branch.sublayers(include_self=True) if not list(m.children())]
                for branch in block.children()]
    act = "LeakyReLU" if name == "all_tricks" else "Sigmoid"
    assert branches == [
        [("Conv2D", (384, cin, 1, 1)), act],
        [("Conv2D", (384, cin, 1, 1)), act, ("Conv2D", (256, 384, 3, 3)), act],
        [("Conv2D", (256, cin, 1, 1)), act, ("Conv2D", (256, 256, 5, 5)), act],
        ["MaxPool2D", ("Conv2D", (128, cin, 1, 1)), act],
    ]
    model.eval()
    assert block(paddle.randn([2, cin, 4, 4])).shape == [2, 1024, 4, 4]


def test_any_trick_combination_builds_and_is_named_consistently():
    t = pc.Tricks.parse("batch_norm,gap")
    assert t == pc.VARIANTS["gap"] and t.variant == "gap"
    odd = pc.Tricks.parse("leaky_relu+concat6")
    assert odd.variant == "tricks-leaky_relu+concat6"
    model = pc.create_model(odd.variant, num_classes=3, image_size=32)
    assert model.model_name == "tricks-leaky_relu+concat6" and model.tricks == odd
    assert model(paddle.randn([2, 3, 32, 32])).shape == [2, 3]
    with pytest.raises(pc.UsageError, match="unknown trick 'bn'"):
        pc.Tricks.parse("bn")


def test_concat_without_batch_norm_has_no_batchnorm_anywhere():
    model = pc.create_model("tricks-concat5+concat6", num_classes=3, image_size=32)
    assert not any(isinstance(m, nn.BatchNorm2D) for m in model.sublayers())
