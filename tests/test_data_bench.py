"""The data benchmark runs end to end on a tiny generated Caltech-16 and writes its table and CSV."""
import csv

import paddle
import pytest

from ablations.bench import data as bench
from data_helpers import make_caltech_tree
from paddle_cnns.data import prepare_caltech16
from paddle_cnns.runtime import set_threads


def test_data_bench_smoke(tmp_path, capsys):
    prepared = str(tmp_path / "caltech16")
    prepare_caltech16(make_caltech_tree(str(tmp_path / "src")), prepared, download=False)
    out = str(tmp_path / "data.csv")
    threads = paddle.get_flags("FLAGS_paddle_num_threads")["FLAGS_paddle_num_threads"]
    try:
        rows = bench.main(["--data-dir", prepared, "--sizes", "16", "--image-size", "32", "--model", "lenet",
                           "--batch-size", "8", "--steps", "2", "--reps", "1", "--threads", "1",
                           "--cache-root", str(tmp_path / "cache"), "--csv", out])
    finally:  # the bench sets paddle's thread count for the process: give it back
        set_threads(threads)
    printed = capsys.readouterr().out
    assert printed.startswith("| metric | value |") and "loader / training" in printed
    with open(out) as f:
        assert [r["metric"] for r in csv.DictReader(f)] == [r["metric"] for r in rows]


@pytest.mark.slow
def test_streaming_bench_measures_each_worker_count_and_a_whole_pass(tmp_path, capsys):
    folder, out = str(tmp_path / "jpegs"), str(tmp_path / "data_stream.csv")
    threads = paddle.get_flags("FLAGS_paddle_num_threads")["FLAGS_paddle_num_threads"]
    try:
        rows = bench.main(["--stream", folder, "--generate", "40", "--workers", "0,1", "--stream-size", "32",
                           "--stream-model", "lenet", "--stream-batches", "1", "--batch-size", "8", "--steps", "1",
                           "--threads", "1", "--csv", str(tmp_path / "data.csv")])
    finally:
        set_threads(threads)
    metrics = {r["metric"]: r["value"] for r in rows}
    assert metrics["folder: 30 train + 10 val JPEGs"] == round(40 * 3 * 32 * 32 / 2**20, 1)
    for workers in ("0 workers", "1 worker"):
        assert metrics[f"streaming loader, {workers}, 32 px, batch 8"] > 0
        assert f"loader / training, {workers}" in metrics
        assert "peak memory 0 MiB" not in next(r["note"] for r in rows if workers in r["metric"])
    assert metrics["peak memory (PSS, with workers), a pass over all 30 train images, 1 worker"] > 0
    assert "| streaming loader, 1 worker" in capsys.readouterr().out and open(out).read().startswith("metric,")
