"""The data benchmark runs end to end on a tiny generated Caltech-16 and writes its table and CSV."""
import csv

import paddle

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
