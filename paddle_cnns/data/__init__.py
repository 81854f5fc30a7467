"""The study's datasets behind one function, make_datasets, and a fast deterministic loader."""
from __future__ import annotations
import functools
import os

from ..errors import DataError, NotPrepared, UsageError
from .bundle import DEFAULT_CACHE_DIR, DataBundle, data_fingerprint
from .caltech import DEFAULT_DIR as CALTECH_DIR
from .caltech import is_caltech_source, prepare_caltech16, prepared_from, source_fingerprint
from .dataset import ArrayDataset, check_image_size
from .fashion_mnist import load_fashion_mnist, prepare_fashion_mnist
from .folder import load_folder
from .listed import load_listed
from .loader import BatchLoader, make_loader
from .streaming import decoded_bytes, streamed_bundle
from .synthetic import load_synthetic

DATASETS: tuple[str, ...] = ("caltech16", "fashion_mnist", "folder", "synthetic")
STREAMABLE: tuple[str, ...] = ("caltech16", "folder")  # the datasets of JPEG files


def make_datasets(name: str, data_dir: str | None = None, image_size: int = 224, *, augment: bool = False,
                  cache_dir: str | None = None, max_per_class: int | None = None, seed: int = 0,
                  progress=None, stream: bool = False, workers: int = 0) -> DataBundle:
    """The train/eval/test splits of dataset `name` at image_size x image_size px.

    data_dir None means data/<name> under the current directory. For caltech16 it may also be a
    Caltech-101 source (caltech-101.zip, 101_ObjectCategories.tar.gz or the extracted folder),
    which is then prepared into data/caltech16 first (unless it already was, from that source),
    or an AI Studio folder (label lists + Images.zip or images). Decoded images are cached in
    cache_dir (default data/cache). augment applies the ImageNet GoogLeNet-BN write-up's
    augmentation to the train split, drawn from (seed, epoch, index). max_per_class keeps the first
    n images of each class per split. info["data_fingerprint"] identifies the data a run trains on
    (bundle.data_fingerprint). progress(stage, done, total, unit), if given, hears the long
    first-time steps (preparing Caltech-16, building the cache) as they go; the library never prints.

    stream (folder and caltech16 only) decodes nothing up front: JPEGs are read per batch by
    `workers` paddle.io.DataLoader processes, with the ImageNet write-up's preprocessing (see
    paddle_cnns.data.streaming); for folders whose decoded cache would be too large.
    """
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    image_size = check_image_size(image_size)
    if max_per_class is not None and (not isinstance(max_per_class, int) or max_per_class < 1):
        raise UsageError(f"max_per_class must be a positive integer or None, got {max_per_class!r}")
    options = {"augment": bool(augment), "max_per_class": max_per_class, "seed": int(seed)}
    if stream:
        if name not in STREAMABLE:
            raise UsageError(f"dataset {name!r} cannot be streamed (it is small: its decoded cache is used); "
                             f"streaming reads {' and '.join(STREAMABLE)}", fix="cache")
        if not isinstance(workers, int) or workers < 0:
            raise UsageError(f"workers must be an integer >= 0, got {workers!r}", fix="workers")
        options["builder"] = functools.partial(streamed_bundle, workers=workers)
    if name == "synthetic":
        bundle = load_synthetic(image_size, **options)
    elif name == "fashion_mnist":
        bundle = load_fashion_mnist(data_dir, image_size, cache_dir=cache_dir, **options)
    elif name == "folder":
        bundle = load_folder(data_dir, image_size, cache_dir=cache_dir, progress=progress, **options)
    else:
        bundle = _load_caltech16(data_dir, image_size, cache_dir=cache_dir, progress=progress, **options)
    bundle.info["data_fingerprint"] = data_fingerprint(bundle)
    return bundle


def _load_caltech16(data_dir, image_size, progress=None, **options) -> DataBundle:
    if data_dir is not None and not os.path.exists(data_dir):
        raise DataError(f"{data_dir} does not exist; pass a prepared Caltech-16 folder, an AI Studio folder "
                        f"(label lists + Images.zip) or a Caltech-101 archive, or leave it out for {CALTECH_DIR}")
    data_dir = data_dir or CALTECH_DIR
    info = {}
    if os.path.exists(data_dir) and is_caltech_source(data_dir):
        prepared = prepared_from(CALTECH_DIR)
        if prepared is None or prepared.get("fingerprint") != source_fingerprint(data_dir):
            prepare_caltech16(data_dir, CALTECH_DIR, download=False, progress=progress)
            prepared = prepared_from(CALTECH_DIR)
        data_dir = CALTECH_DIR
    else:
        prepared = prepared_from(data_dir)
    if prepared:
        info = {"skipped_files": len(prepared.get("skipped_files", [])),
                "prepared_from": prepared.get("source"), "archive_sha256": prepared.get("source_sha256")}
    return load_listed("caltech16", data_dir, image_size, **options, info=info, progress=progress,
                       not_prepared=NotPrepared(f"Caltech-16 is not prepared in {data_dir}", fix="prepare",
                                                dataset="caltech16", data_dir=data_dir))


__all__ = ["DATASETS", "STREAMABLE", "decoded_bytes", "DataBundle", "ArrayDataset", "BatchLoader", "make_datasets", "make_loader",
           "prepare_caltech16", "prepare_fashion_mnist", "DEFAULT_CACHE_DIR"]
