"""python -m ablations.explain: Grad-CAM overlays, where in an image a trained run finds its class.

    python -m ablations.explain --run checkpoints/all_tricks+lrdecay/s0/caltech16-32px photo.jpg --out explain
    python -m ablations.explain --run ... photo.jpg --layer blocks.stage3 --class Leopards
    python -m ablations.explain --run ... --list-layers

Each image gets <out>/<name>.gradcam.png: the image, the Grad-CAM heat map of the predicted (or
--class) class over it, the class and its probability. The map is taken at the deepest layer whose
feature map is at least 4 x 4 (a 1 x 1 map says nothing about where), or at --layer.
gradcam_figure() draws the report's grid: one row per run, one column per image.
"""
from __future__ import annotations

import argparse
import os
import sys

# Pillow before paddle (which `cli` imports): paddle 2.6 loads its own zlib, and a Pillow first
# imported after it fails on every PNG ("codec configuration error"); JPEGs are unaffected.
from PIL import Image  # noqa: F401

from . import cli

cli.paddle_environment("export")  # before paddle is imported: paddle's own IR, no oneDNN flags

import numpy as np  # noqa: E402

from paddle_cnns.errors import UsageError  # noqa: E402

from .predict import Parser, add_run_arguments, load  # noqa: E402

DISPLAY = 160  # px per image in the written PNGs
ALPHA = 0.5  # heat map opacity over the image


def explain(trained, paths: list[str], layer: str | None = None, target: str | None = None) -> dict:
    """Grad-CAM of `trained` for image files: {layer, cams [N, h, w], probs [N, K], targets [N]}."""
    from paddle_cnns.gradcam import default_layer, grad_cam
    from paddle_cnns.inference import normalize, read_image

    layer = layer or default_layer(trained.model, trained.in_channels, trained.image_size)
    targets = None
    if target is not None:
        if target not in trained.class_names:
            raise UsageError(f"unknown class {target!r}; the run's classes: {', '.join(trained.class_names)}")
        targets = [trained.class_names.index(target)] * len(paths)
    x = normalize(np.stack([read_image(p, trained) for p in paths]), trained)
    cams, logits = grad_cam(trained.model, x, layer, targets)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    chosen = np.asarray(targets) if targets is not None else probs.argmax(axis=1)
    return {"layer": layer, "cams": cams, "probs": probs, "targets": chosen}


def display_image(path: str, size: int = DISPLAY) -> np.ndarray:
    """The image as shown: RGB uint8 [size, size, 3], squashed whole as the model's input is."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """A [0, 1] map [h, w] upsampled (bilinear) to the image and blended over it as a jet heat map."""
    from matplotlib import colormaps

    size = image.shape[1], image.shape[0]
    heat = np.asarray(Image.fromarray(np.ascontiguousarray(cam, dtype=np.float32)).resize(size, Image.BILINEAR))
    colored = colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * image + alpha * colored, 0, 255).astype(np.uint8)


def _caption(trained, result: dict, i: int) -> str:
    k = int(result["targets"][i])
    return f"{trained.class_names[k]} {100 * result['probs'][i, k]:.0f}%"


def write_overlays(trained, paths: list[str], out_dir: str, result: dict) -> list[str]:
    """One PNG per image: the image beside its overlay; returns the files written."""
    from .report_figures import STYLE, save
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i, path in enumerate(paths):
        image = display_image(path)
        with rc_context(STYLE):
            fig = Figure(figsize=(4.4, 2.5))
            left, right = fig.subplots(1, 2)
            left.imshow(image)
            left.set_title(os.path.basename(path)[:28], fontsize=8)
            right.imshow(overlay(image, result["cams"][i]))
            right.set_title(_caption(trained, result, i), fontsize=8)
            for ax in (left, right):
                ax.set_axis_off()
            fig.suptitle(f"{trained.model_name}: Grad-CAM at {result['layer']}", fontsize=8)
            target = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".gradcam.png")
            save(fig, target)
        written.append(target)
    return written


def gradcam_figure(runs: list[str], images: list[str], path: str, labels: list[str] | None = None,
                   layer: str | None = None, data_dir: str | None = None, size: int = 96) -> list[dict]:
    """The report's figure: a row of the images, then one row per run (Grad-CAM of its predicted class
    at its default layer, or `layer`), captioned with the prediction; returns per run {run, model,
    layer, predictions}.

    labels: the images' true classes, to mark wrong predictions. Deterministic: the same runs and
    images give the same PNG bytes.
    """
    from paddle_cnns.inference import load_trained
    from .report_figures import STYLE, save
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    if not runs or not images:
        raise UsageError("gradcam_figure needs at least one run and one image")
    rows = []
    for run in runs:
        trained = load_trained(run, data_dir)
        rows.append((trained, explain(trained, images, layer)))  # reads (and checks) every image first
    shown = [display_image(p, size) for p in images]
    with rc_context(STYLE):
        fig = Figure(figsize=(1.25 * len(images) + 1.2, 1.35 * (len(runs) + 1)))
        axes = np.asarray(fig.subplots(len(runs) + 1, len(images), squeeze=False))
        for j, image in enumerate(shown):
            axes[0, j].imshow(image)
            axes[0, j].set_title(labels[j] if labels else os.path.basename(images[j])[:16], fontsize=7)
        axes[0, 0].set_ylabel("input", fontsize=7)
        for r, (trained, result) in enumerate(rows, start=1):
            for j, image in enumerate(shown):
                ax = axes[r, j]
                ax.imshow(overlay(image, result["cams"][j]))
                wrong = labels and trained.class_names[int(result["targets"][j])] != labels[j]
                # Below its own map: a title would sit under the map of the row above and be misread.
                ax.set_xlabel(_caption(trained, result, j), fontsize=6.5, labelpad=2,
                              color="#c0392b" if wrong else "black")
            axes[r, 0].set_ylabel(f"{trained.model_name}\n{result['layer'].replace('blocks.', '')}", fontsize=6.5)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        fig.tight_layout(pad=0.3)
        save(fig, path)
    return [{"run": trained.run_id, "model": trained.model_name, "layer": result["layer"],
             "predictions": [trained.class_names[int(k)] for k in result["targets"]]} for trained, result in rows]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m ablations.explain", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("images", nargs="*", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    p.add_argument("--out", default="explain", help="folder for the PNGs (default: explain)")
    p.add_argument("--layer", help="the layer to explain (see --list-layers; default: the deepest map of at "
                                   "least 4 x 4)")
    p.add_argument("--class", dest="target", metavar="NAME", help="explain this class instead of the predicted one")
    p.add_argument("--list-layers", action="store_true", help="list the layers with feature maps, then exit")
    return p


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from paddle_cnns.gradcam import default_layer, feature_layers
    from paddle_cnns.inference import expand_images

    paths = None if args.list_layers else expand_images(args.images)
    trained = load(args)
    if args.list_layers:
        default = default_layer(trained.model, trained.in_channels, trained.image_size)
        for name, (c, h, w) in feature_layers(trained.model, trained.in_channels, trained.image_size):
            print(f"{name:<32} {c:5d} x {h} x {w}{'   (default)' if name == default else ''}")
        return 0
    if args.layer and args.layer not in dict(trained.model.named_sublayers()):
        cli.fail(f"--layer {args.layer}: {trained.model_name} has no such layer; --list-layers shows them")
    result = explain(trained, paths, args.layer, args.target)
    for i, png in enumerate(write_overlays(trained, paths, args.out, result)):
        print(f"{paths[i]}: {_caption(trained, result, i)} -> {png}")
    print(f"Grad-CAM of {trained.model_name} at layer {result['layer']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
