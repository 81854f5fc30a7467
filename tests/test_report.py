"""The report: built from real short runs and from hand-written results, right numbers, same bytes twice."""
from __future__ import annotations
import csv
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from ablations import report
from ablations import run as run_cli
from ablations.report_data import read_curves
from ablations.results import COLUMNS, SCHEMA, append_row
from ablations.vdl import VisualDLSink
from paddle_cnns import list_models
from report_helpers import build, claims_of, md_table, revision, row, row_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("1. Setup", "2. Classic networks", "3. The trick ablation", "4. Against the article",
            "5. Figures", "6. Costs")
FIGURES = ("curves_classics.png", "curves_tricks.png", "convergence_tricks.png", "trick_deltas.png",
           "accuracy_vs_cost.png", "confusion.png")
T_975_2 = 4.302652729911275   # t_{0.975, 2}, from a t table (scipy.stats.t.ppf(0.975, 2))
T_975_1 = 12.706204736174707  # t_{0.975, 1}


def run_main(capsys, argv):
    with pytest.raises(SystemExit) as info:
        report.main(argv)
    return info.value.code, capsys.readouterr()


def ci_text(lo, hi):
    """The interval as the report should print it: one decimal, two when a bound would round to 0.0."""
    d = 2 if any(v != 0 and round(100 * v, 1) == 0 for v in (lo, hi)) else 1
    return f"[{100 * lo:+.{d}f}, {100 * hi:+.{d}f}]"


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
    assert comparison["parent"] == "sigmoid" and comparison["change"] == "+batch_norm"
    assert comparison["seeds paired"] == "2"
    shown = "0.0" if d_mean == 0 else f"{100 * d_mean:+.1f}"  # exactly no difference has no sign
    assert comparison["Δ top-1 (pts)"] == f"{shown} ± {100 * d_sd:.1f}"
    half = T_975_1 * d_sd / math.sqrt(2)
    if d_sd:
        assert comparison["95% CI, seeds (pts)"] == ci_text(d_mean - half, d_mean + half)

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


def test_each_run_stored_its_per_image_predictions_and_the_report_pairs_them(built, study):
    _, md, _ = built
    raw = pd.read_csv(study / "results.csv")
    correct = {}
    for _, r in raw.iterrows():
        path = study / "predictions" / (r["run_id"] + ".csv")
        with open(path, newline="") as f:
            lines = list(csv.reader(f))
        assert lines[0] == ["index", "label", "predicted", "top5"]
        body = lines[1:]
        assert [int(x[0]) for x in body] == list(range(r["test_size"]))
        assert all(x[3].split()[0] == x[2] and len(x[3].split()) == 5 for x in body)  # top-5 starts with top-1
        right = [x[1] == x[2] for x in body]
        assert sum(right) == round(r["test_acc"] * r["test_size"])  # the same images the row was scored on
        correct[(r["variant"], r["seed"])] = right
        meta = json.loads((study / "predictions" / (r["run_id"] + ".json")).read_text())
        assert (meta["split"], meta["images"], meta["dataset"]) == ("test", r["test_size"], "synthetic")
    # McNemar over both seeds, by hand: b images only baseline got right, c only sigmoid
    b = sum(v and not p for s in (0, 1) for v, p in zip(correct["baseline", s], correct["sigmoid", s]))
    c = sum(p and not v for s in (0, 1) for v, p in zip(correct["baseline", s], correct["sigmoid", s]))
    tail = sum(math.comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c) if b + c else 0.5
    p_exact = min(1.0, 2 * tail)
    comparison = row_of(md_table(md, "### Each trick against its parent"), "variant", "baseline")
    shown = comparison["p McNemar"]
    assert shown == ("< 0.001" if p_exact < 0.001 else f"{p_exact:.2g}" if p_exact < 0.1 else f"{p_exact:.2f}")
    assert comparison["95% CI, seeds × images (pts)"].startswith("[")
    assert "**Per-image predictions**: stored for 6 of 6 finished runs" in md


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
            append_row(path, row(name, seed, acc, **({"model_revision": 0} if name == "gap" else {})))
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


