"""Grad-CAM (paddle_cnns.gradcam) on cases whose answer is known, and python -m ablations.explain."""
import os

import numpy as np
import paddle
import paddle.nn as nn
import pytest
from PIL import Image

from ablations import explain as explain_cli
from paddle_cnns import create_model
from paddle_cnns.gradcam import MIN_SIDE, default_layer, feature_layers, grad_cam
from run_folders import make_run

RED, GREEN = (0, 1)


def _two_detectors():
    """conv 1x1 (channel 0 = red, channel 1 = green) -> ReLU -> GAP -> class k reads channel k."""
    net = nn.Sequential(nn.Conv2D(3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(2, 2))
    net[0].weight.set_value(np.array([[1, -1, -1], [-1, 1, -1]], np.float32).reshape(2, 3, 1, 1))
    net[0].bias.set_value(np.zeros(2, np.float32))
    net[4].weight.set_value(np.eye(2, dtype=np.float32))  # paddle's Linear weight is [in, out]
    net[4].bias.set_value(np.zeros(2, np.float32))
    return net


def test_grad_cam_finds_the_one_region_that_carries_each_class():
    x = np.zeros((1, 3, 12, 12), np.float32)
    x[0, 0, 1:4, 1:4] = 1.0  # a red square top left
    x[0, 1, 8:11, 7:10] = 1.0  # a green square bottom right
    net = _two_detectors()
    for target, (rows, cols) in ((RED, (slice(1, 4), slice(1, 4))), (GREEN, (slice(8, 11), slice(7, 10)))):
        cams, _ = grad_cam(net, x, "1", targets=[target])
        inside = np.zeros((12, 12), bool)
        inside[rows, cols] = True
        assert cams.shape == (1, 12, 12) and cams[0].max() == pytest.approx(1.0)
        assert np.all(cams[0][inside] == pytest.approx(1.0)) and np.all(cams[0][~inside] == 0)


def test_grad_cam_explains_the_predicted_class_by_default():
    x = np.zeros((2, 3, 12, 12), np.float32)
    x[0, 0, 2:5, 2:5] = 1.0  # image 0: red (small) -> class RED
    x[1, 1, 6:12, 0:6] = 1.0  # image 1: green (large) -> class GREEN
    cams, logits = grad_cam(_two_detectors(), x, "1")
    assert list(logits.argmax(axis=1)) == [RED, GREEN]
    assert cams[0, 3, 3] == pytest.approx(1.0) and cams[0, 9, 3] == 0
    assert cams[1, 9, 3] == pytest.approx(1.0) and cams[1, 3, 3] == 0


def _square_images(n, rng, size=16):
    """Gray noise with one 4x4 square at a random place; its colour (red or green) is the class."""
    x = rng.normal(0.0, 0.1, (n, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    where = rng.integers(0, size - 4, (n, 2))
    for i, (label, (r, c)) in enumerate(zip(labels, where)):
        x[i, int(label), r:r + 4, c:c + 4] += 1.0
    return x, labels, where


def test_a_trained_network_is_explained_by_the_square_that_decides_its_class():
    paddle.seed(0)
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2D(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2D(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(8, 2))
    opt = paddle.optimizer.Adam(0.01, parameters=net.parameters())
    for _ in range(60):
        x, y, _ = _square_images(32, rng)
        loss = nn.functional.cross_entropy(net(paddle.to_tensor(x)), paddle.to_tensor(y))
        loss.backward()
        opt.step()
        opt.clear_grad()
    x, y, where = _square_images(20, rng)
    cams, logits = grad_cam(net, x, "3")
    assert (logits.argmax(axis=1) == y).mean() >= 0.9  # it learned the task ...
    peaks = [np.unravel_index(c.argmax(), c.shape) for c in cams]
    on_square = [r - 1 <= pr <= r + 4 and c - 1 <= pc <= c + 4 for (pr, pc), (r, c) in zip(peaks, where)]
    print("accuracy", (logits.argmax(axis=1) == y).mean(), "peaks on the square", np.mean(on_square))
    assert np.mean(on_square) >= 0.9  # ... and Grad-CAM points at the square, not the noise


def test_default_layer_is_the_deepest_map_of_at_least_min_side_pixels():
    at32, at64 = (create_model("all_tricks", 16, 3, s, layers="plain") for s in (32, 64))
    assert default_layer(at32, 3, 32) == "blocks.stage4.0"  # stage 4's conv block, 4 x 4 before its pool
    # the BatchNorm after the ConcatConv block's concatenation (the article's), 4 x 4 before the pool
    assert default_layer(at64, 3, 64) == "blocks.stage5.1"
    shapes = dict(feature_layers(at64, 3, 64))
    assert shapes["blocks.stage5.1"][1:] == [MIN_SIDE, MIN_SIDE] and shapes["blocks.stage6"][1:] == [2, 2]


@pytest.fixture(scope="module")
def runs(module_dir):
    tmp = module_dir("runs")
    return [make_run(str(tmp / name), name, 32, num_classes=10, dataset="synthetic") for name in ("baseline", "gap")]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i, mode in enumerate(("RGB", "L", "RGB")):
        path = str(tmp_path / f"img{i}.{'png' if i else 'jpg'}")
        shape = (40, 56, 3) if mode == "RGB" else (40, 56)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_explain_cli_writes_one_overlay_per_image(runs, images, tmp_path, capsys):
    out = str(tmp_path / "maps")
    assert explain_cli.main(["--run", runs[0], *images, "--out", out, "--class", "pattern_3"]) == 0
    written = sorted(os.listdir(out))
    assert written == ["img0.gradcam.png", "img1.gradcam.png", "img2.gradcam.png"]
    assert Image.open(os.path.join(out, written[0])).size[0] > 200
    printed = capsys.readouterr().out
    assert printed.count("pattern_3") == 3 and "layer blocks.stage4.0" in printed


@pytest.mark.parametrize("args,expect", [(["--layer", "blocks.nope"], "no such layer"),
                                         (["--class", "cat"], "unknown class 'cat'")])
def test_explain_cli_bad_layer_or_class_is_one_line_exit_2(args, expect, runs, images, capsys):
    with pytest.raises(SystemExit) as exited:
        explain_cli.main(["--run", runs[0], images[0], *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and expect in err[0]


def test_gradcam_figure_has_a_row_per_run_and_the_same_bytes_every_time(runs, images, tmp_path):
    one, two, again = (str(tmp_path / n) for n in ("one.png", "two.png", "again.png"))
    explain_cli.gradcam_figure(runs[:1], images, one)
    rows = explain_cli.gradcam_figure(runs, images, two, labels=["pattern_0", "pattern_1", "pattern_2"])
    explain_cli.gradcam_figure(runs, images, again, labels=["pattern_0", "pattern_1", "pattern_2"])
    assert [row["model"] for row in rows] == ["baseline", "gap"] and rows[0]["run"] == runs[0]
    assert all(len(row["predictions"]) == 3 and row["layer"] == "blocks.stage4.0" for row in rows)
    assert all(name.startswith("pattern_") for row in rows for name in row["predictions"])
    assert Image.open(two).size[1] > Image.open(one).size[1]
    with open(two, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read()


def test_the_report_draws_the_gradcam_figure_from_checkpoints_and_keeps_it_without_them(images, tmp_path):
    from ablations import report
    from ablations.results import append_row
    from report_helpers import row

    results, ckpt, data, out = (tmp_path / n for n in ("results.csv", "ckpt", "data", "out"))
    for name in ("gap", "baseline"):  # drawn in the chain's order, whatever the store's
        r = row(name, 0, 0.5)
        append_row(str(results), r)
        make_run(str(ckpt / r["run_id"]), name, 32, num_classes=10, dataset="synthetic")
    data.mkdir()
    (data / "Test.txt").write_text("".join(f"{os.path.basename(p)} {k}\n" for k, p in enumerate(images)))
    for p in images:
        os.replace(p, data / os.path.basename(p))
    report.build_report(str(results), str(tmp_path / "logs"), str(out), gradcam=str(ckpt), data_dir=str(data))
    md, png = (out / "report.md").read_bytes(), (out / "gradcam.png").read_bytes()
    assert b"![Grad-CAM of the trick variants on test images](gradcam.png)" in md
    rep = report.build_report(str(results), str(tmp_path / "logs"), str(out))["report"]
    folders, shown, labels = report.gradcam_inputs(rep, str(ckpt), str(data))
    assert [os.path.basename(os.path.dirname(f)) for f in folders] == ["baseline", "gap"]
    assert labels == ["c0", "c1", "c2"] and [os.path.basename(p) for p in shown] == ["img0.jpg", "img1.png", "img2.png"]
    report.build_report(str(results), str(tmp_path / "logs"), str(out))  # no weights: kept as it was
    assert (out / "report.md").read_bytes() == md and (out / "gradcam.png").read_bytes() == png
    os.remove(out / "gradcam.png")
    report.build_report(str(results), str(tmp_path / "logs"), str(out))
    assert b"No Grad-CAM figure" in (out / "report.md").read_bytes()
