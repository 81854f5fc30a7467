"""The report's LR check (the study repeated at other learning rates) and the convergence shown beside each trick."""
import os

from ablations.results import append_row
from report_helpers import build, md_table, row, row_of, run_with_predictions, write_curves

LABELS = [i % 10 for i in range(200)]
LR_CHECK = "### Does the learning rate change a verdict? (LR check)"


def first_right(k):
    """Predictions that get the first k of the 200 test images right and the rest wrong."""
    return [y if i < k else (y + 1) % 10 for i, y in enumerate(LABELS)]


def study_with_lr_check(tmp_path, check_tricks_right: int, check_baseline_right: int) -> str:
    """The study at lr 0.01 (sigmoid, baseline, all_tricks; seeds 0, 1) where all_tricks clearly helps,
    and its LR check at lr 0.03 (baseline, all_tricks; seed 0) with the given right answers."""
    path = str(tmp_path / "results.csv")
    for seed, (tricks, base) in enumerate(((180, 120), (176, 124))):
        run_with_predictions(path, row, "sigmoid", seed, LABELS, first_right(20))
        for name, right in (("baseline", base), ("all_tricks", tricks)):
            r = run_with_predictions(path, row, name, seed, LABELS, first_right(right))
            write_curves(tmp_path / "logs", r["run_id"], [(2.0, 2.1), (1.0, 1.5), (0.5, 1.6)])
    for name, right in (("baseline~lr0.03", check_baseline_right), ("all_tricks~lr0.03", check_tricks_right)):
        run_with_predictions(path, row, name, 0, LABELS, first_right(right), lr=0.03)
    return path


def test_an_lr_check_is_reported_beside_the_study_and_kept_out_of_its_tables(tmp_path):
    path = study_with_lr_check(tmp_path, check_tricks_right=178, check_baseline_right=118)
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    setup = md_table(md, "## 1. Setup")
    assert list(setup[0]) == ["setting", "study S1", "study S2"]
    assert row_of(setup, "setting", "run tag")["study S2"] == "lr0.03"
    assert "studies S1" not in md and "study S2 (lr 0.03) repeats it at another learning rate" in md
    # the main tables hold the study alone, unlabelled; the check's runs ask for nothing more to be trained
    variants = [r["variant"] for r in md_table(md, "### Trick variants")]
    assert variants == ["sigmoid", "baseline", "all_tricks"]
    compared = [(r["variant"], r["parent"]) for r in md_table(md, "### Each trick against its parent")]
    assert compared == [("baseline", "sigmoid"), ("all_tricks", "baseline")]
    coverage = md[md.index("### What ran and what is missing"):md.index("## 2. Classic networks")]
    assert "in study" not in coverage and "--tag lr0.03" not in coverage
    # the check: each model at both learning rates on the check's seed, then the comparison at each
    models = md_table(md, LR_CHECK)
    assert [(r["model"], r["lr"], r["seed"], r["test top-1"]) for r in models] == [
        ("all_tricks", "0.01 (the study's)", "0", "90.0"), ("all_tricks", "0.03", "0", "89.0"),
        ("baseline", "0.01 (the study's)", "0", "60.0"), ("baseline", "0.03", "0", "59.0")]
    section = md[md.index(LR_CHECK):md.index("## 4. Against the article")]
    comparisons = md_table(section[section.index("| comparison"):], "| comparison")
    assert [(r["lr"], r["Δ top-1 (pts)"], r["basis"], r["verdict"]) for r in comparisons] == [
        ("0.01 (the study's)", "+30.0", "images (one seed)", "helps"),
        ("0.03", "+30.0", "images (one seed)", "helps")]
    assert ("`all_tricks` against `baseline` (seed 0): helps at lr 0.01; helps at lr 0.03 — the verdict holds "
            "at every learning rate tried.") in section
    assert "Over all 2 seeds of the study at lr 0.01 the verdict is" in section