def t2_p(mean, sd, n=3):
    """Two-sided p of a paired t-test with 2 degrees of freedom, by hand: the t(2) CDF is
    1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - |t| / sqrt(2 + t^2)."""
    t = mean / (sd / math.sqrt(n))
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_text(p):
    return "< 0.001" if p < 0.001 else f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def test_hand_computed_case_in_the_report(handwritten, tmp_path):
    done, md = build(handwritten / "results.csv", tmp_path / "no-logs", tmp_path / "out")
    table = md_table(md, "### Each trick against its parent")
    gap = row_of(table, "variant", "gap")
    # d = 0.11, 0.12, 0.10 (seed 3 diverged, and the older 0.99 attempt of seed 0 is replaced)
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert gap["parent"] == "baseline" and gap["change"] == "+gap" and gap["seeds paired"] == "3"
    assert gap["Δ top-1 (pts)"] == "+11.0 ± 1.0"
    assert gap["95% CI, seeds (pts)"] == f"[{100 * (0.11 - half):+.1f}, {100 * (0.11 + half):+.1f}]" == "[+8.5, +13.5]"
    assert gap["Δ balanced (pts)"] == "+11.0"  # balanced accuracy = accuracy in these rows
    assert gap["variant top-1"] == f"{100 * (0.61 + 0.64 + 0.64) / 3:.1f} ± 1.7"
    assert "1 diverged" in gap["note"]
    # Holm over the 3 comparisons with a p (leaky_relu has no pair): baseline (d = .40, .42, .44),
    # gap, baseline+lrdecay (d = 0, -6, -9 in 1/300: mean -5/300, squared deviations 25 + 1 + 16 = 2 * 21)
    p_base, p_gap = t2_p(0.42, 0.02), t2_p(0.11, 0.01)
    p_decay = t2_p(-5 / 300, math.sqrt(21) / 300)
    assert p_base < p_gap < p_decay
    holm = [3 * p_base, max(3 * p_base, 2 * p_gap), max(3 * p_base, 2 * p_gap, p_decay)]
    assert gap["p seeds"] == p_text(p_gap) and gap["Holm p"] == p_text(holm[1])
    assert gap["verdict"] == "helps"
    base = row_of(table, "variant", "baseline")
    assert base["Δ top-1 (pts)"] == "+42.0 ± 2.0" and base["verdict"] == "helps"
    assert base["Holm p"] == p_text(holm[0])
    decay = row_of(table, "variant", "baseline+lrdecay")  # the LR decay itself is the change here
    assert decay["parent"] == "baseline" and decay["change"] == "+lr_decay"
    assert decay["Δ top-1 (pts)"] == "-1.7 ± 1.5" and decay["verdict"] == "inconclusive"
    assert decay["Holm p"] == p_text(holm[2])
    leaky = row_of(table, "variant", "leaky_relu")
    assert leaky["seeds paired"] == "0" and leaky["verdict"] == "not measured (no common seed)"
    assert leaky["Holm p"] == "–" and "seed 5 of leaky_relu has no partner" in leaky["note"]
    assert "p McNemar" not in table[0]  # no run stored predictions: no image columns
    assert "**Per-image predictions**: none stored for these runs" in md

    variants = md_table(md, "### Trick variants")
    assert row_of(variants, "variant", "gap")["runs"] == "3 of 4 (1 diverged)"
    assert row_of(variants, "variant", "leaky_relu")["runs"] == "1 of 2 (1 failed)"
    # failed and diverged runs are listed, not dropped; no logs anywhere is said, not a crash
    assert "`synthetic/32px/gap/seed3` **diverged**: non-finite loss" in md
    assert "`synthetic/32px/leaky_relu/seed0` **failed**: MemoryError" in md
    assert "no run has curves: no log folder (was --logdir right?)" in md
    assert "No curves for the trick CNN variants" in md
    assert "No classic network in the results yet" in md

    # gap's rows were trained on revision 0 of its network: the setup and the costs section say so
    today = revision("gap")
    assert (f"- gap at 32 px: trained as revision 0 of the model (44,708,240 params); today's model zoo builds "
            f"revision {today}, so these numbers describe the earlier network") in md
    assert "revision 0 of the model" not in md.split("- gap at 32 px")[0]  # the others are today's
    assert ("1 of 5 configurations ran an earlier version of the network than today's model zoo builds (the "
            "recorded model revision differs from today's): their numbers describe the "
            f"earlier networks, and retraining them measures today's: gap (revision 0, today {today}; 44.71 M params "
            "recorded).") in md
    assert f"trained on an earlier model: gap (revision 0, today {today}; 44.71 M params recorded)" in gap["caveats"]
    assert "These runs recorded no per-block costs" in md

    claims = claims_of(md)
    assert claims[1]["we measured"] == "balanced test acc 10.0% (chance 10.0%); best eval acc 11.0%"
    assert (claims[1]["verdict"], claims[1]["criterion"]) == ("agree", "C1")
    assert claims[2]["verdict"] == "agree"
    # +11 from a 52% parent removes 11/48 = 22.9% of its errors, interval [8.5, 13.5]/48 = [17.7%, 28.1%]:
    # significant (Holm) and reaching the 25% that +25 points removes at the least
    gap_claim = claims[4]
    assert gap_claim["we measured"].startswith(
        f"Δ top-1 +11.0 pts [+8.5, +13.5] (seeds, n=3); +22.9% of the parent's errors [+17.7%, +28.1%]; "
        f"Holm p {p_text(holm[1])}; Δ balanced +11.0 pts; 63.0% vs 52.0%")
    assert (gap_claim["verdict"], gap_claim["criterion"]) == ("agree", "C2")
    assert claims[3]["verdict"] == "not measured"
    assert claims[3]["we measured"] == "no seed where both leaky_relu and baseline finished"
    assert claims[9]["verdict"] == "not measured"
    assert "**C2** a claimed gain" in md


