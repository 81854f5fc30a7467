"""python -m ablations.predict and load_trained: a run folder back as a model that sees images as evaluation did."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest
from PIL import Image

from ablations import predict as predict_cli
from paddle_cnns.data import make_datasets
from paddle_cnns.errors import DataError
from paddle_cnns.inference import load_trained, normalize, predict_probs, read_image
from run_folders import CALTECH16, REPO, make_run, runner_config


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "ablations.predict", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})


@pytest.fixture(scope="module")
def runner_run(module_dir):
    """A real (1-epoch, tiny) run of the runner on the synthetic dataset."""
    tmp = module_dir("runner")
    proc = subprocess.run(
        [sys.executable, "-m", "ablations.run", "--variant", "baseline", "--dataset", "synthetic", "--image-size",
         "32", "--max-per-class", "4", "--batch-size", "8", "--epochs", "1", "--logdir", str(tmp / "logs"),
         "--checkpoint-dir", str(tmp / "ckpt"), "--results", str(tmp / "results.csv")],
        cwd=tmp, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(tmp / "ckpt" / "baseline" / "s0" / "synthetic-32px")


def _test_images(tmp_path, count=3):
    """Synthetic test images saved as PNGs (lossless, already 32 px) and their evaluation inputs."""
    bundle = make_datasets("synthetic", image_size=32, max_per_class=4)
    picks = [0, 4, 8][:count]  # first images of classes 0, 1, 2
    paths = []
    for i in picks:
        path = str(tmp_path / f"synthetic_{i}.png")
        Image.fromarray(bundle.test.images[i].transpose(1, 2, 0)).save(path)
        paths.append(path)
    return paths, bundle.test.get_batch(picks)[0]


def test_predict_gives_the_runs_evaluation_probabilities_for_image_files(runner_run, tmp_path):
    paths, eval_inputs = _test_images(tmp_path)
    trained = load_trained(runner_run)
    with paddle.no_grad():
        expected = paddle.nn.functional.softmax(trained.model(paddle.to_tensor(eval_inputs)), axis=1).numpy()
    proc = _cli("--run", runner_run, *paths, "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["image"] for r in results] == paths
    for row, result in zip(expected, results):
        assert len(result["predictions"]) == 5
        best = np.argsort(-row, kind="stable")[:5]
        assert [p["class"] for p in result["predictions"]] == [f"pattern_{k}" for k in best]
        np.testing.assert_allclose([p["probability"] for p in result["predictions"]], row[best], atol=1e-6)


def test_predict_text_output_ranks_five_classes_per_image_of_a_folder(runner_run, tmp_path):
    paths, _ = _test_images(tmp_path)
    proc = _cli("--run", os.path.join(runner_run, "final.pdparams"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "baseline" in lines[0] and "final.pdparams" in lines[0]
    assert [line for line in lines if line.endswith(".png")] == sorted(paths)
    ranks = [line.split()[0] for line in lines if line.startswith("  ")]
    assert ranks == ["1.", "2.", "3.", "4.", "5."] * 3
    probs = [float(line.split()[-1].rstrip("%")) for line in lines if line.startswith("  ")]
    assert all(a >= b for a, b in zip(probs[:5], probs[1:5]))


def test_a_grayscale_photo_is_seen_as_the_same_gray_in_three_channels(runner_run, tmp_path):
    gray = np.random.default_rng(0).integers(0, 256, (50, 70), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.png")
    trained = load_trained(runner_run)
    a, b = (read_image(str(tmp_path / n), trained) for n in ("gray.png", "rgb.png"))
    assert a.shape == (3, 32, 32) and np.array_equal(a, b)
    probs = predict_probs(trained, normalize(np.stack([a, b]), trained))
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)


def test_caltech16_runs_take_class_names_and_statistics_from_the_committed_lists(tmp_path):
    run = make_run(str(tmp_path / "run"), "lenet", 28)
    trained = load_trained(run, CALTECH16)
    with open(os.path.join(CALTECH16, "stats.json")) as f:
        stats = json.load(f)
    assert trained.class_names[0] == "airplanes" and trained.class_names[-1] == "watch"
    assert trained.num_classes == 16 and trained.in_channels == 3 and trained.image_size == 28
    assert trained.mean == stats["mean"] and trained.std == stats["std"] and trained.facts_from == "dataset"
    assert trained.weights.endswith("best.pdparams") and not trained.model.training


def test_run_json_facts_win_over_the_dataset_and_a_nested_config_is_read(tmp_path):
    facts = {"class_names": [f"c{i}" for i in range(16)], "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3,
             "run_id": "caltech16/28px/lenet/seed0"}
    run = make_run(str(tmp_path / "run"), "lenet", 28, facts=facts)
    config = runner_config("lenet", 28)
    config["recipe"] = {"name": "cpu", "image_size": config.pop("image_size")}  # a RunConfig holding a Recipe
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config, f)
    trained = load_trained(run, data_dir=str(tmp_path / "nowhere"))
    assert trained.class_names == facts["class_names"] and trained.mean == [0.5] * 3
    assert trained.facts_from == "run.json" and trained.run_id == facts["run_id"] and trained.image_size == 28


@pytest.mark.parametrize("case", ["missing image", "not an image", "no weights", "another model", "no config",
                                  "no dataset"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys):
    run = make_run(str(tmp_path / "run"), "lenet", 28)
    image = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    args, expect = ["--run", run, "--data-dir", CALTECH16, str(image)], ""
    if case == "missing image":
        args[-1], expect = str(tmp_path / "nope.jpg"), "does not exist"
    elif case == "not an image":
        (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
        args[-1], expect = str(tmp_path / "bad.jpg"), "cannot be decoded"
    elif case == "no weights":
        os.remove(os.path.join(run, "best.pdparams"))
        expect = "has no weights"
    elif case == "another model":
        make_run(str(tmp_path / "other"), "googlenet", 32)
        shutil.copy(os.path.join(tmp_path, "other", "best.pdparams"), os.path.join(run, "best.pdparams"))
        expect = "not a lenet"
    elif case == "no config":
        os.remove(os.path.join(run, "config.json"))
        expect = "no config.json"
    else:  # run from a folder without data/caltech16, and no --data-dir
        args, expect = ["--run", run, str(image)], "pass --data-dir"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        predict_cli.main(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert exited.value.code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], err


def test_load_trained_names_what_is_wrong_with_a_foreign_file(tmp_path):
    run = make_run(str(tmp_path / "run"), "lenet", 28)
    with open(os.path.join(run, "best.pdparams"), "wb") as f:
        f.write(b"\x00garbage")
    with pytest.raises(DataError, match="cannot read weights"):
        load_trained(run, CALTECH16)


def test_a_stopped_runs_resumable_checkpoint_loads_when_no_weights_file_is_there(tmp_path):
    run = make_run(str(tmp_path / "run"), "lenet", 28)
    best = os.path.join(run, "best.pdparams")
    state = paddle.load(best)
    paddle.save({"format": 1, "model": state, "optimizer": {}, "meta": {}}, os.path.join(run, "latest.pdckpt"))
    os.remove(best)
    trained = load_trained(run, CALTECH16)
    assert trained.weights.endswith("latest.pdckpt")
    loaded = trained.model.state_dict()
    assert all(np.array_equal(loaded[k].numpy(), np.asarray(v)) for k, v in state.items())
