"""An earlier paddle-cnns' results store: a study started before an upgrade goes on after it."""
import csv
import fcntl
import os
import subprocess
import sys
import time

from ablations.results import COLUMNS, HEADER, SCHEMA, _format, append_row, read_results, store_problem
from report_helpers import row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDED_IN_5 = ("stream", "world_size", "per_device_batch", "sync_bn")  # schema 4 -> 5: data parallelism


def _schema4_store(path, rows):
    """A store as paddle-cnns wrote it before schema 5: its columns, its schema number."""
    columns = [c for c in COLUMNS if c not in ADDED_IN_5]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_format({**r, "schema": 4}.get(c)) for c in columns])


def test_a_store_of_the_previous_schema_is_upgraded_on_append_and_the_old_file_kept(tmp_path, capsys):
    path = str(tmp_path / "results.csv")
    _schema4_store(path, [row("baseline", 0, 0.61), row("gap", 0, 0.52)])
    before = open(path, "rb").read()
    assert store_problem(path) is None  # the runner does not refuse it up front
    assert append_row(path, row("dropout", 0, 0.58, world_size=2, per_device_batch=32, stream=False,
                                sync_bn=False))
    assert open(path + ".schema4.bak", "rb").read() == before  # nothing written is lost
    assert open(path).readline().rstrip("\n") == HEADER
    assert "schema4.bak" in capsys.readouterr().err
    df = read_results(path)
    assert list(df["name"]) == ["baseline", "gap", "dropout"]
    assert list(df["test_acc"]) == [0.61, 0.52, 0.58]  # old cells carried over exactly
    assert list(df["schema"]) == [SCHEMA] * 3
    assert list(df["world_size"]) == [1, 1, 2] and list(df["per_device_batch"]) == [64, 64, 32]
    assert not os.path.exists(path + ".upgrading")


def test_processes_appending_at_once_to_an_older_store_record_every_row_once(tmp_path):
    # One of them upgrades the file (a new file replaces it); the others, waiting for the lock on
    # the old file, must notice and append to the new one instead of to the replaced file.
    path = str(tmp_path / "results.csv")
    _schema4_store(path, [row("baseline", 0, 0.61)])
    code = ("import sys; sys.path[:0] = [sys.argv[3], sys.argv[3] + '/tests']\n"
            "from ablations.results import append_row\nfrom report_helpers import row\n"
            "append_row(sys.argv[1], row('gap', int(sys.argv[2]), 0.5))\n")
    with open(path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # all four queue on the old file's lock before any goes on
        procs = [subprocess.Popen([sys.executable, "-c", code, path, str(seed), ROOT], stderr=subprocess.PIPE)
                 for seed in range(1, 5)]
        _wait_for(lambda: _lock_waiters() >= {p.pid for p in procs}, procs)
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    df = read_results(path)
    assert sorted(df["seed"]) == [0, 1, 2, 3, 4]
    assert list(df["schema"]) == [SCHEMA] * 5


def _lock_waiters() -> set:
    """Pids blocked waiting for a flock (the '->' lines of /proc/locks)."""
    with open("/proc/locks") as f:
        return {int(line.split()[5]) for line in f if "->" in line and "FLOCK" in line}


def _wait_for(condition, procs, tries=1200):
    for _ in range(tries):  # polls a condition, no timing threshold: up to 10 min on a loaded machine
        if condition():
            return
        assert all(p.poll() is None for p in procs), "an appender ended before the lock was free"
        time.sleep(0.5)
    raise AssertionError("the appenders never queued on the lock")
