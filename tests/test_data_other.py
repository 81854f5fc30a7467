"""Fashion-MNIST from IDX files, ImageNet-style folders, and the synthetic dataset."""
import os
import shutil

import numpy as np
import paddle
import pytest

from ablations import prepare
from data_helpers import make_fashion_mnist, make_image_folder, write_idx
from paddle_cnns.data import fashion_mnist, make_datasets, make_loader
from paddle_cnns.data.fashion_mnist import read_idx
from paddle_cnns.errors import DataError, UsageError


def test_fashion_mnist_reads_idx_gz_splits_last_tenth_and_resizes(tmp_path):
    folder = make_fashion_mnist(str(tmp_path / "fm"), n_train=50, n_test=20)
    bundle = make_datasets("fashion_mnist", folder, image_size=32)
    assert (len(bundle.train), len(bundle.eval), len(bundle.test)) == (45, 5, 20)
    assert bundle.in_channels == 1 and bundle.num_classes == 10 and bundle.class_names[9] == "Ankle boot"
    raw = read_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"), 3)
    assert np.array_equal(np.asarray(bundle.eval.images[:, 0]), raw[45:])  # the last 10% evaluates
    assert bundle.eval.labels.tolist() == [5, 6, 7, 8, 9]
    x, y = bundle.train[0]
    assert x.shape == (1, 32, 32) and x.dtype == np.float32 and int(y) == 0
    batch, _ = bundle.train.get_batch(np.arange(45))
    assert abs(float(batch.mean())) < 0.1  # normalised with the train split's own mean/std
    assert bundle.info["mean"][0] == pytest.approx(raw[:45].mean() / 255, abs=1e-6)


def test_fashion_mnist_reads_uncompressed_idx_and_max_per_class(tmp_path):
    folder = tmp_path / "fm"
    folder.mkdir()
    for split, n in (("train", 40), ("t10k", 10)):
        write_idx(str(folder / f"{split}-images-idx3-ubyte"), np.full((n, 28, 28), 9))
        write_idx(str(folder / f"{split}-labels-idx1-ubyte"), np.arange(n) % 10)
    bundle = make_datasets("fashion_mnist", str(folder), image_size=28, max_per_class=2)
    assert len(bundle.train) == 20 and len(bundle.test) == 10 and len(bundle.eval) == 4


@pytest.mark.parametrize("damage, phrase", [
    ("magic", "bad header"), ("short", "it is truncated"), ("count", "labels; use matching files"),
    ("label", "label 12 out of range 0..9"), ("missing", "files missing in"),
])
def test_fashion_mnist_bad_idx_files(tmp_path, damage, phrase):
    folder = make_fashion_mnist(str(tmp_path / "fm"), n_train=20, n_test=10)
    images = os.path.join(folder, "train-images-idx3-ubyte.gz")
    labels = os.path.join(folder, "train-labels-idx1-ubyte.gz")
    if damage == "magic":
        write_idx(images, np.zeros((20, 28, 28)).reshape(20, 28 * 28))  # 2-d: a wrong magic number
    elif damage == "short":
        import gzip
        data = gzip.open(images).read()
        gzip.open(images, "wb").write(data[:-10])
    elif damage == "count":
        write_idx(labels, np.arange(19) % 10)
    elif damage == "label":
        write_idx(labels, np.full(20, 12))
    else:
        os.remove(labels)
    with pytest.raises(DataError, match=phrase):
        make_datasets("fashion_mnist", folder, image_size=28)


def test_prepare_fashion_mnist_copies_checked_files(tmp_path, capsys):
    folder = make_fashion_mnist(str(tmp_path / "fm"))
    prepare.main(["fashion_mnist", "--source", folder, "--out", str(tmp_path / "out")])
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.listdir(folder))
    assert "50 train and 20 test images" in capsys.readouterr().out