def test_one_seed_of_tricks_only_gives_a_report_without_intervals(tmp_path):
    path = str(tmp_path / "results.csv")
    append_row(path, row("sigmoid", 0, 0.1))
    append_row(path, row("baseline", 0, 0.45))
    done, md = build(path, tmp_path / "logs", tmp_path / "out")
    r = row_of(md_table(md, "### Each trick against its parent"), "variant", "baseline")
    assert (r["Δ top-1 (pts)"], r["95% CI, seeds (pts)"], r["verdict"]) == ("+35.0", "–", "inconclusive (n=1)")
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
    claims = claims_of(md)
    sigmoid = claims[1]
    assert sigmoid["we measured"] == "balanced test acc 10.0% (chance 10.0%); best eval acc 23.3%"
    assert sigmoid["verdict"] == "agree"
    baseline = claims[2]
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
    assert_one_line_error(code, captured, "schema 0", f"reads schema {SCHEMA}")


def test_help_documents_the_defaults(capsys):
    code, captured = run_main(capsys, ["--help"])
    assert code == 0
    for text in ("--results", "results/results.csv", "--logdir", "(default: logs)", "--out",
                 "beside the results store, e.g. results/report"):
        assert text in " ".join(captured.out.split())
    code, captured = run_main(capsys, ["--bogus"])
    assert_one_line_error(code, captured, "--bogus")


