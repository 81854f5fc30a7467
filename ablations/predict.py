"""python -m ablations.predict: a trained run's top-5 classes for your own images.

    python -m ablations.predict --run checkpoints/all_tricks+lrdecay/s0/caltech16-32px photo.jpg
    python -m ablations.predict --run checkpoints/.../best.pdparams my_photos/ --json

Each image is prepared as the run's evaluation prepared its test images: converted to RGB (a
grayscale photo is repeated on three channels), resized whole to the run's input size, and
normalised with the run's dataset statistics.
"""
from __future__ import annotations

import argparse
import json
import sys

# Pillow before paddle (which `cli` imports): paddle 2.6 loads its own zlib, and a Pillow first
# imported after it fails on every PNG ("codec configuration error"); JPEGs are unaffected.
from PIL import Image  # noqa: F401

from . import cli

cli.paddle_environment("export")  # before paddle is imported: paddle's own IR, no oneDNN flags

import numpy as np  # noqa: E402

from paddle_cnns import runtime  # noqa: E402
from paddle_cnns.errors import DataError  # noqa: E402


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of argparse's usage dump
        cli.fail(f"{message} (see python -m {self.prog.split()[-1]} --help)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """--run, --data-dir and --device: how the predict, export and explain commands find a model."""
    p.add_argument("--run", required=True, help="a run folder (checkpoints/<run_id>) or a weights file in one "
                                                "(best.pdparams, final.pdparams, latest.pdckpt)")
    p.add_argument("--data-dir", help="the run's dataset folder, for runs that do not record their class names "
                                      "and normalisation (default: where the run found it, e.g. data/caltech16)")
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")


def load(args):
    """load_trained with the CLI's hint added to a missing-dataset error."""
    from paddle_cnns.inference import load_trained

    runtime.set_device(args.device)
    try:
        return load_trained(args.run, args.data_dir)
    except DataError as e:
        if "class names and normalisation" in str(e) and not args.data_dir:
            raise DataError(f"{e} (pass --data-dir)") from None
        raise


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m ablations.predict", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout instead of text")
    return p


def predict(trained, paths: list[str], top: int) -> list[dict]:
    """[{image, predictions: [{class, probability}]}] for image files, all decoded before any is run."""
    from paddle_cnns.inference import normalize, predict_probs, read_image, top_k

    pixels = np.stack([read_image(path, trained) for path in paths])
    ranked = top_k(trained, predict_probs(trained, normalize(pixels, trained)), top)
    return [{"image": path, "predictions": [{"class": name, "probability": p} for name, p in best]}
            for path, best in zip(paths, ranked)]


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.top < 1:
        cli.fail(f"--top must be at least 1, got {args.top}")
    from paddle_cnns.inference import expand_images

    paths = expand_images(args.images)  # a missing image fails here, before the model is loaded
    trained = load(args)
    results = predict(trained, paths, args.top)
    if args.json:
        json.dump({"run": trained.run_dir, "run_id": trained.run_id, "model": trained.model_name,
                   "weights": trained.weights, "image_size": trained.image_size, "results": results},
                  sys.stdout, indent=1)
        print()
        return 0
    print(f"{trained.model_name} ({trained.run_id}, {trained.image_size} px, weights {trained.weights})")
    for result in results:
        print(result["image"])
        for rank, p in enumerate(result["predictions"], 1):
            print(f"  {rank}. {p['class']:<20} {100 * p['probability']:6.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
