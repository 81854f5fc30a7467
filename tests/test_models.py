"""The model zoo: every registered network builds, runs and trains at every supported size."""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

import paddle_cnns as pc
from paddle_cnns.summary import count_params, summary

ALL = pc.list_models()


def _sizes(name):
    lo = max(32, pc.get_spec(name).min_size)
    return sorted({lo, max(lo, 64), max(lo, 96), 224})


@pytest.mark.slow
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", ALL)
def test_every_model_gives_logits_and_backpropagates_at_every_size(name, in_channels):
    # The channel count reaches only the first conv and sizes reach only the spatial shapes, so
    # grayscale is checked at the smallest size and RGB at every size (this matrix of 224 px
    # builds was the slowest part of the suite).
    sizes = _sizes(name) if in_channels == 3 else [min(_sizes(name))]
    for size in sizes:
        paddle.seed(0)
        model = pc.create_model(name, num_classes=5, in_channels=in_channels, image_size=size)
        n = 1  # one image keeps the builds and backward passes fast on 2 cores
        x = paddle.randn([n, in_channels, size, size])
        out = model(x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        assert logits.shape == [n, 5], (name, size)
        assert bool(paddle.isfinite(logits).all()), (name, size)
        loss = F.cross_entropy(logits, paddle.to_tensor([3]))
        loss.backward()
        grads = [p.grad for p in model.parameters() if not p.stop_gradient]
        assert all(g is not None for g in grads[:1]) and bool(paddle.isfinite(grads[0]).all())
        del model, out, logits, loss


@pytest.mark.parametrize("name", ALL)
def test_each_model_refuses_sizes_below_its_declared_minimum(name):
    spec = pc.get_spec(name)
    with pytest.raises(pc.UsageError, match=f"needs image_size >= {spec.min_size}"):
        pc.create_model(name, image_size=spec.min_size - 1)


def _windows_fit(name, size):
    """Does every conv kernel and max-pool window fit inside its (padded) input at `size` px?

    Paddle itself computes pool outputs with truncating division and so accepts a 3x3 window
    on a 2x2 map; the architecture's minimum is where every window still fits.
    """
    spec = pc.get_spec(name)
    model = spec.builder(num_classes=4, in_channels=1, image_size=max(size, spec.min_size), **spec.options)
    fits, hooks = [], []
    for layer in model.sublayers():
        if isinstance(layer, (nn.MaxPool2D, nn.Conv2D)):
            def check(layer, inputs):
                k = layer.ksize if isinstance(layer, nn.MaxPool2D) else layer.weight.shape[-1]
                pad = layer.padding if isinstance(layer, nn.MaxPool2D) else layer._padding
                pad = pad if isinstance(pad, int) else pad[0]
                fits.append(inputs[0].shape[-1] + 2 * pad >= k)
            hooks.append(layer.register_forward_pre_hook(check))
    x = paddle.zeros([1, 1, size, size])
    model.eval()
    try:
        for _, block in model.named_blocks():
            x = block(x)
            if isinstance(block, nn.Sequential) and x.ndim == 2:
                break
    except Exception:
        return False
    finally:
        for h in hooks:
            h.remove()
    return all(fits)


@pytest.mark.parametrize("name", ["lenet", "alexnet", "nin"])
def test_declared_minimum_is_the_smallest_size_where_every_window_fits(name):
    spec = pc.get_spec(name)
    assert _windows_fit(name, spec.min_size)
    assert not _windows_fit(name, spec.min_size - 1)


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(pc.UsageError) as e:
        pc.create_model("googlenet2")
    assert "unknown model 'googlenet2'" in str(e.value)
    for name in ("alexnet", "vgg16_bn", "googlenet", "all_tricks"):
        assert name in str(e.value)


@pytest.mark.parametrize("name,classes,size,expected", [
    ("vgg16", 1000, 224, 138_357_544),     # Simonyan & Zisserman, configuration D
    ("alexnet", 1000, 224, 62_378_344),    # Krizhevsky et al., single tower 96-256-384-384-256
])
def test_parameter_counts_equal_the_published_architectures(name, classes, size, expected):
    assert count_params(pc.create_model(name, num_classes=classes, image_size=size)) == expected


# The article's classic networks at 224 px and 16 classes, trainable parameters by hand (a k x k
# conv cin -> cout has cin*cout*k*k + cout; a BatchNorm 2 per channel, scale and shift).
#
# LeNet: conv1 3*6*25 + 6 = 456; conv2 6*16*25 + 16 = 2,416; conv3 16*120*4*4 + 120 = 30,840;
#   224 -> 220 -> pool 110 -> 106 -> pool 53 -> 50, so fc1 120*50*50*84 + 84 = 25,200,084;
#   fc2 84*16 + 16 = 1,360. Total 25,235,156.
# VGG13: block1 1,792 + 36,928; block2 73,856 + 147,584; block3 295,168 + 590,080;
#   block4 1,180,160 + 2,359,808; block5 2 * 2,359,808: convs 9,404,992. Classifier on
#   512*7*7 = 25,088: 25,088*4096 + 4096 = 102,764,544; 4096*4096 + 4096 = 16,781,312;
#   4096*16 + 16 = 65,552: 119,611,408. Total 129,016,400. The article's two BNs, after conv 4
#   (128 maps) and conv 9 (512): + 2*(128 + 512) = 1,280 -> 129,017,680.
# GoogLeNet: b1 3*64*49 + 64 = 9,472; b2 (64*64 + 64) + (64*192*9 + 192) = 114,944.
#   An Inception (cin, c1, (r3, c3), (r5, c5), p) has cin*(c1 + r3 + r5 + p) + 9*r3*c3
#   + 25*r5*c5 + (c1 + r3 + c3 + r5 + c5 + p):
#   3a 192*208 + 110,592 + 12,800 + 368 = 163,696;   3b 256*352 + 221,184 + 76,800 + 640 = 388,736
#   4a 480*368 + 179,712 + 19,200 + 624 = 376,176;   4b 512*360 + 225,792 + 38,400 + 648 = 449,160
#   4c 512*344 + 294,912 + 38,400 + 664 = 510,104;   4d 512*352 + 373,248 + 51,200 + 704 = 605,376
#   4e 528*576 + 460,800 + 102,400 + 1,024 = 868,352
#   5a 832*576 + 460,800 + 102,400 + 1,024 = 1,043,456
#   5b 832*752 + 663,552 + 153,600 + 1,264 = 1,444,080
#   head 1024*16 + 16 = 16,400. Total 5,989,952. The article's three BNs, after the first pool
#   (64 maps), after block 3's pool (480) and after global pooling (1024): + 2*1,568 = 3,136
#   -> 5,993,088.
GOOGLENET_224_16 = 5_989_952


@pytest.mark.parametrize("name,expected", [
    ("lenet", 25_235_156), ("vgg13", 129_016_400), ("vgg13_bn_article", 129_017_680),
    ("googlenet", GOOGLENET_224_16), ("googlenet_bn_article", 5_993_088),
])
def test_the_articles_classics_have_their_hand_computed_parameter_counts(name, expected):
    model = pc.create_model(name, num_classes=16, image_size=224)
    assert sum(int(p.size) for p in model.parameters() if not p.stop_gradient) == expected


def _kind(layer):
    """The paddle.nn class of a layer (our fast drop-ins subclass paddle's)."""
    return next(c.__name__ for c in type(layer).__mro__ if c.__module__.startswith("paddle.nn"))


def test_article_bn_models_put_batchnorm_only_where_the_article_does():
    vgg = pc.create_model("vgg13_bn_article", image_size=32)
    kinds = [_kind(m) for m in vgg.sublayers() if not list(m.children())]
    convs = [i for i, k in enumerate(kinds) if k == "Conv2D"]
    # conv 4 (block 2's second) and conv 9 (block 5's first), each conv -> ReLU -> BN
    assert [i for i, k in enumerate(kinds) if k == "BatchNorm2D"] == [convs[3] + 2, convs[8] + 2]
    assert kinds[convs[3] + 1] == kinds[convs[8] + 1] == "ReLU"
    g = pc.create_model("googlenet_bn_article", image_size=32)
    tails = {name: [_kind(m) for m in block.children()][-3:] for name, block in g.named_blocks()}
    assert tails["b1"][-2:] == tails["b3"][-2:] == ["MaxPool2D", "BatchNorm2D"]
    assert tails["b5"] == ["AdaptiveAvgPool2D", "BatchNorm2D", "Flatten"]
    assert sum(isinstance(m, nn.BatchNorm2D) for m in g.sublayers()) == 3


def test_deviations_from_the_article_are_listed_one_line_each():
    """The report's setup section prints these: (which models, what differs and why)."""
    assert pc.DEVIATIONS
    for scope, text in pc.DEVIATIONS:
        assert scope and len(text) > 40 and "\n" not in text
    assert any(scope == "alexnet" for scope, _ in pc.DEVIATIONS)


def test_googlenet_without_aux_heads_has_about_seven_million_parameters():
    n = count_params(pc.create_model("googlenet", num_classes=1000, image_size=224))
    assert 6.9e6 < n < 7.1e6, n


def test_googlenet_block_shapes_match_d2l_at_96_px():
    s = summary("googlenet", image_size=96, in_channels=1, num_classes=10)
    shapes = {b.name: b.output_shape for b in s.blocks}
    assert shapes["b1"] == (64, 24, 24)
    assert shapes["b2"] == (192, 12, 12)
    assert shapes["b3"] == (480, 6, 6)
    assert shapes["b4"] == (832, 3, 3)
    assert shapes["b5"] == (1024,)
    assert shapes["head"] == (10,)


def test_vgg16_mac_count_is_the_published_15_5_billion():
    s = summary("vgg16", image_size=224, in_channels=3, num_classes=1000)
    assert abs(s.macs - 15.47e9) / 15.47e9 < 0.01
    assert s.params == 138_357_544
    assert abs(s.size_mb - 138_357_544 * 4 / 2**20) < 1e-6


def test_googlenet_aux_heads_train_only_and_are_ignored_in_evaluation():
    paddle.seed(0)
    model = pc.create_model("googlenet_aux", num_classes=7, image_size=64)
    x = paddle.randn([2, 3, 64, 64])
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 3 and all(o.shape == [2, 7] for o in out)
    model.eval()
    assert model(x).shape == [2, 7]
    plain = pc.create_model("googlenet", num_classes=7, image_size=64)
    aux_params = count_params(model.aux1) + count_params(model.aux2)
    assert count_params(model) == count_params(plain) + aux_params


def test_aux_heads_follow_the_paper_at_224_px():
    model = pc.create_model("googlenet_aux", num_classes=10, image_size=224)
    # 4a's 14x14 map -> 5x5/3 average pool -> 4x4, 1x1 conv to 128 -> 2048 features -> FC 1024
    assert model.aux1.fc[1].weight.shape == [128 * 4 * 4, 1024]
    assert model.aux1.fc[3].p == 0.7


def test_classics_keep_their_own_initialisation():
    """Xavier-uniform bounds for the sigmoid LeNet, He-uniform for ReLU nets; zero biases.
    (The trick chain's fluid init: tests/test_trick_chain.py.)"""
    lenet = pc.create_model("lenet", image_size=32)
    conv = lenet.blocks.conv2[0]
    bound = np.sqrt(6.0 / (6 * 25 + 16 * 25))
    w = conv.weight.numpy()
    assert np.abs(w).max() <= bound + 1e-6 and np.abs(w).max() > 0.9 * bound
    assert np.all(conv.bias.numpy() == 0)
    alex = pc.create_model("alexnet", image_size=64)
    w = alex.blocks.stage2[0].weight.numpy()
    he_bound = np.sqrt(2.0) * np.sqrt(3.0 / (96 * 25))
    assert np.abs(w).max() <= he_bound + 1e-6 and np.abs(w).max() > 0.9 * he_bound


def test_same_seed_builds_identical_weights():
    paddle.seed(3)
    a = pc.create_model("gap", image_size=32)
    paddle.seed(3)
    b = pc.create_model("gap", image_size=32)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy())


