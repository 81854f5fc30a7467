"""Caltech-16 preparation on generated Caltech-101 sources, and the label-list (AI Studio) reader."""
import os
import pathlib

import numpy as np
import pytest

from data_helpers import (COMMITTED, FAKE_CLASSES, FAKE_COUNTS, list_snapshot, make_ai_studio, make_caltech_tree,
                          make_official_zip, make_tar_gz, read)
from ablations import cli
from paddle_cnns.data import caltech, make_datasets, prepare_caltech16
from paddle_cnns.errors import DataError


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same fake Caltech-101 as a folder, a tar.gz and an official-style zip."""
    root = tmp_path_factory.mktemp("caltech101")
    folder = make_caltech_tree(str(root / "extracted"))
    tar = make_tar_gz(folder, str(root / "101_ObjectCategories.tar.gz"))
    zip_path = make_official_zip(tar, str(root / "caltech-101.zip"))
    return {"folder": folder, "tar": tar, "zip": zip_path}


@pytest.fixture(scope="module")
def prepared(sources, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("prepared") / "caltech16")
    return out, prepare_caltech16(sources["tar"], out, download=False)


def read_entries(path):
    return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in pathlib.Path(path).read_text().splitlines()]


def test_selects_16_largest_categories_without_clutter_and_faces_ties_by_name(prepared):
    out, summary = prepared
    assert summary["classes"] == FAKE_CLASSES  # case-insensitive alphabetical = class-id order
    assert "Faces" not in summary["classes"] and "BACKGROUND_Google" not in summary["classes"]
    assert "kangaroo" in summary["classes"] and "starfish" not in summary["classes"]  # 4-4-4 tie
    labels = pathlib.Path(out, "labels.txt").read_text().splitlines()
    assert labels == [f"{i} {name}" for i, name in enumerate(FAKE_CLASSES)]


def test_split_is_stratified_70_15_15_per_class_and_disjoint(prepared):
    out, summary = prepared
    splits = {s: read_entries(os.path.join(out, f"{s}.txt")) for s in ("Train", "Eval", "Test")}
    paths = [p for entries in splits.values() for p, _ in entries]
    assert len(paths) == len(set(paths)) == sum(FAKE_COUNTS[c] for c in FAKE_CLASSES)
    for label, name in enumerate(FAKE_CLASSES):
        n = FAKE_COUNTS[name]
        counts = {s: sum(1 for p, l in e if l == label) for s, e in splits.items()}
        expected_eval = (15 * n + 50) // 100
        assert counts == {"Train": n - 2 * expected_eval, "Eval": expected_eval, "Test": expected_eval}, name
        assert all(p.startswith(f"images/{name}/") for s in splits.values() for p, l in s if l == label)
    assert summary["splits"] == {s.lower(): len(e) for s, e in splits.items()}


def test_prepare_reproduces_the_lists_byte_for_byte_from_tar_zip_and_folder(sources, prepared, tmp_path):
    reference = list_snapshot(prepared[0])
    assert set(reference) == {"Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json"}
    for kind in ("folder", "zip", "tar"):
        out = str(tmp_path / kind)
        prepare_caltech16(sources[kind], out, download=False)
        assert list_snapshot(out) == reference, kind
    prepare_caltech16(sources["tar"], str(tmp_path / "tar"), download=False)  # again, over itself
    assert list_snapshot(str(tmp_path / "tar")) == reference


def test_stray_non_image_file_is_skipped_and_counted(prepared):
    out, summary = prepared
    assert summary["skipped_files"] == ["101_ObjectCategories/BACKGROUND_Google/tmp"]
    assert summary["source_images"] == sum(FAKE_COUNTS.values())
    assert "tmp" not in "".join(list_snapshot(out)["Train.txt"].decode())


def test_extracted_images_match_the_lists_and_grayscale_becomes_rgb(prepared, tmp_path):
    out, summary = prepared
    assert summary["grayscale_source"] == 1 and summary["grayscale_selected"] == 1  # watch/image_0001
    lists = {split: read_entries(os.path.join(out, f"{split.capitalize()}.txt")) for split in ("train", "eval", "test")}
    assert all(os.path.isfile(os.path.join(out, p)) for entries in lists.values() for p, _ in entries)
    bundle = make_datasets("caltech16", out, image_size=16, cache_dir=str(tmp_path / "cache"))
    assert bundle.num_classes == 16 and bundle.in_channels == 3 and bundle.class_names == FAKE_CLASSES
    assert bundle.info["skipped_files"] == 1
    assert {s: len(getattr(bundle, s)) for s in lists} == {s: len(e) for s, e in lists.items()}
    gray = "images/watch/image_0001.jpg"
    split = next(s for s, entries in lists.items() if gray in [p for p, _ in entries])
    pixels = np.asarray(getattr(bundle, split).images[[p for p, _ in lists[split]].index(gray)])
    assert pixels.shape == (3, 16, 16)
    assert (pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all()


def test_make_datasets_prepares_a_source_given_as_data_dir_once(sources, prepared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = make_datasets("caltech16", sources["zip"], image_size=8, cache_dir="cache")
    assert list_snapshot("data/caltech16") == list_snapshot(prepared[0])
    assert len(bundle.train) + len(bundle.eval) + len(bundle.test) == sum(FAKE_COUNTS[c] for c in FAKE_CLASSES)
    before = os.stat("data/caltech16/Train.txt").st_mtime_ns
    again = make_datasets("caltech16", sources["zip"], image_size=8, cache_dir="cache")
    assert os.stat("data/caltech16/Train.txt").st_mtime_ns == before  # not prepared twice
    assert not any(m["built"] for m in again.info["cache"].values())


def test_caltech16_not_prepared_names_the_prepare_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^Caltech-16 is not prepared in data/caltech16$") as e:
        make_datasets("caltech16", image_size=32)
    # The library names the fix; the command line spells it out as a command to run.
    assert e.value.fix == "prepare" and e.value.details["data_dir"] == os.path.join("data", "caltech16")
    assert cli.explain(e.value).startswith("Caltech-16 is not prepared in data/caltech16; run: python -m "
                                           "ablations.prepare caltech16 --source PATH")
    # The repository's state after a clone: committed lists, no images.
    os.makedirs("data/caltech16")
    for name in ("Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json"):
        pathlib.Path("data/caltech16", name).write_bytes(read(os.path.join(COMMITTED, name)))
    with pytest.raises(DataError, match="not prepared in data/caltech16") as e:
        make_datasets("caltech16", image_size=32)
    assert "run: python -m ablations.prepare caltech16 --source" in cli.explain(e.value)


def test_ai_studio_layout_reads_the_same_from_images_zip_and_folder(tmp_path):
    zipped = make_ai_studio(str(tmp_path / "zip"), as_zip=True)
    folder = make_ai_studio(str(tmp_path / "folder"), as_zip=False)
    a = make_datasets("caltech16", zipped, image_size=12, cache_dir=str(tmp_path / "cache"))
    b = make_datasets("caltech16", folder, image_size=12, cache_dir=str(tmp_path / "cache"))
    assert a.class_names == b.class_names == ["cat", "dog", "owl"]  # labels.txt with names only
    assert (len(a.train), len(a.eval), len(a.test)) == (12, 6, 6)
    assert np.array_equal(np.asarray(a.train.images), np.asarray(b.train.images))
    assert a.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert a.info["mean"] == b.info["mean"]  # no stats.json: computed on the train split


def test_max_per_class_keeps_the_first_images_of_each_class(prepared, tmp_path):
    out, _ = prepared
    bundle = make_datasets("caltech16", out, image_size=8, cache_dir=str(tmp_path), max_per_class=2)
    assert len(bundle.train) == 32
    assert len(bundle.eval) == sum(min(2, (15 * FAKE_COUNTS[c] + 50) // 100) for c in FAKE_CLASSES)
    full = make_datasets("caltech16", out, image_size=8, cache_dir=str(tmp_path))
    assert np.array_equal(np.asarray(bundle.train.images[:2]), np.asarray(full.train.images[:2]))
    assert bundle.train.labels.tolist()[:4] == [0, 0, 1, 1] and bundle.info["max_per_class"] == 2
    assert bundle.info["source_checksum"] != full.info["source_checksum"]  # its own cache entries


def test_prepare_without_source_downloads_the_archive_atomically(sources, prepared, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(caltech, "CALTECH101_URL", pathlib.Path(sources["zip"]).as_uri())
    summary = prepare_caltech16(None, "data/caltech16")
    assert summary["source"] == os.path.join("data", "downloads", "caltech-101.zip")
    assert read(summary["source"]) == read(sources["zip"])
    assert os.listdir("data/downloads") == ["caltech-101.zip"]  # no partial file left
    assert list_snapshot("data/caltech16") == list_snapshot(prepared[0])


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(caltech, "CALTECH101_URL", (tmp_path / "absent.zip").as_uri())
    with pytest.raises(DataError, match="cannot download"):
        prepare_caltech16(None, "data/caltech16")
    assert os.listdir("data/downloads") == [] and not os.path.exists("data/caltech16")
    with pytest.raises(DataError, match="downloading is off"):
        prepare_caltech16(None, "data/caltech16", download=False)
