"""Run folders for the predict/export/explain tests, laid out as ablations.run lays them out, and a
few real Caltech-16 test images read straight from the official archive."""
from __future__ import annotations

import json
import os
import tarfile

import paddle

from ablations.config import Recipe, RunConfig
from paddle_cnns import create_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALTECH16 = os.path.join(REPO, "data", "caltech16")  # the committed labels.txt and stats.json
# Test-split images (data/caltech16/Test.txt) of four classes; car_side's photos are grayscale.
REAL_TEST_IMAGES = ("airplanes/image_0005.jpg", "car_side/image_0004.jpg", "Leopards/image_0011.jpg",
                    "watch/image_0002.jpg")


def runner_config(model: str, image_size: int, dataset: str = "caltech16", seed: int = 0, **extra) -> dict:
    """config.json as ablations.run writes it (RunConfig.to_json())."""
    cfg = RunConfig(model, Recipe("cpu", image_size, 1, 8, "momentum", 0.01), seed=seed, dataset=dataset)
    return {**cfg.to_json(), **extra}


def make_run(folder: str, model: str, image_size: int, num_classes: int = 16, dataset: str = "caltech16",
             seed: int = 0, weights: str = "best.pdparams", facts: dict | None = None) -> str:
    """A run folder with freshly initialised (seeded) weights, as a finished run leaves it."""
    os.makedirs(folder, exist_ok=True)
    paddle.seed(seed)
    with paddle.utils.unique_name.guard():
        net = create_model(model, num_classes=num_classes, in_channels=3, image_size=image_size, layers="fast")
    paddle.save(net.state_dict(), os.path.join(folder, weights))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(runner_config(model, image_size, dataset, seed), f)
    if facts is not None:
        with open(os.path.join(folder, "run.json"), "w") as f:
            json.dump(facts, f)
    return folder


def extract_real_images(archive: str, out_dir: str, names=REAL_TEST_IMAGES) -> list[str]:
    """Copy a few images out of 101_ObjectCategories.tar.gz (one pass over the archive)."""
    wanted = {"101_ObjectCategories/" + n: n for n in names}
    paths = {}
    os.makedirs(out_dir, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name in wanted:
                path = os.path.join(out_dir, wanted[member.name].replace("/", "_"))
                with open(path, "wb") as f:
                    f.write(tar.extractfile(member).read())
                paths[wanted[member.name]] = path
                if len(paths) == len(wanted):
                    break
    missing = sorted(set(names) - set(paths))
    assert not missing, f"not in the archive: {missing}"
    return [paths[n] for n in names]
