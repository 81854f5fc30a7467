"""The decoded cache: reused when its key matches, rebuilt when the key changes or a build was cut short."""
import glob
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from data_helpers import make_ai_studio
from paddle_cnns.data import cache, make_datasets


@pytest.fixture
def folder(tmp_path):
    return make_ai_studio(str(tmp_path / "ais"))


def entries(cache_dir, split="train"):
    return sorted(glob.glob(os.path.join(cache_dir, f"caltech16-{split}-*")))


def test_second_use_reads_the_cache_without_decoding(folder, tmp_path, monkeypatch):
    cache_dir = str(tmp_path / "cache")
    first = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert all(m["built"] for m in first.info["cache"].values())
    mtimes = {p: os.stat(p).st_mtime_ns for p in entries(cache_dir)}
    monkeypatch.setattr("paddle_cnns.data.bundle.decode_image", lambda *a: pytest.fail("decoded again"))
    second = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert not any(m["built"] for m in second.info["cache"].values())
    assert {p: os.stat(p).st_mtime_ns for p in entries(cache_dir)} == mtimes
    assert isinstance(second.train.images, np.memmap)
    assert np.array_equal(np.asarray(first.train.images), np.asarray(second.train.images))


def test_key_changes_with_image_size_list_content_and_files(folder, tmp_path):
    cache_dir = str(tmp_path / "cache")
    base = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert len(entries(cache_dir)) == 2  # .npy + .json
    make_datasets("caltech16", folder, image_size=20, cache_dir=cache_dir)
    assert len(entries(cache_dir)) == 4
    with open(os.path.join(folder, "Train.txt")) as f:  # swap two labels: a new list, a new entry
        lines = f.read().splitlines()
    lines[0], lines[-1] = lines[-1], lines[0]
    with open(os.path.join(folder, "Train.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    relabeled = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert relabeled.info["cache"]["train"]["built"] and not relabeled.info["cache"]["eval"]["built"]
    image = os.path.join(folder, "images", "cat", "eval_0.jpg")
    os.utime(image, ns=(0, 0))  # the file changed (mtime): its split is decoded again
    touched = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert touched.info["cache"]["eval"]["built"] and not touched.info["cache"]["test"]["built"]
    assert base.info["source_checksum"] != touched.info["source_checksum"]


@pytest.mark.parametrize("damage", ["no_done_marker", "truncated_npy", "wrong_size_in_marker"])
def test_partial_entry_is_detected_and_rebuilt(folder, tmp_path, damage):
    cache_dir = str(tmp_path / "cache")
    good = np.asarray(make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir).train.images).copy()
    npy, meta = [p for p in entries(cache_dir) if p.endswith(".npy")][0], [p for p in entries(cache_dir)
                                                                              if p.endswith(".json")][0]
    if damage == "no_done_marker":
        os.remove(meta)
    elif damage == "truncated_npy":
        os.truncate(npy, os.path.getsize(npy) - 100)
    else:
        text = open(meta).read().replace('"npy_bytes": ', '"npy_bytes": 1')
        open(meta, "w").write(text)
    again = make_datasets("caltech16", folder, image_size=16, cache_dir=cache_dir)
    assert again.info["cache"]["train"]["built"]
    assert np.array_equal(np.asarray(again.train.images), good)


KILLED_BUILD = r"""
import importlib.util, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("cache", sys.argv[1])
cache = importlib.util.module_from_spec(spec); spec.loader.exec_module(cache)
def slow(i):
    print(i, flush=True)
    time.sleep(0.05)
    return np.full((1, 4, 4), i, np.uint8)
cache.load_or_build(sys.argv[2], "t", "k", (1000, 1, 4, 4), slow, {})
"""


def test_a_build_killed_midway_is_never_read_and_is_rebuilt(tmp_path):
    cache_dir = str(tmp_path / "cache")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, cache.__file__, cache_dir],
                            stdout=subprocess.PIPE, text=True)
    for _ in range(5):  # a few rows written, then SIGKILL: no cleanup code runs
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = os.listdir(cache_dir)
    assert leftovers and all(".tmp-" in n for n in leftovers)
    assert cache.load(os.path.join(cache_dir, "t-k"), "k", (1000, 1, 4, 4)) is None
    array, meta = cache.load_or_build(cache_dir, "t", "k", (3, 1, 4, 4), lambda i: np.full((1, 4, 4), i, np.uint8), {})
    assert meta["built"] and array[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert sorted(os.listdir(cache_dir)) == ["t-k.json", "t-k.npy"]  # the dead build's temporary is gone


def test_failed_build_removes_its_temporaries(tmp_path):
    def decode(i):
        if i == 2:
            raise ValueError("boom")
        return np.zeros((1, 2, 2), np.uint8)
    with pytest.raises(ValueError):
        cache.load_or_build(str(tmp_path), "t", "k", (4, 1, 2, 2), decode, {})
    assert os.listdir(tmp_path) == []


def test_channel_stats_are_exact(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 7, 7)).astype(np.uint8)
    mean, std = cache.channel_stats(images, chunk=2)
    expected = images.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    assert np.allclose(mean, expected.mean(axis=1), atol=1e-12)
    assert np.allclose(std, expected.std(axis=1), atol=1e-9)
