"""The report: built from real short runs and from hand-written results, right numbers, same bytes twice."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict

import pandas as pd
import pytest

from ablations import report
from ablations.report_data import read_curves
from ablations.report_stats import paired_difference
from ablations.results import COLUMNS, append_row
from ablations.vdl import VisualDLSink
from paddle_cnns import VARIANTS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("1. Setup", "2. Classic networks", "3. The trick ablation", "4. Against the article",
            "5. Figures", "6. Costs")
FIGURES = ("curves_classics.png", "curves_tricks.png", "trick_deltas.png", "accuracy_vs_cost.png", "confusion.png")
T_975_2 = 4.302652729911275   # t_{0.975, 2}, from a t table (scipy.stats.t.ppf(0.975, 2))
T_975_1 = 12.706204736174707  # t_{0.975, 1}


# ---------------------------------------------------------------- helpers

def md_table(md: str, heading: str) -> list[dict]:
    """The first Markdown table after `heading`, as a list of {column: cell}."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r)) for r in body]


def row_of(table: list[dict], column: str, value: str) -> dict:
    matches = [r for r in table if r[column] == value]
    assert len(matches) == 1, (value, [r[column] for r in table])
    return matches[0]


def build(results, logdir, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = report.build_report(str(results), str(logdir), str(out))
    glyphs = [str(w.message) for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    assert not glyphs, glyphs
    with open(done["paths"]["report.md"], encoding="utf-8") as f:
        md = f.read()
    return done, md


def run_main(capsys, argv):
    with pytest.raises(SystemExit) as info:
        report.main(argv)
    return info.value.code, capsys.readouterr()


def pct(x):
    return f"{100 * x:.1f}"


def row(run_id_name, seed, test_acc, **kw):
    """A complete hand-written results row of a trick variant on a 10-class dataset at 32 px."""
    variant = run_id_name.split("~")[0].split("+")[0]
    r = {"run_id": f"synthetic/32px/{run_id_name}/seed{seed}", "name": run_id_name,
         "tag": run_id_name.split("~", 1)[1] if "~" in run_id_name else "", "model_revision": 1,
         "finished_at": f"2030-01-01T00:{seed:02d}:00Z",
         "status": "finished", "error": "", "variant": variant, "family": "trick", **asdict(VARIANTS[variant]),
         "dataset": "synthetic", "image_size": 32, "in_channels": 3, "num_classes": 10, "train_size": 320,
         "eval_size": 80, "test_size": 80, "recipe": "cpu", "epochs": 3, "batch_size": 64, "optimizer": "momentum",
         "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "lr_decay": "+lrdecay" in run_id_name,
         "decay_epochs": [2] if "+lrdecay" in run_id_name else [], "augment": False, "max_per_class": None,
         "seed": seed, "best_eval_acc": None if test_acc is None else test_acc + 0.01, "best_epoch": 3,
         "final_eval_acc": test_acc,
         "final_eval_loss": 1.0, "final_train_acc": 0.9, "final_train_loss": 0.5, "epochs_done": 3,
         "test_split": "test", "test_acc": test_acc, "test_top5": 0.9, "test_balanced_acc": test_acc,
         "test_loss": 1.2, "params": 44_708_240, "macs": 241_909_760, "train_time_s": 30.0 + seed,
         "wall_time_s": 40.0, "images_per_s": 11.0, "paddle_version": "3.3.1", "device": "cpu", "threads": 2,
         "fast_layers": True, "logdir": f"nowhere/{run_id_name}/seed{seed}",
         "class_names": [f"c{i}" for i in range(10)], "test_per_class_acc": [test_acc] * 10,
         "test_confusion": [[8 if i == j else 0 for j in range(10)] for i in range(10)]}
    r.update(kw)
    return r


# ---------------------------------------------------------------- real short runs (once per session)

@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """lenet, sigmoid and baseline, seeds 0 and 1, one epoch on the synthetic set, trained by ablations.run."""
    root = tmp_path_factory.mktemp("study")
    # The trick CNN has 45 M parameters: its checkpoints are ~0.5 GB a run (~2 GB here, removed at
    # once). A RAM disk when there is a roomy one; containers often have a 64 MB /dev/shm.
    shm = "/dev/shm"
    if not (os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 * 2**30):
        shm = None
    ckpt = os.path.join(shm, f"paddle-cnns-report-test-{os.getpid()}") if shm else str(root / "ckpt")
    cmd = [sys.executable, "-m", "ablations.run", "--variants", "lenet,sigmoid,baseline", "--dataset", "synthetic",
           "--epochs", "1", "--seeds", "0,1", "--image-size", "32", "--max-per-class", "2", "--batch-size", "64",
           "--jobs", "1", "--logdir", str(root / "logs"), "--checkpoint-dir", ckpt,
           "--results", str(root / "results.csv")]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return root


@pytest.fixture(scope="session")
def built(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    done, md = build(study / "results.csv", study / "logs", out)
    return done, md, out


@pytest.mark.slow
def test_report_from_real_runs_has_every_section_figure_and_no_missing_curves(built):
    done, md, out = built
    for title in SECTIONS:
        assert f"## {title}" in md
    with open(out / "report.html", encoding="utf-8") as f:
        page = f.read()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    for figure in FIGURES:
        data = (out / figure).read_bytes()
        assert data.startswith(b"\x89PNG") and b"tIME" not in data and b"Software" not in data
        assert f"]({figure})" in md and f'src="{figure}"' in page  # relative links, GitHub and browser
    assert done["no_curves"] == {}
    assert "has no curves" not in md
    assert "6 finished, 0 diverged, 0 failed" in md


@pytest.mark.slow
def test_report_numbers_match_the_results_store(built, study):
    done, md, _ = built
    raw = pd.read_csv(study / "results.csv")  # read independently of the report's own loader
    assert len(raw) == 6
    lenet = raw[raw["variant"] == "lenet"]
    classic = row_of(md_table(md, "## 2. Classic networks"), "model", "lenet")
    mean = lenet["test_acc"].mean()
    sd = lenet["test_acc"].std(ddof=1)
    assert classic["test top-1"] == f"{100 * mean:.1f} ± {100 * sd:.1f}"
    assert classic["images/s"] == f"{lenet['images_per_s'].mean():.1f}"
    assert classic["params"] == f"{lenet['params'].iloc[0] / 1e3:.2f} k"
    assert classic["FLOPs"] == f"{2 * lenet['macs'].iloc[0] / 1e6:.2f} M"
    assert classic["runs"] == "2"

    variants = md_table(md, "### Trick variants")
    for name in ("sigmoid", "baseline"):
        runs = raw[raw["variant"] == name]
        r = row_of(variants, "variant", name)
        best = runs["best_eval_acc"]
        assert r["best eval acc"] == f"{100 * best.mean():.1f} ± {100 * best.std(ddof=1):.1f}"
        seconds = runs["train_time_s"].mean()  # 2 decimals under 10 s, 1 under 1000 s
        assert r["train time (s)"] == (f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}")
        assert r["batch_norm"] == ("on" if name == "baseline" else "")

    comparison = row_of(md_table(md, "### Each trick against its parent"), "variant", "baseline")
    by_seed = raw.set_index(["variant", "seed"])["test_acc"]
    diffs = [by_seed["baseline", s] - by_seed["sigmoid", s] for s in (0, 1)]
    d_mean, d_sd = sum(diffs) / 2, abs(diffs[0] - diffs[1]) / math.sqrt(2)
    assert comparison["parent"] == "sigmoid" and comparison["batch_norm"] == "+on"
    assert comparison["seeds paired"] == "2"
    assert comparison["Δ top-1 (pts)"] == f"{100 * d_mean:+.1f} ± {100 * d_sd:.1f}"
    half = T_975_1 * d_sd / math.sqrt(2)
    assert comparison["95% CI (pts)"] == f"[{100 * (d_mean - half):+.1f}, {100 * (d_mean + half):+.1f}]"

    setup = {r["setting"]: r["value"] for r in md_table(md, "## 1. Setup")}
    first = raw.iloc[0]
    assert setup["split sizes (train / eval / test)"] == f"{first.train_size} / {first.eval_size} / {first.test_size}"
    assert setup["paddle version"] == first.paddle_version
    assert setup["date (UTC)"].endswith(max(raw["finished_at"]).replace("T", " ")[:16])

    costs = md_table(md, "## 6. Costs")
    for name in ("lenet", "sigmoid", "baseline"):  # the costs are the ones the runs recorded
        params = raw[raw["variant"] == name]["params"].iloc[0]
        shown = f"{params / 1e6:.2f} M" if params >= 1e6 else f"{params / 1e3:.2f} k"
        assert row_of(costs, "model", name)["params"] == shown
        blocks = json.loads(raw[raw["variant"] == name]["blocks"].iloc[0])
        assert sum(b[2] for b in blocks) == params and sum(b[3] for b in blocks) == raw[raw["variant"] == name]["macs"].iloc[0]
    assert "### sigmoid at 32 px" in md and "| stage6 " in md
    assert "today's model zoo builds revision" not in md


@pytest.mark.slow
def test_regeneration_is_byte_identical(built, study, tmp_path):
    _, _, first = built
    build(study / "results.csv", study / "logs", tmp_path)  # another folder: no path leaks into the files
    names = sorted(os.listdir(first))
    assert names == sorted(os.listdir(tmp_path)) == sorted(["report.md", "report.html", *FIGURES])
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.slow
def test_a_run_without_logs_is_named_and_the_rest_still_has_curves(study, tmp_path):
    # As if trained elsewhere: the recorded log folders do not exist here, --logdir holds a copy.
    logs = tmp_path / "copied-logs"
    shutil.copytree(study / "logs", logs)
    shutil.rmtree(logs / "sigmoid" / "s1" / "synthetic-32px")
    df = pd.read_csv(study / "results.csv", dtype=str, keep_default_na=False)
    df["logdir"] = "trained-elsewhere/logs/" + df["run_id"]
    df.to_csv(tmp_path / "results.csv", index=False)
    done, md = build(tmp_path / "results.csv", logs, tmp_path / "out")
    assert done["no_curves"] == {"sigmoid/s1/synthetic-32px": "no log folder"}
    assert "`sigmoid/s1/synthetic-32px` has no curves: no log folder" in md
    assert (tmp_path / "out" / "curves_tricks.png").exists()  # sigmoid seed 0 and baseline still drawn


# ---------------------------------------------------------------- statistics, by hand

def test_paired_difference_matches_a_hand_computation():
    # d = 0.10, 0.12, 0.11: mean 0.11, sd 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3)
    p = paired_difference({0: 0.60, 1: 0.62, 2: 0.61, 7: 0.9}, {0: 0.50, 1: 0.50, 2: 0.50, 5: 0.1})
    assert p.seeds == (0, 1, 2) and p.n == 3
    assert p.mean == pytest.approx(0.11, abs=1e-9)
    assert p.sd == pytest.approx(0.01, abs=1e-9)
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert p.ci == pytest.approx((0.11 - half, 0.11 + half), abs=1e-9)
    assert p.verdict == "helps"
    # d = -0.10, 0.05, 0.20: mean 0.05, sd 0.15 -> CI (-0.3226, 0.4226) straddles 0
    p = paired_difference({0: 0.4, 1: 0.55, 2: 0.7}, {0: 0.5, 1: 0.5, 2: 0.5})
    assert (p.mean, p.sd) == (pytest.approx(0.05, abs=1e-9), pytest.approx(0.15, abs=1e-9))
    assert p.ci[0] == pytest.approx(0.05 - T_975_2 * 0.15 / math.sqrt(3), abs=1e-9)
    assert p.verdict == "inconclusive"
    assert paired_difference({0: 0.3, 1: 0.31}, {0: 0.5, 1: 0.5}).verdict == "hurts"
    one = paired_difference({0: 0.6, 1: 0.7}, {1: 0.5, 2: 0.5})
    assert (one.n, one.mean, one.sd, one.ci, one.verdict) == (1, pytest.approx(0.2), None, None, "inconclusive (n=1)")
    none = paired_difference({0: 0.6}, {1: 0.5})
    assert (none.n, none.mean, none.verdict) == (0, None, "not measured (no common seed)")
    assert paired_difference({0: float("nan"), 1: 0.6}, {0: 0.5, 1: 0.5}).n == 1  # a NaN metric is no pair


@pytest.fixture(scope="module")
def handwritten(tmp_path_factory):
    """sigmoid, baseline, gap and baseline+lrdecay over 3 seeds with chosen accuracies, plus trouble:
    an older attempt of a run, a diverged gap seed, a failed leaky_relu run, a leaky_relu with no partner."""
    root = tmp_path_factory.mktemp("handwritten")
    path = str(root / "results.csv")
    accs = {"sigmoid": (0.10, 0.10, 0.10), "baseline": (0.50, 0.52, 0.54), "gap": (0.61, 0.64, 0.64),
            "baseline+lrdecay": (0.50, 0.50, 0.51)}
    append_row(path, row("gap", 0, 0.99, finished_at="2029-01-01T00:00:00Z"))  # older attempt: must not count
    for name, values in accs.items():
        for seed, acc in enumerate(values):  # gap as trained by an earlier version of its network
            append_row(path, row(name, seed, acc, model_revision=0 if name == "gap" else 1))
    append_row(path, row("gap", 3, None, status="diverged", error="non-finite loss at epoch 2 step 1; lower --lr",
                         best_eval_acc=0.3, final_eval_acc=0.1, test_split="", test_top5=None,
                         test_balanced_acc=None, test_confusion=None, test_per_class_acc=None))
    append_row(path, {"run_id": "synthetic/32px/leaky_relu/seed0", "name": "leaky_relu", "tag": "",
                      "finished_at": "2030-01-01T01:00:00Z",
                      "status": "failed", "error": "MemoryError: out of memory", "variant": "leaky_relu",
                      "family": "trick", "dataset": "synthetic", "image_size": 32, "recipe": "cpu", "epochs": 3,
                      "batch_size": 64, "optimizer": "momentum", "lr": 0.01, "lr_decay": False, "seed": 0,
                      "paddle_version": "3.3.1"})
    append_row(path, row("leaky_relu", 5, 0.7))  # seed 5: baseline has no seed 5
    return root


def test_hand_computed_case_in_the_report(handwritten, tmp_path):
    done, md = build(handwritten / "results.csv", tmp_path / "no-logs", tmp_path / "out")
    table = md_table(md, "### Each trick against its parent")
    gap = row_of(table, "variant", "gap")
    # d = 0.11, 0.12, 0.10 (seed 3 diverged, and the older 0.99 attempt of seed 0 is replaced)
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert gap["parent"] == "baseline" and gap["change"] == "+gap" and gap["gap"] == "+on"
    assert gap["batch_norm"] == "on" and gap["seeds paired"] == "3"
    assert gap["Δ top-1 (pts)"] == "+11.0 ± 1.0"
    assert gap["95% CI (pts)"] == f"[{100 * (0.11 - half):+.1f}, {100 * (0.11 + half):+.1f}]" == "[+8.5, +13.5]"
    assert gap["variant top-1"] == f"{100 * (0.61 + 0.64 + 0.64) / 3:.1f} ± 1.7"
    assert gap["verdict"] == "helps" and "1 diverged" in gap["note"]
    base = row_of(table, "variant", "baseline")
    assert base["Δ top-1 (pts)"] == "+42.0 ± 2.0" and base["verdict"] == "helps"
    decay = row_of(table, "variant", "baseline+lrdecay")  # the LR decay itself is the trick here
    assert decay["parent"] == "baseline" and decay["change"] == "+lr_decay" and decay["lr_decay"] == "on"
    assert decay["Δ top-1 (pts)"] == "-1.7 ± 1.5" and decay["verdict"] == "inconclusive"
    leaky = row_of(table, "variant", "leaky_relu")
    assert leaky["seeds paired"] == "0" and leaky["verdict"] == "not measured (no common seed)"
    assert "seed 5 of leaky_relu has no partner" in leaky["note"]

    variants = md_table(md, "### Trick variants")
    assert row_of(variants, "variant", "gap")["runs"] == "3 of 4 (1 diverged)"
    assert row_of(variants, "variant", "leaky_relu")["runs"] == "1 of 2 (1 failed)"
    # failed and diverged runs are listed, not dropped; no logs anywhere is said, not a crash
    assert "`synthetic/32px/gap/seed3` **diverged**: non-finite loss" in md
    assert "`synthetic/32px/leaky_relu/seed0` **failed**: MemoryError" in md
    assert "no run has curves: no log folder (was --logdir right?)" in md
    assert "No curves for the trick CNN variants" in md
    assert "No classic network in the results yet" in md

    # gap's rows were trained on revision 0 of its network: the costs section says so
    assert ("- gap at 32 px: trained as revision 0 of the model (44,708,240 params); today's model zoo builds "
            "revision 1, so these numbers describe the earlier network") in md
    assert "revision 0 of the model" not in md.split("- gap at 32 px")[0]  # the others are today's
    assert "These runs recorded no per-block costs" in md

    claims = {r["the article claims"]: r for r in md_table(md, "## 4. Against the article")}
    sigmoid = claims["A sigmoid CNN does not converge"]
    assert sigmoid["we measured"] == "balanced test acc 10.0% (chance 10.0%); best eval acc 11.0%"
    assert sigmoid["verdict"] == "agree"
    assert claims["BatchNorm makes the sigmoid CNN converge"]["verdict"] == "agree"
    gap_claim = claims["Global average pooling instead of the FC head"]  # +11 is 14 pts short of +25
    assert gap_claim["we measured"].startswith("+11.0 pts (n=3, 95% CI +8.5 to +13.5)")
    assert gap_claim["verdict"] == "disagree"
    assert claims["LeakyReLU instead of sigmoid"]["verdict"] == "not measured"
    assert claims["AlexNet is the best of the classic networks"]["verdict"] == "not measured"


def test_one_seed_of_tricks_only_gives_a_report_without_intervals(tmp_path):
    path = str(tmp_path / "results.csv")
    append_row(path, row("sigmoid", 0, 0.1))
    append_row(path, row("baseline", 0, 0.45))
    done, md = build(path, tmp_path / "logs", tmp_path / "out")
    r = row_of(md_table(md, "### Each trick against its parent"), "variant", "baseline")
    assert (r["Δ top-1 (pts)"], r["95% CI (pts)"], r["verdict"]) == ("+35.0", "–", "inconclusive (n=1)")
    assert "fewer than 2 finished seeds, so no confidence interval: sigmoid (1), baseline (1)" in md
    assert "classic networks not run" not in md and "no classic networks run" in md
    assert sorted(f for f in os.listdir(tmp_path / "out") if f.endswith(".png")) == [
        "accuracy_vs_cost.png", "confusion.png", "trick_deltas.png"]


def test_a_net_that_always_answers_the_largest_class_does_not_converge(tmp_path):
    # Caltech-16's real sigmoid CNN: 22.3% accuracy, every image called the largest class, so
    # balanced accuracy sits at chance; accuracy alone would pass it as converged (> 2 x 10%).
    path = str(tmp_path / "results.csv")
    for seed in (0, 1):
        append_row(path, row("sigmoid", seed, 0.223, test_balanced_acc=0.1))
        append_row(path, row("baseline", seed, 0.5, test_balanced_acc=0.45))
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    claims = {r["the article claims"]: r for r in md_table(md, "## 4. Against the article")}
    sigmoid = claims["A sigmoid CNN does not converge"]
    assert sigmoid["we measured"] == "balanced test acc 10.0% (chance 10.0%); best eval acc 23.3%"
    assert sigmoid["verdict"] == "agree"
    baseline = claims["BatchNorm makes the sigmoid CNN converge"]
    assert baseline["we measured"] == "balanced test acc 45.0% (chance 10.0%); best eval acc 51.0%"
    assert baseline["verdict"] == "agree"


def test_runs_of_different_recipes_are_never_compared(tmp_path):
    path = str(tmp_path / "results.csv")
    for seed in (0, 1):
        append_row(path, row("sigmoid", seed, 0.1))
        append_row(path, row("baseline", seed, 0.3 + seed / 10))
        append_row(path, row("baseline~long", seed, 0.6, epochs=5))  # --tag long --epochs 5
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    table = md_table(md, "### Each trick against its parent")
    assert [(r["variant"], r["parent"], r["verdict"]) for r in table] == [
        ("baseline [S1]", "sigmoid", "inconclusive"),
        ("baseline~long [S2]", "sigmoid~long", "not measured (parent not run)")]
    setup = md_table(md, "## 1. Setup")
    assert list(setup[0]) == ["setting", "study S1", "study S2"]
    assert row_of(setup, "setting", "recipe")["study S2"].startswith("cpu: 5 epochs")
    assert row_of(setup, "setting", "run tag")["study S2"] == "long"
    assert "study S1, the one with the most finished runs" in md


def test_read_curves_takes_the_newest_visualdl_file(tmp_path):
    folder = str(tmp_path / "run")
    old = VisualDLSink(folder)
    old({"epoch": 1, "eval_acc": 0.9, "eval_loss": 9.0})
    old.close()
    history = [{"epoch": e, "eval_acc": a, "eval_loss": 2.0 - a, "train_acc": a} for e, a in ((1, 0.25), (2, 0.5))]
    new = VisualDLSink(folder, history)  # a resumed run rewrites its history into a new file
    new({"epoch": 3, "eval_acc": 0.75, "eval_loss": 1.25, "train_acc": 0.8})
    new.close()
    curves, why = read_curves(folder)
    assert why == "" and list(curves.index) == [1, 2, 3]
    assert list(curves["eval_acc"]) == [0.25, 0.5, 0.75] and list(curves["eval_loss"]) == [1.75, 1.5, 1.25]
    assert read_curves(str(tmp_path / "absent")) == (None, "no log folder")
    os.makedirs(tmp_path / "empty")
    assert read_curves(str(tmp_path / "empty"))[1] == "no VisualDL file in its log folder"


# ---------------------------------------------------------------- missing or unreadable inputs

def assert_one_line_error(code, captured, *phrases):
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    for phrase in phrases:
        assert phrase in lines[0]


def test_no_results_yet_is_one_line_and_exit_2(capsys, tmp_path):
    code, captured = run_main(capsys, ["--results", str(tmp_path / "none.csv"), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, captured, "no results at", "python -m ablations.run")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty.csv").write_text(",".join(COLUMNS) + "\n")
    code, captured = run_main(capsys, ["--results", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, captured, "has no runs yet")


def test_results_from_an_older_version_are_one_line_and_exit_2(capsys, tmp_path):
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as f:  # schema 0: no test_balanced_acc, no images_per_s, ...
        w = csv.writer(f)
        w.writerow(["run_id", "variant", "seed", "test_acc"])
        w.writerow(["caltech16/224px/baseline/seed0", "baseline", 0, 0.5])
    code, captured = run_main(capsys, ["--results", str(old), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, captured, "older paddle-cnns")
    other = tmp_path / "other.csv"
    append_row(str(other), row("sigmoid", 0, 0.1, schema=0))
    code, captured = run_main(capsys, ["--results", str(other), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, captured, "schema 0", "reads schema 2")


def test_help_documents_the_defaults(capsys):
    code, captured = run_main(capsys, ["--help"])
    assert code == 0
    out = " ".join(captured.out.split())  # help lines wrap wherever the terminal width falls
    for text in ("--results", "results/results.csv", "--logdir", "(default: logs)", "--out", "(default: reports)"):
        assert text in out
    code, captured = run_main(capsys, ["--bogus"])
    assert_one_line_error(code, captured, "--bogus")


def test_cli_writes_the_report_and_names_runs_without_curves(capsys, handwritten, tmp_path):
    assert report.main(["--results", str(handwritten / "results.csv"), "--logdir", str(tmp_path / "logs"),
                        "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "report.md" in captured.out and "(13 finished, 1 diverged, 1 failed)" in captured.out
    assert "note: no run has curves: no log folder (was --logdir right?)" in captured.err
