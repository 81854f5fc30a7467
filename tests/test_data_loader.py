"""Datasets and the loader: normalisation, vectorised batches, determinism per (seed, epoch, index)."""
import numpy as np
import paddle
import pytest

from paddle_cnns.data import ArrayDataset, make_datasets, make_loader
from paddle_cnns.errors import UsageError


@pytest.fixture(scope="module")
def bundle():
    return make_datasets("synthetic", image_size=24, augment=True, seed=3)


def collect(loader):
    return [(x.numpy(), y.numpy()) for x, y in loader]


def test_item_is_normalised_float32_chw_and_int64_label(bundle):
    x, y = bundle.eval[5]
    assert x.shape == (3, 24, 24) and x.dtype == np.float32
    assert np.asarray(y).dtype == np.int64 and np.asarray(y).ndim == 0
    xs, _ = bundle.eval.get_batch(np.arange(len(bundle.eval)))
    train, _ = make_datasets("synthetic", image_size=24).train.get_batch(np.arange(len(bundle.train)))
    assert np.allclose(train.mean(axis=(0, 2, 3)), 0, atol=1e-3) and np.allclose(train.std(axis=(0, 2, 3)), 1, atol=1e-3)
    assert abs(xs.mean()) < 0.2


@pytest.mark.parametrize("split", ["train", "eval"])
def test_get_batch_equals_stacked_items(bundle, split):
    dataset = getattr(bundle, split)
    dataset.set_epoch(2)
    indices = [7, 0, 31, 7, -1]
    x, y = dataset.get_batch(indices)
    items = [dataset[i] for i in indices]
    assert np.array_equal(x, np.stack([i[0] for i in items])) and y.tolist() == [int(i[1]) for i in items]
    with pytest.raises(IndexError):
        dataset.get_batch([len(dataset)])


def test_augmentation_depends_only_on_seed_epoch_and_index(bundle):
    train = bundle.train
    assert train.augment and not bundle.eval.augment and not bundle.test.augment  # off by default
    train.set_epoch(1)
    a = train.get_batch([4, 9])[0]
    assert np.array_equal(a[1], train[9][0])  # same image whatever the batch it is in
    other = make_datasets("synthetic", image_size=24, augment=True, seed=3).train
    other.get_batch([1, 2, 3])  # unrelated draws first: no shared RNG state
    other.set_epoch(1)
    assert np.array_equal(other.get_batch([4, 9])[0], a)
    train.set_epoch(2)
    assert not np.array_equal(train.get_batch([4, 9])[0], a)
    reseeded = make_datasets("synthetic", image_size=24, augment=True, seed=4).train
    reseeded.set_epoch(1)
    assert not np.array_equal(reseeded.get_batch([4, 9])[0], a)
    plain = make_datasets("synthetic", image_size=24).train.get_batch([4, 9])[0]
    assert not np.array_equal(plain, a)
    assert np.abs(plain.mean(axis=(2, 3)) - a.mean(axis=(2, 3))).max() < 0.5  # same image, moved


def test_augmentation_flips_shifts_and_rotates_within_bounds():
    image = np.zeros((1, 1, 32, 32), np.uint8)
    image[0, 0, 8:24, 4:12] = 255  # a bar left of centre
    dataset = ArrayDataset(image, [0], [0.0], [1 / 255], augment=True)  # x = raw pixel values
    lefts = 0
    for epoch in range(40):
        dataset.set_epoch(epoch)
        out = dataset[0][0][0]
        cols = np.nonzero(out.max(axis=0) > 128)[0]
        assert 0.5 < (out > 128).sum() / (16 * 8) < 1.5  # the bar survives, roughly its size
        lefts += cols.mean() < 16
    assert 8 < lefts < 32  # mirrored about half the time


def test_loader_order_is_a_function_of_seed_and_epoch(bundle):
    eval_set = bundle.eval
    a = collect(make_loader(eval_set, 16, shuffle=True, seed=1, epoch=3))
    b = collect(make_loader(eval_set, 16, shuffle=True, seed=1, epoch=3))
    assert all(np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    c = collect(make_loader(eval_set, 16, shuffle=True, seed=1, epoch=4))
    assert not np.array_equal(a[0][1], c[0][1])
    loader = make_loader(eval_set, 16, shuffle=True, seed=1)
    loader.set_epoch(3)
    assert np.array_equal(collect(loader)[0][0], a[0][0])
    seen = np.concatenate([idx for idx in make_loader(eval_set, 16, shuffle=True).batches()])
    assert sorted(seen.tolist()) == list(range(len(eval_set)))


def test_loader_sets_the_augmentation_epoch_and_resumes_identically(bundle):
    train = bundle.train
    run = [collect(make_loader(train, 32, shuffle=True, seed=0, epoch=e)) for e in range(3)]
    resumed = collect(make_loader(train, 32, shuffle=True, seed=0, epoch=2))
    assert all(np.array_equal(x1, x2) for (x1, _), (x2, _) in zip(run[2], resumed))
    assert not np.array_equal(run[1][0][0], run[2][0][0])


def test_loader_lengths_dtypes_and_arguments(bundle):
    loader = make_loader(bundle.eval, 32, shuffle=False)
    assert len(loader) == 3 and len(make_loader(bundle.eval, 32, shuffle=False, drop_last=True)) == 2
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(32, 3, 24, 24), (32, 3, 24, 24), (16, 3, 24, 24)]
    x, y = batches[0]
    assert isinstance(x, paddle.Tensor) and x.dtype == paddle.float32 and y.dtype == paddle.int64
    assert y.numpy().tolist() == bundle.eval.labels[:32].tolist()
    with pytest.raises(UsageError):
        make_loader(bundle.eval, 0, shuffle=False)


def test_on_the_fly_resize_matches_pil_bilinear_and_keeps_flat_images_flat():
    from PIL import Image
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (2, 1, 28, 28)).astype(np.uint8)
    small[1] = 77
    dataset = ArrayDataset(small, [0, 1], [0.0], [1 / 255], image_size=64)
    x, _ = dataset.get_batch([0, 1])
    assert x.shape == (2, 1, 64, 64) and np.allclose(x[1], 77, atol=1e-3)
    pil = np.asarray(Image.fromarray(small[0, 0]).resize((64, 64), Image.BILINEAR), dtype=np.float32)
    assert np.abs(x[0, 0] - pil).max() <= 1.0  # PIL rounds to uint8
