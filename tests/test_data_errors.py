"""Bad data inputs: one line on stderr, exit code 2, no traceback, nothing half-written or clobbered."""
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from ablations import prepare
from ablations.cli import main_guard
from data_helpers import (REPO, list_snapshot, make_ai_studio, make_caltech_tree, make_fashion_mnist, make_tar_gz,
                          read)
from paddle_cnns.data import make_datasets


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_caltech_tree(str(tmp_path_factory.mktemp("tree")))


@pytest.fixture
def out(tmp_path):
    """A prepared folder that holds earlier lists: a failed prepare must leave them as they were."""
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json"):
        (folder / name).write_text(f"earlier {name}\n")
    return str(folder)


def run_cli(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(argv)
    err = capsys.readouterr().err
    return exit_info.value.code, err


def assert_one_line_error(code, err, *phrases):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def assert_untouched(folder):
    assert list_snapshot(folder) == {n: f"earlier {n}\n".encode() for n in
                                     ("Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json")}
    assert sorted(os.listdir(folder)) == sorted(["Train.txt", "Eval.txt", "Test.txt", "labels.txt", "stats.json"])


def test_missing_archive(capsys, out, tmp_path):
    code, err = run_cli(capsys, ["caltech16", "--source", str(tmp_path / "nope.tar.gz"), "--out", out])
    assert_one_line_error(code, err, "nope.tar.gz does not exist")
    assert_untouched(out)


def test_unreadable_archive(capsys, out, tmp_path):
    garbage = tmp_path / "101_ObjectCategories.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 100)
    code, err = run_cli(capsys, ["caltech16", "--source", str(garbage), "--out", out])
    assert_one_line_error(code, err, "cannot read", "download it again")
    assert_untouched(out)


def test_truncated_archive(capsys, out, tree, tmp_path):
    whole = read(make_tar_gz(tree, str(tmp_path / "whole.tar.gz")))
    cut = tmp_path / "101_ObjectCategories.tar.gz"
    cut.write_bytes(whole[:len(whole) // 2])
    code, err = run_cli(capsys, ["caltech16", "--source", str(cut), "--out", out])
    assert_one_line_error(code, err, "cannot read", "truncated")
    assert_untouched(out)


def test_archive_cut_anywhere_is_detected_even_at_a_member_boundary(tree, tmp_path):
    """tarfile itself takes a tar cut between two members for a complete, shorter archive."""
    from paddle_cnns.data.caltech import scan_source
    from paddle_cnns.errors import DataError

    gz = read(make_tar_gz(tree, str(tmp_path / "whole.tar.gz")))
    plain_path = tmp_path / "whole.tar"
    with tarfile.open(plain_path, "w") as tar:
        tar.add(tree, arcname="101_ObjectCategories")
    plain = read(str(plain_path))
    with tarfile.open(plain_path) as tar:
        boundaries = [m.offset for m in tar.getmembers()[5::7]]
    cuts = [("a.tar.gz", gz[:n]) for n in range(200, len(gz), len(gz) // 15)]
    cuts += [("a.tar", plain[:n]) for n in boundaries + [b + 700 for b in boundaries]]
    for name, data in cuts:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match="truncated"):
            scan_source(str(tmp_path / name))


def test_archive_without_101_object_categories(capsys, out, tree, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tree, other / "SomethingElse")
    archive = tmp_path / "other.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(other / "SomethingElse", arcname="SomethingElse")
    code, err = run_cli(capsys, ["caltech16", "--source", str(archive), "--out", out])
    assert_one_line_error(code, err, "has no 101_ObjectCategories folder")
    code, err = run_cli(capsys, ["caltech16", "--source", str(other), "--out", out])
    assert_one_line_error(code, err, "has no 101_ObjectCategories folder")
    assert_untouched(out)


def test_class_with_too_few_images_to_split(capsys, out, tmp_path):
    counts = {**{f"class{i:02d}": 6 for i in range(15)}, "tiny": 3}
    source = make_caltech_tree(str(tmp_path / "src"), counts)
    code, err = run_cli(capsys, ["caltech16", "--source", source, "--out", out])
    assert_one_line_error(code, err, "class 'tiny' has 3 image(s), too few to split")
    assert_untouched(out)


def test_truncated_image_is_named_and_nothing_is_written(capsys, out, tree, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(tree, source / "101_ObjectCategories")
    bad = source / "101_ObjectCategories" / "bonsai" / "image_0003.jpg"
    bad.write_bytes(read(str(bad))[:120])
    code, err = run_cli(capsys, ["caltech16", "--source", str(source), "--out", out])
    assert_one_line_error(code, err, "101_ObjectCategories/bonsai/image_0003.jpg", "cannot be decoded")
    assert_untouched(out)


def test_stray_file_is_skipped_and_counted_in_the_summary(capsys, tree, tmp_path):
    summary = prepare.main(["caltech16", "--source", tree, "--out", str(tmp_path / "ok")])
    printed = capsys.readouterr().out
    assert summary["skipped_files"] == ["101_ObjectCategories/BACKGROUND_Google/tmp"]
    assert "skipped 1 non-image file(s): 101_ObjectCategories/BACKGROUND_Google/tmp" in printed


@main_guard
def load(data_dir, cache_dir):
    """What the run CLI does with --data-dir: the same guard, so the same one-line errors."""
    return make_datasets("caltech16", data_dir, image_size=8, cache_dir=cache_dir)


def load_error(capsys, data_dir, cache_dir):
    with pytest.raises(SystemExit) as exit_info:
        load(data_dir, cache_dir)
    return exit_info.value.code, capsys.readouterr().err


def test_label_list_pointing_to_missing_files_names_the_first_few(capsys, tmp_path):
    folder = make_ai_studio(str(tmp_path / "ais"))
    for name in ("train_0.jpg", "train_1.jpg", "train_2.jpg", "train_3.jpg"):
        os.remove(os.path.join(folder, "images", "dog", name))
    code, err = load_error(capsys, folder, str(tmp_path / "cache"))
    assert_one_line_error(code, err, "Train.txt points to 4 missing file(s)",
                          "dog/train_0.jpg, dog/train_1.jpg, dog/train_2.jpg, ...")


@pytest.mark.parametrize("bad_label, phrase", [("3", "label 3 out of range 0..2"), ("-1", "label -1 out of range")])
def test_label_out_of_range_or_negative(capsys, tmp_path, bad_label, phrase):
    folder = make_ai_studio(str(tmp_path / "ais"))
    path = os.path.join(folder, "Eval.txt")
    lines = open(path).read().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " " + bad_label
    open(path, "w").write("\n".join(lines) + "\n")
    code, err = load_error(capsys, folder, str(tmp_path / "cache"))
    assert_one_line_error(code, err, "Eval.txt entry 5", phrase, "fix the list or labels.txt")


def test_empty_split(capsys, tmp_path):
    folder = make_ai_studio(str(tmp_path / "ais"))
    open(os.path.join(folder, "Test.txt"), "w").close()
    code, err = load_error(capsys, folder, str(tmp_path / "cache"))
    assert_one_line_error(code, err, "Test.txt is empty")


def test_undecodable_image_in_a_list_is_named_and_not_cached(capsys, tmp_path):
    folder = make_ai_studio(str(tmp_path / "ais"))
    with open(os.path.join(folder, "images", "owl", "eval_1.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not really a jpeg")
    cache = tmp_path / "cache"
    code, err = load_error(capsys, folder, str(cache))
    assert_one_line_error(code, err, "owl/eval_1.jpg", "cannot be decoded")
    assert not [n for n in os.listdir(cache) if n.startswith("caltech16-eval")]  # nothing half-written


def test_prepare_cli_runs_as_a_module_and_fails_cleanly(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-m", "ablations.prepare", "caltech16", "--source",
                             str(tmp_path / "missing.zip"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "out")
    help_text = subprocess.run([sys.executable, "-m", "ablations.prepare", "caltech16", "--help"],
                               capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120).stdout
    assert "(default: data/caltech16)" in " ".join(help_text.split())


def test_truncated_gzip_idx_file(capsys, tmp_path):
    folder = make_fashion_mnist(str(tmp_path / "fm"))
    path = os.path.join(folder, "train-images-idx3-ubyte.gz")
    data = read(path)
    open(path, "wb").write(data[: len(data) // 2])
    code, err = run_cli(capsys, ["fashion_mnist", "--source", folder, "--out", str(tmp_path / "copy")])
    assert_one_line_error(code, err, "train-images-idx3-ubyte.gz", "truncated")
    assert not os.path.exists(tmp_path / "copy")
