"""The newcomer's path: run folders VisualDL tells apart, --help that reads cleanly, the renamed recipe,
console lines that name their split, progress on long steps, and a VisualDL that stops cleanly."""
import argparse
import dataclasses
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from ablations import console, study
from ablations import prepare as prepare_cli
from ablations import report as report_cli
from ablations import run as run_cli
from ablations import summary as summary_cli
from ablations import visualdl as visualdl_cli
from ablations.bench import data as bench_data
from ablations.bench import sweep as bench_sweep
from ablations.bench import train as bench_train
from ablations.config import Recipe, RunConfig, Session
from ablations.runfolder import paths_for
from ablations.vdl import VisualDLSink
from data_helpers import FAKE_CLASSES, FAKE_COUNTS, make_caltech_tree, make_image_folder, make_tar_gz
from paddle_cnns.data import prepare_caltech16

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
# What VisualDL 2.5.3's run list shows of LOGDIR/run_id before it cuts the name with "…", at any
# window width (measured with headless Chromium: .ci/visualdl_check.py, test below).
VISIBLE = 28
CPU = Recipe("cpu", 32, 5, 64, "momentum", 0.01)


def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}


# ---------------------------------------------------------------- run folders in VisualDL

def test_visualdl_shows_variant_decay_and_seed_of_four_runs_of_one_variant():
    four = [RunConfig("all_tricks", CPU, seed=seed, lr_decay=decay) for decay in (False, True) for seed in (0, 1)]
    shown = [("logs/" + cfg.run_id)[:VISIBLE] for cfg in four]
    assert len(set(shown)) == 4, shown


def test_visualdl_tells_apart_every_run_of_the_whole_study_with_three_seeds():
    runs = [RunConfig(model, dataclasses.replace(CPU, image_size=study.image_size_for(model, None, CPU)),
                      seed=seed, lr_decay=decay)
            for model, decay in study.expand(["all"], lr_decay=False) for seed in (0, 1, 2)]
    shown = [("logs/" + cfg.run_id)[:VISIBLE] for cfg in runs]
    assert len(runs) == 3 * (len(study.classics()) + len(study.TRICKS) + 1)
    assert len(set(shown)) == len(shown), sorted(s for s in shown if shown.count(s) > 1)


@pytest.mark.slow
def test_visualdl_run_list_screenshot_shows_four_distinct_rows(tmp_path):
    """The real check: VisualDL in headless Chromium (skipped where Chromium is not installed)."""
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, ".ci", "visualdl_check.py"), str(tmp_path / "shot")],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: the 4 rows" in proc.stdout and (tmp_path / "shot-runs.png").exists()


# ---------------------------------------------------------------- --help

def _subparsers(parser):
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _all_parsers():
    prepare = prepare_cli.build_parser()
    subs = _subparsers(prepare)[0].choices
    return {"run": (run_cli.build_parser(), run_cli.__doc__), "report": (report_cli.build_parser(), report_cli.__doc__),
            "prepare": (prepare, prepare_cli.__doc__), "prepare caltech16": (subs["caltech16"], ""),
            "prepare fashion_mnist": (subs["fashion_mnist"], ""),
            "summary": (summary_cli.build_parser(), summary_cli.__doc__),
            "visualdl": (visualdl_cli.build_parser(), visualdl_cli.__doc__),
            "bench train": (bench_train.build_parser(), bench_train.__doc__),
            "bench sweep": (bench_sweep.build_parser(), bench_sweep.__doc__),
            "bench data": (bench_data.build_parser(), bench_data.__doc__)}


def _option_entries(help_text: str) -> list:
    """The help of each option: from its '  --flag' line to the next one."""
    entries, current = [], None
    for line in help_text.splitlines():
        if re.match(r"^  -", line):
            current = [line]
            entries.append(current)
        elif current is not None and line.startswith("    "):
            current.append(line)
        else:
            current = None
    return [" ".join(" ".join(e).split()) for e in entries]


@pytest.mark.parametrize("name", sorted(_all_parsers()))
def test_help_states_each_default_once_and_never_none(name):
    parser, _ = _all_parsers()[name]
    text = parser.format_help()
    for bad in ("(default: None)", "(default: False)", "(default: )", "(default: [])"):
        assert bad not in text, name
    entries = _option_entries(text)
    assert entries, text
    for entry in entries:
        assert entry.count("default:") <= 1, entry


@pytest.mark.parametrize("name", sorted(_all_parsers()))
def test_help_keeps_each_example_on_its_own_line(name):
    parser, doc = _all_parsers()[name]
    examples = [line.split("#")[0].rstrip() for line in (doc or "").splitlines()
                if line.strip().startswith("python -m ablations")]
    lines = [line.split("#")[0].rstrip() for line in parser.format_help().splitlines()]
    for example in examples:
        assert example in lines, (name, example)


