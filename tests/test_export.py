"""python -m ablations.export: Paddle Inference and ONNX exports that give the trained model's logits.

Parity runs on real Caltech-16 test images (CALTECH101_ARCHIVE), every model family at its smallest
size. The ONNX tests need paddle2onnx, onnx and onnxruntime (requirements-export.txt) and skip without.
"""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ablations import export as export_cli
from paddle_cnns import deploy
from paddle_cnns.errors import CNNsError
from paddle_cnns.inference import load_trained, normalize, read_image
from run_folders import CALTECH16, REPO, extract_real_images, make_run

# Every family at its smallest input: LeNet, AlexNet, VGG (with BN), NiN, GoogLeNet with and
# without auxiliary heads, and the trick CNN (all_tricks has LeakyReLU, ConcatConv, GAP, dropout).
FAMILIES = [("lenet", 28), ("alexnet", 63), ("vgg11_bn", 32), ("nin", 67), ("googlenet", 32),
            ("googlenet_bn_aux", 32), ("sigmoid", 32), ("all_tricks", 32)]
TOLERANCE = 1e-4


def _onnx_tools():
    for name in ("paddle2onnx", "onnx", "onnxruntime"):
        pytest.importorskip(name, reason="ONNX export needs requirements-export.txt")


_EXTRACTED = {}


@pytest.fixture
def real_images(real_archive, tmp_path_factory):
    """A few real test images, read out of the archive once per test session."""
    if real_archive not in _EXTRACTED:
        _EXTRACTED[real_archive] = extract_real_images(real_archive, str(tmp_path_factory.mktemp("caltech")))
    return _EXTRACTED[real_archive]


def _inputs(trained, paths):
    return normalize(np.stack([read_image(p, trained) for p in paths]), trained)


@pytest.mark.parametrize("fmt", ["paddle", "onnx"])
@pytest.mark.parametrize("model,size", FAMILIES)
def test_export_matches_the_trained_model_on_real_test_images(model, size, fmt, real_images, tmp_path):
    if fmt == "onnx":
        _onnx_tools()
    trained = load_trained(make_run(str(tmp_path / "run"), model, size, seed=1), CALTECH16)
    x = _inputs(trained, real_images)
    with paddle.no_grad():
        reference = trained.model(paddle.to_tensor(x)).numpy()
    folder = str(tmp_path / "export")
    os.makedirs(folder)
    exported = export_cli.export_files(trained, fmt, folder)
    diff = np.abs(exported["run"](x) - reference).max()
    print(f"{model} {size}px {fmt}: max |logit diff| {diff:.3g}, logits up to {np.abs(reference).max():.3g}")
    assert reference.shape == (len(real_images), 16) and diff <= TOLERANCE


def test_googlenet_aux_heads_are_left_out_of_the_export(tmp_path):
    sizes = {}
    for model in ("googlenet", "googlenet_aux"):
        trained = load_trained(make_run(str(tmp_path / model), model, 32), CALTECH16)
        files = deploy.save_inference_model(trained.model, 3, 32, str(tmp_path / f"{model}-export"))
        sizes[model] = os.path.getsize(files["params"])
    aux_params = sum(int(np.prod(p.shape)) for n, p in trained.model.named_parameters() if n.startswith("aux"))
    assert aux_params > 100_000  # the heads are there in the trained model ...
    assert abs(sizes["googlenet_aux"] - sizes["googlenet"]) < 1000  # ... and not in its export


def _leaky_net(slope):
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.LeakyReLU(slope), paddle.nn.Conv2D(4, 2, 3))
    net.eval()
    return net


def test_onnx_leaky_relu_keeps_its_slope(tmp_path):
    """paddle2onnx 2.1.0 on paddle 3.x writes LeakyRelu with alpha 0: export must set it back."""
    _onnx_tools()
    import onnx

    net = _leaky_net(0.02)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with paddle.no_grad():
        reference = net(paddle.to_tensor(x)).numpy()
        slope_lost = _leaky_net(0.0)(paddle.to_tensor(x)).numpy()
    assert np.abs(slope_lost - reference).max() > 1e-3  # the input does exercise the slope
    files = deploy.save_inference_model(net, 3, 8, str(tmp_path / "paddle"), composite=False)
    path = str(tmp_path / "model.onnx")
    deploy.to_onnx(files, path, deploy.leaky_relu_slopes(net))
    nodes = [n for n in onnx.load(path).graph.node if n.op_type == "LeakyRelu"]
    assert len(nodes) == 1 and [a.f for a in nodes[0].attribute if a.name == "alpha"] == [pytest.approx(0.02)]
    assert np.abs(deploy.onnx_logits(path, x) - reference).max() <= 1e-5


def test_paddle_inference_runs_leaky_relu_models_with_default_cpu_passes(tmp_path):
    """Paddle Inference 3.3.1's oneDNN conv+activation fusion crashes on leaky_relu; the export avoids it.

    In a child process: a crash must fail this test, not end the test run.
    """
    script = (
        "import sys, numpy as np, paddle\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_export import _leaky_net\n"
        "from paddle_cnns import deploy\n"
        "net = _leaky_net(0.02)\n"
        "x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype('float32')\n"
        f"files = deploy.save_inference_model(net, 3, 8, {str(tmp_path)!r})\n"
        "d = np.abs(deploy.paddle_inference_logits(files, x) - net(paddle.to_tensor(x)).numpy()).max()\n"
        "print('diff', d)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) <= 1e-5


def _export(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "ablations.export", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": REPO + os.pathsep +
                                                       os.environ.get("PYTHONPATH", "")})


def test_export_cli_writes_model_labels_preprocessing_and_refuses_an_existing_out(tmp_path):
    run = make_run(str(tmp_path / "run"), "lenet", 28)
    out = str(tmp_path / "exported")
    proc = _export("--run", run, "--data-dir", CALTECH16, "--format", "paddle", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "parity: max |logit difference|" in proc.stdout
    files = set(os.listdir(out))
    assert {"export.json", "inference.pdiparams", "labels.txt", "preprocess.json"} <= files
    assert len(files & {"inference.json", "inference.pdmodel"}) == 1  # paddle 3's PIR program, or 2.6's
    manifest = json.load(open(os.path.join(out, "export.json")))
    assert manifest["model"] == "lenet" and manifest["parity"]["max_abs_logit_diff"] <= TOLERANCE
    assert open(os.path.join(out, "labels.txt")).readline() == "0 airplanes\n"
    assert json.load(open(os.path.join(out, "preprocess.json")))["image_size"] == 28
    before = sorted(os.listdir(out))
    again = _export("--run", run, "--data-dir", CALTECH16, "--format", "paddle", "--out", out)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: --out {out} exists; pass --force to replace it"]
    assert sorted(os.listdir(out)) == before
    forced = _export("--run", run, "--data-dir", CALTECH16, "--format", "paddle", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(os.listdir(tmp_path)) == ["exported", "run"]  # no staging folder left behind


def test_a_failed_parity_check_writes_nothing(tmp_path, monkeypatch):
    trained = load_trained(make_run(str(tmp_path / "run"), "lenet", 28), CALTECH16)
    monkeypatch.setattr(export_cli, "TOLERANCE", -1.0)  # every export now fails its check
    with pytest.raises(CNNsError, match="nothing was written"):
        export_cli.export_run(trained, "paddle", str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path)) == ["run"]
