"""On the real Caltech-101 archive (CALTECH101_ARCHIVE=path/to/101_ObjectCategories.tar.gz).

Skipped when the variable is unset, unless PADDLE_CNNS_REQUIRE_REAL_DATA=1 (CI sets both), in
which case a missing archive fails.
"""
import io
import os

import numpy as np
import pytest
from PIL import Image

from ablations import prepare
from data_helpers import COMMITTED, list_snapshot, read
from paddle_cnns.data import make_datasets

ISSUE_CLASSES = ["airplanes", "Motorbikes", "Faces_easy", "watch", "Leopards", "bonsai", "car_side", "ketch",
                 "chandelier", "hawksbill", "grand_piano", "brain", "butterfly", "helicopter", "menorah", "kangaroo"]


def archive_or_skip() -> str:
    path = os.environ.get("CALTECH101_ARCHIVE")
    if path and os.path.isfile(path):
        return path
    reason = (f"CALTECH101_ARCHIVE={path!r} is not a file" if path else "CALTECH101_ARCHIVE is not set") + \
        "; point it at 101_ObjectCategories.tar.gz to run the real-data tests"
    if os.environ.get("PADDLE_CNNS_REQUIRE_REAL_DATA") == "1":
        pytest.fail(reason + " (PADDLE_CNNS_REQUIRE_REAL_DATA=1 requires them)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    archive = archive_or_skip()
    out = str(tmp_path_factory.mktemp("real") / "caltech16")
    summary = prepare.main(["caltech16", "--source", archive, "--out", out, "--no-download"])  # the CLI, as CI runs it
    return out, summary


def test_real_archive_regenerates_the_committed_lists_byte_for_byte(prepared):
    out, summary = prepared
    committed = list_snapshot(COMMITTED)
    assert set(committed) == {"Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json"}
    assert list_snapshot(out) == committed


def test_real_archive_facts_from_the_issue(prepared):
    _, summary = prepared
    assert sorted(summary["classes"], key=str.lower) == sorted(ISSUE_CLASSES, key=str.lower)
    assert summary["images"] == 3593 and sum(summary["splits"].values()) == 3593
    assert summary["source_images"] == 9144 and summary["grayscale_source"] == 411
    assert summary["skipped_files"] == ["101_ObjectCategories/BACKGROUND_Google/tmp"]


def test_real_jpegs_decode_through_the_cache_grayscale_included(prepared, tmp_path):
    out, _ = prepared
    bundle = make_datasets("caltech16", out, image_size=32, cache_dir=str(tmp_path), max_per_class=3)
    assert (len(bundle.train), len(bundle.eval), len(bundle.test)) == (48, 48, 48)
    assert bundle.info["mean"] == [0.5431, 0.5398, 0.525]  # the committed stats.json
    x, y = make_datasets("caltech16", out, image_size=32, cache_dir=str(tmp_path), max_per_class=3).train.get_batch(
        np.arange(48))
    assert x.shape == (48, 3, 32, 32) and np.isfinite(x).all() and y.tolist() == sorted(y.tolist())
    # A grayscale JPEG of the train list, through an AI Studio-style list of its own.
    entries = [line.rsplit(" ", 1) for line in read(os.path.join(out, "Train.txt")).decode().splitlines()]
    gray = next(p for p, _ in entries if Image.open(io.BytesIO(read(os.path.join(out, p)))).mode == "L")
    rgb = entries[0][0]
    ais = tmp_path / "ais"
    ais.mkdir()
    for name in ("Train.txt", "Eval.txt", "Test.txt"):
        (ais / name).write_text(f"{gray} 0\n{rgb} 1\n")
    os.symlink(os.path.join(out, "images"), ais / "images")
    pixels = np.asarray(make_datasets("caltech16", str(ais), image_size=32, cache_dir=str(tmp_path)).train.images)
    assert pixels.shape == (2, 3, 32, 32)
    assert (pixels[0, 0] == pixels[0, 1]).all() and (pixels[0, 1] == pixels[0, 2]).all()
    assert not (pixels[1, 0] == pixels[1, 2]).all()
