"""python -m ablations.export: a trained run as a Paddle Inference model or an ONNX model.

    python -m ablations.export --run checkpoints/all_tricks+lrdecay/s0/caltech16-32px --format paddle --out export/all_tricks
    python -m ablations.export --run checkpoints/all_tricks+lrdecay/s0/caltech16-32px --format onnx --out export/all_tricks-onnx

--out gets the model (inference.json or .pdmodel + inference.pdiparams, or model.onnx), labels.txt
(`id name` per line), preprocess.json (input size, mean/std, colour order) and export.json (what was
exported, package versions, sizes, time and parity). Before anything is written the exported model is
run back (paddle.inference or onnxruntime) against the trained one on real test images of the run's
dataset (random inputs when the dataset is not here): its logits must agree within 1e-4.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

# Pillow before paddle (which `cli` imports): paddle 2.6 loads its own zlib, and a Pillow first
# imported after it fails on every PNG ("codec configuration error"); JPEGs are unaffected.
from PIL import Image  # noqa: F401

from . import cli

cli.paddle_environment("export")  # before paddle is imported: paddle's own IR, no oneDNN flags

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from paddle_cnns import deploy, runtime  # noqa: E402
from paddle_cnns.errors import CNNsError, UsageError  # noqa: E402

from .predict import Parser, add_run_arguments, load  # noqa: E402

TOLERANCE = 1e-4  # max |logit difference|, float32
FORMATS = ("paddle", "onnx")
PARITY_DATASETS = ("caltech16", "synthetic", "folder")  # read without downloading anything


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m ablations.export", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="paddle: Paddle Inference; onnx: via paddle2onnx")
    p.add_argument("--out", required=True, help="the folder to write (must not exist, unless --force)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--opset", type=int, default=deploy.ONNX_OPSET, help="ONNX opset (default %(default)s)")
    return p


def parity_inputs(trained, data_dir: str | None = None, per_class: int = 1) -> tuple[np.ndarray, str]:
    """Test images of the run's dataset, normalised as in evaluation; seeded noise when it is not here."""
    from paddle_cnns.data import make_datasets
    from paddle_cnns.inference import normalize

    if trained.dataset in PARITY_DATASETS:
        try:
            bundle = make_datasets(trained.dataset, data_dir or trained.config.get("data_dir"), trained.image_size,
                                   max_per_class=per_class)
            split = bundle.test if bundle.test is not None else bundle.eval
            if bundle.in_channels == trained.in_channels:
                return normalize(np.asarray(split.images), trained), f"{len(split)} {trained.dataset} test images"
        except CNNsError:
            pass
    x = np.random.default_rng(0).standard_normal((8, trained.in_channels, trained.image_size, trained.image_size))
    return x.astype(np.float32), "8 random inputs (the run's dataset is not here)"


def export_files(trained, fmt: str, folder: str, opset: int = deploy.ONNX_OPSET) -> dict:
    """Write the model in `fmt` into folder; {"files": [...], "run": callable(x) -> logits, ...}."""
    model, channels, size = trained.model, trained.in_channels, trained.image_size
    if fmt == "paddle":
        files = deploy.save_inference_model(model, channels, size, folder)
        return {"files": sorted(os.listdir(folder)), "run": lambda x: deploy.paddle_inference_logits(files, x)}
    staged = tempfile.mkdtemp(prefix="paddle-", dir=folder)
    try:
        files = deploy.save_inference_model(model, channels, size, staged, composite=False)
        onnx_path = os.path.join(folder, deploy.ONNX_FILE)
        info = deploy.to_onnx(files, onnx_path, deploy.leaky_relu_slopes(model), opset)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {"files": [deploy.ONNX_FILE], "run": lambda x: deploy.onnx_logits(onnx_path, x), **info}


def export_run(trained, fmt: str, out: str, force: bool = False, opset: int = deploy.ONNX_OPSET,
               data_dir: str | None = None) -> dict:
    """Export into a staging folder beside `out`, check parity, then move it into place; the manifest."""
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.tmp-", dir=parent)
    try:
        started = time.time()
        exported = export_files(trained, fmt, staging, opset)
        seconds = time.time() - started
        x, described = parity_inputs(trained, data_dir)
        with paddle.no_grad():
            reference = trained.model(paddle.to_tensor(x)).numpy()
        diff = float(np.abs(exported.pop("run")(x) - reference).max())
        if not diff <= TOLERANCE:
            raise CNNsError(f"the exported {fmt} model's logits differ from the trained model's by {diff:.3g} "
                            f"(> {TOLERANCE:g}) on {described}; nothing was written")
        manifest = _manifest(trained, fmt, staging, exported, seconds, diff, described)
        _write_side_files(trained, staging, manifest)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private; the export is not
        _publish(staging, out, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _manifest(trained, fmt, folder, exported, seconds, diff, described) -> dict:
    files = exported.pop("files")
    sizes = {name: os.path.getsize(os.path.join(folder, name)) for name in files}
    return {"format": fmt, "run": trained.run_dir, "run_id": trained.run_id, "model": trained.model_name,
            "weights": trained.weights, "num_classes": trained.num_classes, "input": [None, trained.in_channels,
            trained.image_size, trained.image_size], "input_name": deploy.INPUT_NAME, "files": sizes,
            "model_bytes": sum(sizes.values()), "export_seconds": round(seconds, 3),
            "parity": {"max_abs_logit_diff": diff, "tolerance": TOLERANCE, "inputs": described},
            "versions": deploy.package_versions(), **exported}


def _write_side_files(trained, folder, manifest) -> None:
    from paddle_cnns.data.labels import format_class_names

    with open(os.path.join(folder, "labels.txt"), "w", encoding="utf-8") as f:
        f.write(format_class_names(trained.class_names))
    for name, obj in (("preprocess.json", trained.preprocessing()), ("export.json", manifest)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")


def _publish(staging: str, out: str, force: bool) -> None:
    """Rename the finished folder into place; a replaced --out is removed only once the new one is in."""
    if os.path.lexists(out):
        if not force:
            raise UsageError(f"--out {out} exists; pass --force to replace it")
        old = f"{staging}.old"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


@cli.main_guard
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if os.path.lexists(args.out) and not args.force:
        cli.fail(f"--out {args.out} exists; pass --force to replace it")
    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        cli.fail(f"--out {args.out} is a file, not a folder; choose another --out")
    runtime.set_threads()
    trained = load(args)
    manifest = export_run(trained, args.format, args.out, args.force, args.opset, args.data_dir)
    print(f"exported {trained.model_name} ({trained.run_id}) as {args.format} to {args.out} in "
          f"{manifest['export_seconds']:.1f} s")
    for name, size in manifest["files"].items():
        print(f"  {name:<24} {size / 1e6:9.2f} MB")
    parity = manifest["parity"]
    print(f"parity: max |logit difference| {parity['max_abs_logit_diff']:.2g} on {parity['inputs']} "
          f"(tolerance {parity['tolerance']:g})")
    if manifest.get("leaky_relu_fixed"):
        print(f"note: paddle2onnx {manifest['paddle2onnx']} wrote {manifest['leaky_relu_fixed']} LeakyRelu nodes "
              "with the wrong slope; they were set back to the model's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
