"""The streaming data path: JPEGs decoded per batch by DataLoader workers, deterministic, no cache; the imagenet recipe."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ablations.results import read_results
from paddle_cnns.data import decoded_bytes, make_datasets, make_loader
from paddle_cnns.data.streaming import StreamLoader, eval_image, inception_crop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_jpeg_folder(root, classes=3, per_split=(("train", 8), ("val", 3)), size=(60, 44)) -> str:
    """train/<class>/*.jpg and val/<class>/*.jpg: a colour per class plus noise, each image distinct."""
    for s, (split, n) in enumerate(per_split):
        for c in range(classes):
            folder = os.path.join(root, split, f"class{c}")
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                rng = np.random.default_rng([s, c, i])
                base = np.array([70 + 60 * c, 190 - 50 * c, 90 + 20 * i], dtype=np.int16)
                pixels = np.clip(base + rng.integers(-35, 35, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_jpeg_folder(str(tmp_path_factory.mktemp("jpegs")))


def _collect(loader):
    return [(x.numpy(), y.numpy()) for x, y in loader]


def test_streamed_batches_are_the_same_with_0_and_2_workers_and_change_with_the_epoch(folder):
    bundle = make_datasets("folder", folder, 32, augment=True, stream=True)
    runs = {w: _collect(StreamLoader(bundle.train, 5, shuffle=True, seed=3, epoch=2, workers=w)) for w in (0, 2)}
    assert [len(y) for _, y in runs[0]] == [5, 5, 5, 5, 4]  # 24 images
    for (x0, y0), (x2, y2) in zip(runs[0], runs[2]):
        assert x0.shape == (len(y0), 3, 32, 32) and x0.dtype == np.float32 and y0.dtype == np.int64
        assert np.array_equal(x0, x2) and np.array_equal(y0, y2)
    again = _collect(make_loader(bundle.train, 5, shuffle=True, seed=3, epoch=2))  # a resumed run's epoch 2
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, runs[0]))
    other = _collect(make_loader(bundle.train, 5, shuffle=True, seed=3, epoch=3))
    assert not np.array_equal(other[0][0], runs[0][0][0])


def test_the_same_image_gets_another_random_crop_each_epoch_and_evaluation_one_fixed_crop(folder):
    bundle = make_datasets("folder", folder, 32, augment=True, stream=True)
    train = [bundle.train.pixels(0, epoch) for epoch in (1, 2)]
    assert not np.array_equal(train[0], train[1]) and np.array_equal(train[0], bundle.train.pixels(0, 1))
    assert np.array_equal(bundle.eval.pixels(0, 1), bundle.eval.pixels(0, 2))


def test_inception_crop_keeps_8_to_100_percent_of_the_area_at_aspect_3_4_to_4_3():
    rng = np.random.default_rng(0)
    boxes = [inception_crop(rng, 300, 200) for _ in range(300)]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 300 and 0 <= top < bottom <= 200
        w, h = right - left, bottom - top
        assert 0.07 <= w * h / 60000 <= 1.0 and 0.7 <= w / h <= 1.4
    areas = [(r - l) * (b - t) / 60000 for l, t, r, b in boxes]
    assert min(areas) < 0.2 and max(areas) > 0.8  # the whole range is drawn, not one size


def test_evaluation_resizes_the_shorter_side_to_s_over_0_875_and_crops_the_centre():
    ramp = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (100, 1, 3))  # red = x, 200 x 100
    out = np.asarray(eval_image(Image.fromarray(ramp), 56))
    # shorter side 100 -> 64 (56 / 0.875): the 87.5 px wide centre of the original, x in [56.25, 143.75]
    assert out.shape == (56, 56, 3)
    assert abs(int(out[28, 0, 0]) - 57) <= 2 and abs(int(out[28, -1, 0]) - 143) <= 2


def test_ranks_stream_disjoint_slices_of_the_same_global_batches(folder):
    bundle = make_datasets("folder", folder, 32, stream=True)
    whole = StreamLoader(bundle.train, 6, shuffle=True, seed=1, epoch=1).batches()
    parts = [StreamLoader(bundle.train, 6, shuffle=True, seed=1, epoch=1, rank=r, world_size=2).batches() for r in (0, 1)]
    assert [np.concatenate(pair).tolist() for pair in zip(*parts)] == [b.tolist() for b in whole]


def test_decoded_size_is_counted_from_file_names(folder):
    assert decoded_bytes("folder", folder, 32) == (24 + 9) * 3 * 32 * 32
    assert decoded_bytes("folder", folder, 32, max_per_class=2) == (6 + 6) * 3 * 32 * 32
    assert decoded_bytes("synthetic", None, 32) is None


def _run(tmp, *args):
    return subprocess.run([sys.executable, "-m", "ablations.run", *args, "--logdir", "logs", "--checkpoint-dir",
                           "ckpt", "--results", "results.csv"], cwd=tmp, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_imagenet_recipe_streams_a_folder_and_a_folder_over_the_cache_limit_streams_too(folder, tmp_path):
    # The recipe: GoogLeNet-BN with augmentation, piecewise decay, streamed (sizes cut for a CPU test).
    proc = _run(tmp_path, "--recipe", "imagenet", "--variant", "googlenet_bn", "--dataset", "folder", "--data-dir",
                folder, "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--lr", "0.01",
                "--loader-workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = read_results(str(tmp_path / "results.csv")).iloc[0]
    assert (row.recipe, row.variant, row.status) == ("imagenet", "googlenet_bn", "finished")
    assert bool(row.stream) and bool(row.augment) and bool(row.lr_decay) and row.decay_epochs == [1]
    assert row.optimizer == "momentum" and row.weight_decay == pytest.approx(1e-4)
    assert os.path.exists(tmp_path / "ckpt" / row.run_id / "best.pdparams")
    assert not os.path.exists(tmp_path / "data" / "cache")  # nothing decoded up front
    # Any recipe: --cache auto streams when the decoded cache would pass --cache-limit (GiB)
    small = _run(tmp_path, "--variant", "lenet", "--dataset", "folder", "--data-dir", folder, "--image-size", "32",
                 "--epochs", "1", "--batch-size", "8", "--cache-limit", str(50_000 / 2**30), "--loader-workers", "0")
    assert small.returncode == 0, small.stdout + small.stderr
    rows = read_results(str(tmp_path / "results.csv"))
    assert bool(rows.iloc[-1].stream) and not os.path.exists(tmp_path / "data" / "cache")


def test_cache_off_for_a_dataset_without_jpegs_is_a_one_line_error(tmp_path):
    proc = _run(tmp_path, "--variant", "lenet", "--dataset", "synthetic", "--cache", "off")
    assert proc.returncode == 2 and "--cache off reads JPEG files" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_run_folder_written_before_the_stream_setting_is_the_same_run(tmp_path):
    from ablations import run as run_cli
    from ablations.config import Session
    from ablations.runfolder import paths_for, triage, write_json

    args = ["--variant", "lenet", "--dataset", "synthetic", "--logdir", str(tmp_path / "logs"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--results", str(tmp_path / "r.csv")]
    cfg = run_cli.plan(run_cli.build_parser().parse_args(args), on_gpu=False)[0]
    session = Session(logdir=str(tmp_path / "logs"), checkpoint_dir=str(tmp_path / "ckpt"))
    paths = paths_for(cfg, session)
    os.makedirs(paths.ckpt_dir)
    old = {k: v for k, v in cfg.to_json().items() if k != "stream"}  # as written before this setting
    write_json(paths.config, old)
    assert triage(cfg, paths, session) == "fresh"
    write_json(paths.config, {**old, "stream": True})  # a streamed run in that folder is another run
    with pytest.raises(Exception, match="other settings \\(stream\\)"):
        triage(cfg, paths, session)
