"""Fault injection without a training process: torn stores, damaged checkpoint sets and caches,
bad flags, hostile archives and data-folder mistakes (one line, exit 2, nothing created)."""
import glob
import io
import os
import tarfile

import numpy as np
import paddle
import pytest

from ablations import run as run_cli
from ablations.results import append_row, format_row, read_results
from data_helpers import jpeg_bytes, make_image_folder
from paddle_cnns import checkpoint, create_model
from paddle_cnns.data import caltech_source, make_datasets, prepare_caltech16
from paddle_cnns.engine import Diverged, TrainState, fit, make_optimizer, piecewise_decay
from paddle_cnns.errors import CNNsError, DataError


def _class_folder(root, classes):
    make_image_folder(str(root), classes=classes, counts={"train": 4, "val": 2}, stray=False)
    return str(root)


# ---------------------------------------------------------------- the results store (case 6)

def test_a_torn_row_never_glues_onto_the_next_and_reading_names_it_and_keeps_the_rest(tmp_path, capsys):
    path = str(tmp_path / "results.csv")
    row = {"run_id": "a/32px/gap/seed0", "status": "finished", "variant": "gap", "params": 44700000,
           "test_confusion": [[1, 0], [0, 1]]}
    append_row(path, row)
    line = format_row({**row, "run_id": "a/32px/gap/seed1"})
    with open(path, "a") as f:  # what a full disk left with an older version: half a row, no newline
        f.write(line[:len(line) // 2])
    append_row(path, {**row, "run_id": "a/32px/gap/seed2"})
    with open(path, newline="") as f:
        physical = f.read().split("\n")
    assert len(physical) == 5 and physical[-1] == ""  # header, row, torn row, row: each on its own line
    df = read_results(path)
    assert sorted(df.run_id) == ["a/32px/gap/seed0", "a/32px/gap/seed2"] and list(df.params) == [44700000] * 2
    assert [n for n, _ in df.attrs["skipped_rows"]] == [3]
    err = capsys.readouterr().err
    assert "line 3: torn or malformed" in err and len(err.strip().splitlines()) == 1


def test_a_final_row_is_appended_once_per_attempt(tmp_path):
    path = str(tmp_path / "results.csv")
    row = {"run_id": "a/32px/gap/seed0", "attempt": "x1", "status": "finished", "variant": "gap"}
    assert append_row(path, row) and not append_row(path, row)
    assert append_row(path, {**row, "attempt": "x2"})  # --force: a new attempt, a new row
    assert append_row(path, {**row, "status": "failed"}) and append_row(path, {**row, "status": "failed"})
    assert list(read_results(path).status) == ["finished", "finished", "failed", "failed"]


# ---------------------------------------------------------------- bad input (cases 10, 11, 12, 13, 14)

@pytest.mark.parametrize("args,message", [
    (["--lr", "inf"], "--lr must be positive and finite, got inf"),
    (["--lr", "nan"], "--lr must be positive and finite, got nan"),
    (["--weight-decay", "inf"], "--weight-decay must be in [0, 1), got inf"),
    (["--momentum", "nan"], "--momentum must be in [0, 1), got nan"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1), got 1.5"),
])
def test_numeric_flags_must_be_finite_and_in_range(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        run_cli.main(["--variant", "lenet", "--dataset", "synthetic", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and message in err[0], err
    assert os.listdir(tmp_path) == []


def test_a_results_file_with_another_header_is_refused_before_anything_is_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open("old.csv", "w") as f:
        f.write("run_id,variant,test_acc\nx,gap,0.5\n")
    with pytest.raises(SystemExit) as e:
        run_cli.main(["--variant", "lenet", "--dataset", "synthetic", "--results", "old.csv"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "--results old.csv has other columns" in err[0], err
    assert os.listdir(tmp_path) == ["old.csv"]


def test_a_non_finite_eval_loss_is_divergence():
    paddle.seed(0)
    model = create_model("lenet", num_classes=3, in_channels=1, image_size=32)
    x, y = paddle.rand([4, 1, 32, 32]), paddle.to_tensor(np.array([0, 1, 2, 0], dtype="int64"))
    sched = piecewise_decay(0.01, 2, 1)
    opt = make_optimizer("sgd", model.parameters(), sched)
    poisoned = [(x * float("nan"), y)]  # training sees finite images, evaluation does not
    state = TrainState()
    with pytest.raises(Diverged, match="non-finite eval loss after epoch 1"):
        list(fit(model, opt, sched, lambda epoch: [(x, y)], poisoned, 2, 3, state))
    assert state.history == [] and state.best_epoch == 0  # the epoch is not recorded as the best


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_an_archive_climbing_out_with_dotdot_is_refused_in_one_line(tmp_path, capsys):
    from ablations import prepare
    bad = _tar(tmp_path / "bad.tar.gz", [("101_ObjectCategories/../image_0001.jpg", jpeg_bytes(1))])
    with pytest.raises(SystemExit) as e:
        prepare.main(["caltech16", "--source", bad, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "has a '..' in its path" in err[0], err
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "image_0001.jpg")


@pytest.mark.parametrize("limit,message", [
    ("MAX_MEMBER_BYTES", "c0/image_0.jpg is 0.0572 MiB"),
    ("MAX_TOTAL_BYTES", "c1/image_1.jpg takes the images past 0.0954 MiB in all"),
])
def test_archive_members_are_read_within_a_per_member_and_a_total_cap(tmp_path, monkeypatch, limit, message):
    big = _tar(tmp_path / "big.tar.gz", [(f"101_ObjectCategories/c{i}/image_{i}.jpg", b"\0" * 60000)
                                         for i in range(3)])
    monkeypatch.setattr(caltech_source, limit, 100000 if limit == "MAX_TOTAL_BYTES" else 50000)  # the real caps scaled down
    with pytest.raises(DataError, match="refusing the archive") as e:
        prepare_caltech16(big, str(tmp_path / "out"), download=False)
    assert message in str(e.value)
    assert not os.path.exists(tmp_path / "out")


def test_an_empty_class_folder_is_refused_naming_it(tmp_path):
    root = _class_folder(tmp_path / "imgs", ("cat", "dog"))
    os.makedirs(os.path.join(root, "train", "emu"))
    with pytest.raises(DataError, match=r"class folder .*train/emu has no images.*add images or remove the folder"):
        make_datasets("folder", root, image_size=16, cache_dir=str(tmp_path / "cache"))


def test_a_corrupt_image_in_a_folder_dataset_names_the_file_and_the_folder_fix(tmp_path):
    root = _class_folder(tmp_path / "imgs", ("cat", "dog"))
    with open(os.path.join(root, "train", "dog", "1.jpg"), "wb") as f:
        f.write(b"not a jpeg at all")
    with pytest.raises(DataError) as e:
        make_datasets("folder", root, image_size=16, cache_dir=str(tmp_path / "cache"))
    message = str(e.value)
    assert "train/dog/1.jpg" in message and "delete it from its class folder" in message
    assert "BytesIO" not in message and "label list" not in message


def test_a_cache_file_garbled_at_the_same_size_is_rebuilt_not_used(tmp_path):
    root = _class_folder(tmp_path / "imgs", ("cat", "dog"))
    cache_dir = str(tmp_path / "cache")
    good = np.asarray(make_datasets("folder", root, image_size=16, cache_dir=cache_dir).train.images).copy()
    npy = [p for p in glob.glob(os.path.join(cache_dir, "folder-train-*.npy"))][0]
    with open(npy, "r+b") as f:
        f.seek(os.path.getsize(npy) - 64)
        f.write(bytes(255 - b for b in good.reshape(-1)[-64:]))
    again = make_datasets("folder", root, image_size=16, cache_dir=cache_dir)
    assert again.info["cache"]["train"]["built"] and again.info["cache"]["train"]["repaired"] == "checksum"
    assert np.array_equal(np.asarray(again.train.images), good)


def test_a_checkpoint_set_is_all_of_one_commit_or_all_of_the_one_before(tmp_path):
    folder = str(tmp_path)

    def stage(tag):
        return {n: checkpoint.stage(folder, n, {"tag": tag}) for n in ("latest.pdckpt", "best.pdparams")}

    def content():
        manifest = checkpoint.recover(folder, ("latest.pdckpt", "best.pdparams", "final.pdparams"))
        return [paddle.load(checkpoint.verified_path(folder, n, manifest))["tag"]
                for n in ("latest.pdckpt", "best.pdparams")]
    one = stage("epoch 1")
    checkpoint.apply(folder, checkpoint.commit(folder, one, {}))
    checkpoint.stage(folder, "latest.pdckpt", {"tag": "epoch 2"})  # killed before epoch 2's commit
    assert content() == ["epoch 1", "epoch 1"] and not glob.glob(os.path.join(folder, "*.pending"))
    checkpoint.commit(folder, stage("epoch 2"), {})  # killed after the commit, before the renames
    assert content() == ["epoch 2", "epoch 2"]
    (tmp_path / "final.pdparams").write_bytes(b"left over")  # not in the set: removed
    content()
    assert not os.path.exists(tmp_path / "final.pdparams")
    with open(tmp_path / "best.pdparams", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x7f" * 8)
    with pytest.raises(CNNsError, match="best.pdparams is damaged"):
        content()
