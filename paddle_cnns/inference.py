"""A trained run as something to use: load_trained reads a run folder (or one of its checkpoint
files) into a model plus the facts its evaluation used (class names, input size, normalisation).

Every read of a run folder is in this module, so a change to the folder's layout is one change here.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
import numpy as np
import paddle

from .data.dataset import ArrayDataset
from .data.images import decode_image, is_image_name
from .errors import CNNsError, DataError, UsageError

CONFIG_FILE = "config.json"
# What a run folder does not record today (class names, mean/std, channels) would live here: the
# runner can write run_facts(...) into it, and load_trained then no longer needs the dataset.
FACTS_FILE = "run.json"
# The weights a run's test evaluation used first (best eval epoch), then the last epoch's, then a
# stopped run's resumable checkpoint.
WEIGHT_FILES = ("best.pdparams", "final.pdparams", "latest.pdckpt")


@dataclass
class Trained:
    """A model in eval mode and everything needed to feed it an image as its run's evaluation did."""
    model: paddle.nn.Layer
    model_name: str
    class_names: list[str]
    image_size: int
    in_channels: int
    mean: list[float]
    std: list[float]
    run_dir: str
    weights: str
    run_id: str = ""  # config.json does not record it: run.json's, else the run folder
    dataset: str = ""
    facts_from: str = ""  # where class names and mean/std came from: run.json or the dataset
    config: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """How many classes the model scores."""
        return len(self.class_names)

    def preprocessing(self) -> dict:
        """The input pipeline as data, for files written beside an exported model."""
        return {"image_size": self.image_size, "in_channels": self.in_channels,
                "color": "RGB" if self.in_channels == 3 else "L",
                "resize": "whole image to image_size x image_size, bilinear (PIL), aspect ratio not kept",
                "scale": 1 / 255, "mean": self.mean, "std": self.std,
                "formula": "x = (pixel / 255 - mean) / std per channel", "layout": "NCHW", "dtype": "float32"}


def run_facts(run_id: str, model_name: str, image_size: int, class_names, in_channels: int, mean, std,
              dataset: str = "") -> dict:
    """The facts load_trained needs beyond config.json, as the runner could save them in run.json."""
    return {"run_id": run_id, "model": model_name, "image_size": int(image_size), "in_channels": int(in_channels),
            "class_names": list(class_names), "mean": [float(m) for m in mean],
            "std": [float(s) for s in std], "dataset": dataset}


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} ({type(e).__name__}); is it a paddle-cnns run folder?") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a run configuration")
    return obj


def _find(config: dict, key: str, default=None):
    """config[key], looked for at the top level and then inside nested sections (a recipe)."""
    if key in config:
        return config[key]
    for value in config.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return default


def _locate(path: str) -> tuple[str, str]:
    """(run folder, weights file) for a run folder or a checkpoint file inside one."""
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist; give a run folder (checkpoints/<run_id>) or a weights file in one")
    if os.path.isdir(path):
        for name in WEIGHT_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return path, os.path.join(path, name)
        what = "run folder" if os.path.exists(os.path.join(path, CONFIG_FILE)) else "folder"
        raise DataError(f"{what} {path} has no weights ({', '.join(WEIGHT_FILES)}); train the run to the end "
                        "or give another run")
    return os.path.dirname(os.path.abspath(path)), path


def _load_state(weights: str) -> dict:
    try:
        state = paddle.load(weights)
    except Exception as e:  # a foreign or damaged file: say which, never a traceback
        raise DataError(f"cannot read weights {weights} ({type(e).__name__}); it is damaged or not a "
                        "paddle weights file") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a latest.pdckpt
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise DataError(f"{weights} holds no model weights")
    return state