def _learnable_batch(in_channels, size, classes=4, n=8, seed=0):
    """A tiny dataset a CNN learns quickly: each class brightens one quadrant."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 0.3, (n, in_channels, size, size)).astype("float32")
    h = size // 2
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, :, r * h:(r + 1) * h, q * h:(q + 1) * h] += 1.5
    return paddle.to_tensor(x), paddle.to_tensor(y.astype("int64"))


# Sigmoid nets need a larger step to move in 30 steps; GoogLeNet and the VGGs without BatchNorm
# oscillate at 0.01 on batches of 4 (the study trains on less noisy batches of 64): on CI vgg19
# spiked to loss 3.2 at 0.01, and vgg13 to 9.3 at 0.003 here, while 0.002 lowered every plain VGG
# with no spike for seeds 0-2 (the VGG paper, too, could not train its deep plain nets from scratch).
# googlenet_aux at 0.003 already spiked to 3.6 with paddle's layers and to 6.3 with the oneDNN
# convs (last bits differ, the trajectory with them); at 0.002 all three lower it alike.
# googlenet_bn_article, like googlenet, fell to 0.07 within 5 steps at 0.01 and then swung
# between 0.5 and 1.3.
TRAIN_LR = {"sigmoid": 0.05, "lenet": 0.05, "googlenet": 0.003, "googlenet_aux": 0.002,
            "googlenet_bn_article": 0.003,
            **{f"vgg{depth}": 0.002 for depth in (11, 13, 16, 19)}}


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_every_model_lowers_the_loss_in_30_steps_on_a_tiny_dataset(name):
    size = max(32, pc.get_spec(name).min_size)
    paddle.seed(0)
    model = pc.create_model(name, num_classes=4, in_channels=1, image_size=size)
    x, y = _learnable_batch(1, size)
    opt = paddle.optimizer.Momentum(TRAIN_LR.get(name, 0.01), momentum=0.9, parameters=model.parameters())
    model.train()
    losses = []
    for step in range(30):
        half = slice((step % 2) * 4, (step % 2 + 1) * 4)  # two batches of 4, alternating
        out = model(x[half])
        logits, aux = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        loss = F.cross_entropy(logits, y[half]) + sum(0.3 * F.cross_entropy(a, y[half]) for a in aux)
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    assert np.isfinite(losses).all(), name
    assert np.mean(losses[-6:]) < np.mean(losses[:6]), (name, losses[:6], losses[-6:])


def test_summary_cli_prints_the_block_table_and_labelled_totals(capsys):
    from ablations.summary import main
    assert main(["googlenet", "--image-size", "96", "--in-channels", "1", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "b3       480 x 6 x 6" in out and "832 x 3 x 3" in out
    # GOOGLENET_224_16 with one input channel (conv1 1*64*49 + 64 = 3,200 instead of 9,472) and
    # 10 classes (head 1024*10 + 10 = 10,250 instead of 16,400); no BatchNorm, no aux heads.
    assert f"parameters: {GOOGLENET_224_16 - 9_472 + 3_200 - 16_400 + 10_250:,}" in out
    assert "multiply-accumulates" in out and "FLOPs = 2 x MACs" in out


def test_summary_cli_rejects_a_too_small_size_in_one_line(capsys):
    from ablations.summary import main
    with pytest.raises(SystemExit) as e:
        main(["nin", "--image-size", "64"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: model 'nin' needs image_size >= 67 px, got 64; "
                                               "use --image-size 67 or more")