def test_a_verdict_that_reverses_at_another_learning_rate_is_called_a_flip(tmp_path):
    path = study_with_lr_check(tmp_path, check_tricks_right=100, check_baseline_right=170)
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    section = md[md.index(LR_CHECK):md.index("## 4. Against the article")]
    assert "helps at lr 0.01; hurts at lr 0.03 — **the verdict flips**" in section


def test_a_verdict_significant_at_one_learning_rate_only_is_called_a_change(tmp_path):
    path = study_with_lr_check(tmp_path, check_tricks_right=122, check_baseline_right=118)
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    section = md[md.index(LR_CHECK):md.index("## 4. Against the article")]
    assert "helps at lr 0.01; inconclusive at lr 0.03 — **the verdict changes**" in section


def test_a_study_at_another_recipe_is_not_taken_for_an_lr_check(tmp_path):
    path = str(tmp_path / "results.csv")
    for seed in (0, 1):
        append_row(path, row("baseline", seed, 0.5))
        append_row(path, row("all_tricks", seed, 0.6))
    append_row(path, row("baseline~long", 0, 0.55, lr=0.03, epochs=5))  # another lr and another length
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert LR_CHECK not in md
    assert "baseline~long [S2]" in [r["variant"] for r in md_table(md, "### Trick variants")]


def test_each_trick_shows_its_convergence_beside_it(tmp_path):
    path = study_with_lr_check(tmp_path, check_tricks_right=178, check_baseline_right=118)
    done, md = build(path, tmp_path / "logs", tmp_path / "out")
    baseline = row_of(md_table(md, "### Trick variants"), "variant", "baseline")
    assert baseline["best epoch"] == "2, 2 of 3"  # each seed's epoch of best eval accuracy
    assert baseline["final train acc"] == "95.0 ± 0.0"
    verdict = row_of(md_table(md, "### Each trick against its parent"), "variant", "all_tricks")
    assert verdict["best epochs (variant / parent)"] == "2, 2 / 2, 2 of 3"  # beside the verdict, too
    append_row(path, row("baseline", 2, 0.7, best_epoch=3))  # a seed all_tricks lacks: not in its comparison
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    verdict = row_of(md_table(md, "### Each trick against its parent"), "variant", "all_tricks")
    assert verdict["best epochs (variant / parent)"] == "2, 2 / 2, 2 of 3"
    baseline = row_of(md_table(md, "### Trick variants"), "variant", "baseline")
    assert baseline["best epoch"] == "2, 2, 3 of 3"
    figure = os.path.join(str(tmp_path / "out"), "convergence_tricks.png")
    assert figure in done["figures"] and os.path.getsize(figure) > 0
    assert "![Trick CNN variants: train and eval loss per epoch, one panel each](convergence_tricks.png)" in md
    with open(figure, "rb") as f:
        first = f.read()
    build(path, tmp_path / "logs", tmp_path / "out")
    with open(figure, "rb") as f:
        assert f.read() == first  # the same inputs draw the same bytes


def test_a_diverged_lr_check_run_is_shown_and_its_comparison_not_judged(tmp_path):
    path = study_with_lr_check(tmp_path, check_tricks_right=178, check_baseline_right=118)
    append_row(path, row("baseline~lr0.1", 0, None, lr=0.1, status="diverged", error="loss is nan at epoch 2"))
    append_row(path, row("all_tricks~lr0.1", 0, 0.8, lr=0.1))
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    diverged = [r for r in md_table(md, LR_CHECK) if r["lr"] == "0.1"]
    assert [(r["model"], r["status"], r["test top-1"]) for r in diverged] == [
        ("all_tricks", "finished", "80.0"), ("baseline", "diverged", "–")]
    section = md[md.index(LR_CHECK):md.index("## 4. Against the article")]
    assert ("helps at lr 0.01; helps at lr 0.03; not measured (no common seed) at lr 0.1 — the verdict holds at "
            "every learning rate where it was measured (not measured at lr 0.1: a run there did not finish).") in section