def test_cli_writes_the_report_and_names_runs_without_curves(capsys, handwritten, tmp_path):
    assert report.main(["--results", str(handwritten / "results.csv"), "--logdir", str(tmp_path / "logs"),
                        "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "report.md" in captured.out and "(13 finished, 1 diverged, 1 failed)" in captured.out
    assert "note: no run has curves: no log folder (was --logdir right?)" in captured.err


def test_no_flags_write_beside_the_results_store_and_leave_reports_alone(capsys, handwritten, tmp_path, monkeypatch):
    # A user's checkout: their runs in results/, the published study in reports/.
    os.makedirs(tmp_path / "results")
    shutil.copy(handwritten / "results.csv", tmp_path / "results" / "results.csv")
    os.makedirs(tmp_path / "reports")
    (tmp_path / "reports" / "report.md").write_text("the published study\n")
    monkeypatch.chdir(tmp_path)
    assert report.main([]) == 0
    assert "wrote results/report/report.md" in capsys.readouterr().out
    assert (tmp_path / "results" / "report" / "report.md").exists()
    assert (tmp_path / "results" / "report" / "report.html").exists()
    assert os.listdir(tmp_path / "reports") == ["report.md"]
    assert (tmp_path / "reports" / "report.md").read_text() == "the published study\n"


def test_one_run_is_one_run(capsys, tmp_path):
    path = str(tmp_path / "results.csv")
    append_row(path, row("baseline", 0, 0.5))
    assert report.main(["--results", path, "--logdir", str(tmp_path / "logs"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "from 1 run (1 finished, 0 diverged, 0 failed)" in out and "1 runs" not in out
    md = (tmp_path / "out" / "report.md").read_text()
    assert "(1 run)" in md and "1 runs" not in md


def hints(md: str) -> list:
    """Every `python -m ablations.run ...` command the report prints."""
    out, rest = [], md
    while "`python -m ablations.run " in rest:
        rest = rest[rest.index("`python -m ablations.run ") + 1:]
        out.append(rest[:rest.index("`")])
    return out


def test_missing_run_hints_run_as_printed_and_land_in_the_same_study(tmp_path, monkeypatch):
    # A study with flags of its own: dataset, epochs, lr, image size, max-per-class, a tag, two seeds.
    path = str(tmp_path / "store" / "results.csv")
    study = {"epochs": 4, "lr": 0.05, "max_per_class": 3, "image_size": 64, "tag": "mine"}
    for seed in (3, 4):
        append_row(path, row("baseline~mine", seed, 0.5 + seed / 100, **study,
                             run_id=f"synthetic/64px/baseline~mine/seed{seed}"))
    done, md = build(path, tmp_path / "logs", tmp_path / "out")
    commands = hints(md)
    assert commands and all("--dataset synthetic" in c and "--seeds 3,4" in c for c in commands)
    expected = {("synthetic", "cpu", 4, 0.05, 3, "mine")}
    variants = set()
    for command in commands:
        argv = shlex.split(command)[3:]
        args = run_cli.build_parser().parse_args(argv)
        names = (args.variant or args.variants).split(",")
        if not set(names) <= set(list_models()):  # the article's BN models, before the model zoo has them
            assert set(names) - set(list_models()) <= {"vgg13_bn_article", "googlenet_bn_article"}
            continue
        assert args.results == path and args.logdir == str(tmp_path / "logs")
        monkeypatch.chdir(tmp_path)  # plan() checks the folders are writable, nothing more
        planned = run_cli.plan(args, on_gpu=False)
        # nin (minimum 67) cannot run at 64 px: its command leaves the size out, as the study's would fail
        assert {c.recipe.image_size for c in planned if c.variant != "nin"} <= {64}
        assert {c.recipe.image_size for c in planned if c.variant == "nin"} <= {96}
        variants.update(c.variant for c in planned)
        assert {(c.dataset, c.recipe.name, c.recipe.epochs, c.recipe.lr, c.max_per_class, c.tag)
                for c in planned} == expected
        assert {c.seed for c in planned} == {3, 4}
    assert {"nin", "alexnet", "leaky_relu", "all_tricks", "sigmoid"} <= variants
    decayed = [c for c in commands if "--lr-decay" in c]
    assert decayed and "--variant all_tricks " in decayed[0]