def test_fashion_mnist_download_uses_paddles_mirror_files(tmp_path, monkeypatch):
    """Offline: the download goes through our atomic downloader with paddle's URLs and md5s."""
    source = make_fashion_mnist(str(tmp_path / "mirror"))
    calls = []

    def fake_download(url, dest_dir, filename=None, md5=None):
        calls.append((url, md5))
        shutil.copyfile(os.path.join(source, filename), os.path.join(dest_dir, filename))
        return os.path.join(dest_dir, filename)

    monkeypatch.setattr(fashion_mnist, "download", fake_download)
    monkeypatch.chdir(tmp_path)
    os.makedirs("data/fashion_mnist")
    bundle = make_datasets("fashion_mnist", image_size=28)  # data_dir None: the default folder, downloaded
    assert len(bundle.test) == 20 and len(calls) == 4
    assert all(url.startswith("https://dataset.bj.bcebos.com/fashion_mnist/") and len(md5) == 32 for url, md5 in calls)


def test_folder_dataset_uses_train_and_val_and_skips_non_images(tmp_path):
    root = make_image_folder(str(tmp_path / "imgs"), classes=("cat", "dog", "emu"))
    shutil.rmtree(os.path.join(root, "val", "dog"))  # val may lack a class: labels follow train's names
    bundle = make_datasets("folder", root, image_size=16, cache_dir=str(tmp_path / "cache"))
    assert bundle.class_names == ["cat", "dog", "emu"] and bundle.test is None
    assert len(bundle.train) == 9 and bundle.eval.labels.tolist() == [0, 0, 2, 2]
    assert bundle.info["skipped_files"] == 1 and bundle.train[0][0].shape == (3, 16, 16)
    os.makedirs(os.path.join(root, "test", "emu"))
    shutil.copy(os.path.join(root, "val", "emu", "0.jpg"), os.path.join(root, "test", "emu", "a.jpg"))
    with_test = make_datasets("folder", root, image_size=16, cache_dir=str(tmp_path / "cache"))
    assert with_test.test.labels.tolist() == [2]


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="needs train/<class>/"):
        make_datasets("folder", str(tmp_path), image_size=16)
    root = make_image_folder(str(tmp_path / "imgs"))
    os.makedirs(os.path.join(root, "val", "yak"))
    shutil.copy(os.path.join(root, "val", "cat", "0.jpg"), os.path.join(root, "val", "yak", "0.jpg"))
    with pytest.raises(DataError, match="not in train/: yak"):
        make_datasets("folder", root, image_size=16, cache_dir=str(tmp_path / "cache"))


def test_unknown_dataset_and_bad_arguments():
    with pytest.raises(UsageError, match="unknown dataset 'cifar'; known: caltech16, fashion_mnist, folder, synthetic"):
        make_datasets("cifar")
    with pytest.raises(UsageError, match="image_size"):
        make_datasets("synthetic", image_size=2)
    with pytest.raises(UsageError, match="max_per_class"):
        make_datasets("synthetic", max_per_class=0)


def test_synthetic_is_deterministic_and_sized():
    a = make_datasets("synthetic", image_size=20)
    b = make_datasets("synthetic", image_size=20, seed=5)
    assert (len(a.train), len(a.eval), len(a.test), a.num_classes, a.in_channels) == (320, 80, 80, 10, 3)
    assert np.array_equal(a.train.images, b.train.images) and a.train[0][0].shape == (3, 20, 20)
    assert not np.array_equal(a.train.images[:8], a.eval.images[:8])


def test_synthetic_is_learnable_by_a_small_cnn_in_a_few_dozen_steps():
    paddle.seed(0)
    bundle = make_datasets("synthetic", image_size=16)
    model = paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 16, 3, padding=1), paddle.nn.ReLU(), paddle.nn.MaxPool2D(2),
        paddle.nn.Conv2D(16, 32, 3, padding=1), paddle.nn.ReLU(), paddle.nn.AdaptiveAvgPool2D(1),
        paddle.nn.Flatten(), paddle.nn.Linear(32, 10))
    opt = paddle.optimizer.Adam(learning_rate=0.01, parameters=model.parameters())
    for epoch in range(4):  # 4 epochs x 10 steps of 32
        for x, y in make_loader(bundle.train, 32, shuffle=True, epoch=epoch):
            loss = paddle.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.clear_grad()
    model.eval()
    x, y = bundle.eval.get_batch(np.arange(len(bundle.eval)))
    accuracy = (model(paddle.to_tensor(x)).numpy().argmax(1) == y).mean()
    assert accuracy >= 0.9, accuracy