def _check_fits(model, state: dict, weights: str, model_name: str) -> None:
    """One line naming the first mismatch when the weights are another model's."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and list(own[k].shape) != list(np.shape(state[k]))]
    if missing or extra or shapes:
        detail = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra else
                  f"{shapes[0]} is {list(np.shape(state[shapes[0]]))}, expected {list(own[shapes[0]].shape)}")
        raise DataError(f"weights {weights} are not a {model_name} for this run's classes and input size "
                        f"({len(missing)} missing, {len(extra)} unexpected, {len(shapes)} misshapen: {detail}); "
                        "they belong to another model")


def load_trained(path: str, data_dir: str | None = None) -> Trained:
    """Load a run folder (or a checkpoint file in one) as a Trained model in eval mode.

    The run's config.json names the model, dataset and input size. Class names and normalisation
    come from run.json when the run saved one, else from the dataset the way evaluation derives
    them (data_dir: where that dataset is, if not where the run found it).
    """
    from .registry import create_model, get_spec

    run_dir, weights = _locate(path)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise DataError(f"{run_dir} has no {CONFIG_FILE}: not a paddle-cnns run folder (the weights alone do not "
                        "say which model or classes they are)")
    config = _read_json(config_path)
    model_name, image_size = _find(config, "variant") or _find(config, "model"), _find(config, "image_size")
    if not isinstance(model_name, str) or not isinstance(image_size, int):
        raise DataError(f"{config_path} names no model and image size; is it a paddle-cnns run folder?")
    facts_path = os.path.join(run_dir, FACTS_FILE)
    if os.path.isfile(facts_path):
        facts, facts_from = _read_json(facts_path), FACTS_FILE
    else:
        facts, facts_from = dataset_facts(config, data_dir), "dataset"
    state = _load_state(weights)
    # Paddle's own layers: identical outputs to the training-time oneDNN/fast layers (within
    # rounding), plain ops that paddle.jit and paddle2onnx know how to export, and autograd that
    # Grad-CAM can run (paddle.grad rejects the fast layers' channel-bias gradient).
    model = create_model(get_spec(model_name).name, num_classes=len(facts["class_names"]),
                         in_channels=int(facts["in_channels"]), image_size=image_size, layers="plain")
    _check_fits(model, state, weights, model_name)
    model.set_state_dict(state)
    model.eval()
    return Trained(model, model_name, list(facts["class_names"]), image_size, int(facts["in_channels"]),
                   [float(m) for m in facts["mean"]], [float(s) for s in facts["std"]], run_dir, weights,
                   run_id=str(facts.get("run_id") or _find(config, "run_id", "") or run_dir),
                   dataset=str(_find(config, "dataset", "")), facts_from=facts_from, config=config)


def dataset_facts(config: dict, data_dir: str | None = None) -> dict:
    """Class names, channels and mean/std of a run's dataset, derived as its evaluation did."""
    from .data import caltech, make_datasets
    from .data.bundle import read_stats
    from .data.labels import CLASS_FILE, read_class_names
    from .data.listed import STATS_FILE

    dataset = _find(config, "dataset")
    data_dir = data_dir or _find(config, "data_dir")
    if dataset == "caltech16":
        folder = data_dir or caltech.DEFAULT_DIR
        if os.path.exists(folder) and caltech.is_caltech_source(folder):
            folder = caltech.DEFAULT_DIR  # a Caltech-101 archive is prepared into the default folder
        names_path, stats_path = os.path.join(folder, CLASS_FILE), os.path.join(folder, STATS_FILE)
        if os.path.isfile(names_path) and os.path.isfile(stats_path):  # the committed lists: no images needed
            mean, std = read_stats(stats_path, 3)
            return {"class_names": read_class_names(names_path), "in_channels": 3, "mean": mean, "std": std}
        if not os.path.exists(names_path):
            raise DataError(f"the run folder does not record its class names and normalisation, and the dataset "
                            f"they come from ({names_path}, {stats_path}) is not here; give the Caltech-16 folder")
    size = _find(config, "image_size")
    try:
        # Mean/std of datasets without a stats.json are computed on the train split at the run's size.
        bundle = make_datasets(dataset, data_dir, size, max_per_class=_find(config, "max_per_class"))
    except CNNsError as e:
        raise DataError(f"the run folder does not record its class names and normalisation, and its dataset "
                        f"{dataset!r} cannot be read to derive them: {e}") from None
    return {"class_names": bundle.class_names, "in_channels": bundle.in_channels,
            "mean": bundle.info["mean"], "std": bundle.info["std"]}


def read_image(path: str, trained: Trained) -> np.ndarray:
    """One image file decoded as the run's evaluation decoded its images: uint8 [C, S, S]."""
    if not os.path.isfile(path):
        raise DataError(f"image {path} does not exist" if not os.path.exists(path) else f"{path} is not a file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"cannot read image {path} ({e.strerror or type(e).__name__})") from None
    try:
        return decode_image(data, path, trained.image_size, trained.in_channels)
    except DataError as e:  # its advice is about dataset label lists; keep the reason
        reason = re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e).partition(" (")[2].partition("); ")[0])
        raise DataError(f"image {path} cannot be decoded ({reason or 'unknown reason'}): it is truncated or "
                        "not an image file") from None


def normalize(pixels: np.ndarray, trained: Trained) -> np.ndarray:
    """uint8 [N, C, S, S] -> float32 model input, by the evaluation's own ArrayDataset code."""
    return ArrayDataset(pixels, np.zeros(len(pixels), dtype=np.int64), trained.mean, trained.std).get_batch(
        np.arange(len(pixels)))[0]


def expand_images(paths) -> list[str]:
    """Image files from files and folders (a folder's images sorted by name, not recursive)."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path)
                           if is_image_name(n) and os.path.isfile(os.path.join(path, n)))
            if not found:
                raise DataError(f"folder {path} has no images (.jpg, .jpeg, .png, .bmp)")
            out.extend(found)
        elif not os.path.exists(path):
            raise DataError(f"image {path} does not exist")
        else:
            out.append(path)
    if not out:
        raise UsageError("no images given")
    return out


@paddle.no_grad()
def predict_probs(trained: Trained, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities float32 [N, classes] for normalised inputs [N, C, S, S]."""
    out = []
    for start in range(0, len(x), batch_size):
        logits = trained.model(paddle.to_tensor(x[start:start + batch_size]))
        out.append(paddle.nn.functional.softmax(logits, axis=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, trained.num_classes), dtype=np.float32)


def top_k(trained: Trained, probs: np.ndarray, k: int = 5) -> list[list[tuple]]:
    """Per row: [(class name, probability)] best first (ties by class index)."""
    k = min(k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(trained.class_names[i], float(p[i])) for i in row] for p, row in zip(probs, order)]