@pytest.mark.parametrize("name", sorted(_all_parsers()))
def test_every_option_has_a_help_text(name):
    parser, _ = _all_parsers()[name]
    for action in parser._actions:
        assert action.help, (name, action.option_strings or action.dest)


def test_readme_states_the_report_defaults_that_its_help_prints():
    defaults = {a.dest: a.default for a in report_cli.build_parser()._actions}
    defaults["out"] = report_cli.default_out(defaults["results"])  # no fixed default: beside the store
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    line = next(line for line in readme.splitlines() if re.search(r"-m ablations\.report\s+#", line))
    comment = line.split("#", 1)[1]
    for dest in ("results", "logdir", "out"):
        assert defaults[dest].rstrip("/") in comment, (dest, defaults[dest], line)


def test_readme_points_at_the_scalar_page_of_the_port_the_wrapper_uses():
    port = next(a.default for a in visualdl_cli.build_parser()._actions if a.dest == "port")
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    assert f"http://localhost:{port}{visualdl_cli.SCALAR_PAGE}" in readme
    assert "python -m ablations.visualdl" in readme


# ---------------------------------------------------------------- words: the recipe

def test_recipe_article_is_the_articles_and_seed_is_a_deprecated_alias(capsys):
    assert study.pick_recipe("article", on_gpu=False) is study.RECIPES["article"]
    assert study.pick_recipe("auto", on_gpu=True) is study.RECIPES["article"]
    assert study.pick_recipe("seed", on_gpu=False) is study.RECIPES["article"]
    assert study.RECIPES["article"].image_size == 224 and study.RECIPES["article"].epochs == 60
    assert "seed" not in study.RECIPES
    assert run_cli.main(["--recipe", "seed", "--list"]) == 0
    captured = capsys.readouterr()
    assert "warning: --recipe seed is deprecated" in captured.err and "use --recipe article" in captured.err
    assert "recipe article (the article's): 224 px, 60 epochs" in captured.out
    assert run_cli.main(["--recipe", "article", "--list"]) == 0
    assert "deprecated" not in capsys.readouterr().err


def test_user_facing_text_uses_the_short_names_of_the_sources():
    old = re.compile(r"seed 00[0-9]|seed article|--recipe seed\b", re.IGNORECASE)
    texts = {"README.md": open(README, encoding="utf-8").read()}
    for name, (parser, _) in _all_parsers().items():
        texts[f"{name} --help"] = parser.format_help()
    for where, text in texts.items():
        for line in text.splitlines():
            if old.search(line):
                assert "deprecated" in line or "older notes" in line, (where, line)


# ---------------------------------------------------------------- console honesty and progress

def test_outcome_line_calls_a_test_split_score_test_and_an_eval_split_score_eval():
    base = {"run_id": "gap/s0/folder-32px", "status": "finished", "best_eval_acc": 0.5, "test_acc": 0.25}
    assert "test acc 0.250" in console.describe({**base, "test_split": "test"})
    line = console.describe({**base, "test_split": "eval"})
    assert "test acc" not in line and "eval acc of the best checkpoint 0.250 (no test split)" in line


@pytest.fixture(scope="module")
def folder_run(module_dir):
    """One epoch on an image-folder dataset without test/, output captured as in a log file."""
    tmp = module_dir("folder_run")
    data = make_image_folder(str(tmp / "images"), counts={"train": 4, "val": 2}, stray=False)
    proc = subprocess.run([sys.executable, "-m", "ablations.run", "--variant", "gap", "--dataset", "folder",
                           "--data-dir", data, "--image-size", "32", "--epochs", "1", "--batch-size", "4",
                           "--lr", "0.01", "--logdir", str(tmp / "logs"), "--checkpoint-dir", str(tmp / "ckpt"),
                           "--results", str(tmp / "results.csv")],
                          cwd=tmp, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_run_on_a_dataset_without_test_split_says_its_final_score_is_on_eval(folder_run):
    outcome = next(line for line in folder_run.splitlines() if line.startswith("gap/s0/folder-32px: "))
    assert outcome.startswith("gap/s0/folder-32px: finished") and "(no test split)" in outcome, outcome
    assert "test acc" not in folder_run
    last = folder_run.strip().splitlines()[-1]
    assert last.startswith("results: ") and "; curves: python -m ablations.visualdl --logdir " in last, last


@pytest.mark.slow
def test_training_without_a_terminal_shows_a_line_at_the_first_step(folder_run):
    lines = folder_run.splitlines()
    first_step = next(i for i, line in enumerate(lines) if re.search(r"epoch 1/1: step \d+/2$", line))
    epoch_line = next(i for i, line in enumerate(lines) if "epoch 1/1: train loss" in line)
    assert first_step < epoch_line


def test_ticker_prints_plain_lines_without_a_terminal_and_a_bar_on_one():
    plain = io.StringIO()
    ticker = console.Ticker(every=0, first=0, stream=plain)
    for done in range(3):
        ticker("reading x.tar.gz", done * 10**6, 2 * 10**6, "B")
    assert plain.getvalue().splitlines() == ["reading x.tar.gz: 0 of 2 MB (0%)", "reading x.tar.gz: 1 of 2 MB (50%)",
                                             "reading x.tar.gz: 2 of 2 MB (100%)"]
    quiet = io.StringIO()
    slow = console.Ticker(every=60, first=60, stream=quiet)
    for done in range(100):
        slow("caching", done, 100, "images")
    assert quiet.getvalue() == ""  # a quick stage prints nothing

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    tty = Terminal()
    bar = console.Ticker(stream=tty)
    for done in range(5):
        bar("checking", done, 4, "images")
    bar.close()
    assert "checking:" in tty.getvalue() and "/4 [" in tty.getvalue()  # tqdm's bar, e.g. "0/4 [00:00<?"


@pytest.fixture(scope="module")
def fake_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("caltech101")
    return make_tar_gz(make_caltech_tree(str(root / "extracted")), str(root / "101_ObjectCategories.tar.gz"))


def test_preparing_caltech16_reports_reading_and_checking_through_the_callback(fake_archive, tmp_path):
    calls = []
    prepare_caltech16(fake_archive, str(tmp_path / "out"), download=False, progress=lambda *c: calls.append(c))
    stages = list(dict.fromkeys(stage for stage, *_ in calls))
    assert stages == ["Caltech-16: reading 101_ObjectCategories.tar.gz", "Caltech-16: checking the selected images"]
    reading = [c for c in calls if c[0] == stages[0]]
    assert reading[-1][1:] == (os.path.getsize(fake_archive), os.path.getsize(fake_archive), "B")
    assert [d for _, d, _, _ in reading] == sorted(d for _, d, _, _ in reading)
    selected = sum(FAKE_COUNTS[c] for c in FAKE_CLASSES)
    checking = [c for c in calls if c[0] == stages[1]]
    assert [d for _, d, _, _ in checking] == list(range(selected)) and checking[0][2:] == (selected, "images")


def test_prepare_command_prints_progress_lines_before_its_summary(fake_archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(console, "PROGRESS_EVERY", 0.0)
    prepare_cli.main(["caltech16", "--source", fake_archive, "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("Caltech-16 prepared in"))
    assert any(line.startswith("Caltech-16: reading 101_ObjectCategories.tar.gz: ") for line in lines[:summary])
    assert any(line.startswith("Caltech-16: checking the selected images: ") for line in lines[:summary])


# ---------------------------------------------------------------- python -m ablations.visualdl

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _write_log(logdir):
    cfg = RunConfig("gap", CPU, seed=3)
    sink = VisualDLSink(paths_for(cfg, Session(logdir=logdir)).logdir)
    for epoch in (1, 2):
        sink({"epoch": epoch, "train_loss": 2.0 / epoch, "eval_acc": 0.2 * epoch})
    sink.close()
    return cfg


def _servers_on(port):
    """PIDs of VisualDL servers started for `port` (their command line, from Linux /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if b"visualdl.server.app" in cmdline and f"--port\x00{port}\x00".encode() in cmdline:
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find leftover processes")
def test_visualdl_wrapper_serves_the_scalar_page_and_kill_stops_server_and_frees_the_port(tmp_path):
    cfg = _write_log(str(tmp_path / "logs"))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ablations.visualdl", "--port", str(port)], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("VisualDL shows 1 run of logs at ") and line.split()[-1] == \
            f"http://localhost:{port}/app/scalar", line + proc.stderr.read() if proc.poll() is not None else line
        runs = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"http://127.0.0.1:{port}/app/api/runs", timeout=10).read().decode()
        assert f"logs/{cfg.run_id}" in runs
        assert f"kill {proc.pid}" in proc.stdout.readline()
        assert len(_servers_on(port)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "VisualDL stopped" in proc.stdout.read()
    assert not _listening(port) and _servers_on(port) == []


def test_visualdl_wrapper_without_logs_or_with_a_taken_port_says_so_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        visualdl_cli.main(["--logdir", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: no VisualDL logs under ")
    _write_log(str(tmp_path / "logs"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as e:
            visualdl_cli.main(["--logdir", str(tmp_path / "logs"), "--port", str(port)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and f"port {port} is in use" in err[0]
