"""The report's statistics and each claim's verdict paths, checked against numbers worked out by hand."""
import math
import os
import statistics

import numpy as np
import pytest

import paddle_cnns
from ablations import report
from ablations import report_data as data
from ablations.report_figures import deltas_title, place_labels
from ablations.report_stats import bootstrap_ci, evidence, holm, image_test, mcnemar, paired_difference
from ablations.results import append_row
from report_helpers import (BLOCKS_32, BLOCKS_64, build, claims_of, classic_row, md_table, row, row_of,
                            run_with_predictions, write_curves, write_predictions)

T_975_2 = 4.302652729911275   # t_{0.975, 2}, from a t table


def t2_p(mean, sd, n=3):
    """Two-sided paired t-test p with 2 degrees of freedom: the t(2) CDF is 1/2 + t / (2 sqrt(2 + t^2))."""
    t = mean / (sd / math.sqrt(n))
    return 1 - abs(t) / math.sqrt(2 + t * t)


# ---------------------------------------------------------------- statistics

def test_holm_matches_a_hand_adjustment():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): x4 = 0.02, x3 = 0.03, x2 = 0.06, x1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, None, 0.03, 0.005]) == pytest.approx([0.03, 0.06, None, 0.06, 0.02])
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    assert holm([0.04, 0.045]) == pytest.approx([0.08, 0.08])  # 0.045 alone would pass; Holm carries 0.08
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([None]) == [None]


def test_mcnemar_is_the_exact_binomial_on_discordant_images():
    # b = 1, c = 9: P(X <= 1) for X ~ Bin(10, 1/2) is (1 + 10) / 1024, doubled
    assert mcnemar(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar(0, 5) == pytest.approx(2 / 32)
    assert mcnemar(3, 3) == pytest.approx(1.0)
    assert mcnemar(0, 0) == 1.0


def test_paired_difference_matches_a_hand_computation():
    # d = 0.10, 0.12, 0.11: mean 0.11, sd 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3)
    p = paired_difference({0: 0.60, 1: 0.62, 2: 0.61, 7: 0.9}, {0: 0.50, 1: 0.50, 2: 0.50, 5: 0.1})
    assert p.seeds == (0, 1, 2) and p.n == 3
    assert (p.mean, p.sd) == (pytest.approx(0.11, abs=1e-9), pytest.approx(0.01, abs=1e-9))
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert p.ci == pytest.approx((0.11 - half, 0.11 + half), abs=1e-9)
    assert p.p == pytest.approx(t2_p(0.11, 0.01), rel=1e-6)
    # d = -0.10, 0.05, 0.20: mean 0.05, sd 0.15
    p = paired_difference({0: 0.4, 1: 0.55, 2: 0.7}, {0: 0.5, 1: 0.5, 2: 0.5})
    assert p.p == pytest.approx(t2_p(0.05, 0.15), rel=1e-6) and p.p > 0.5
    same = paired_difference({0: 0.6, 1: 0.6}, {0: 0.5, 1: 0.5})  # no spread at all: certain
    assert (same.sd, same.p) == (0.0, 0.0)
    one = paired_difference({0: 0.6, 1: 0.7}, {1: 0.5, 2: 0.5})
    assert (one.n, one.mean, one.sd, one.ci, one.p) == (1, pytest.approx(0.2), None, None, None)
    none = paired_difference({0: 0.6}, {1: 0.5})
    assert (none.n, none.mean, none.p) == (0, None, None)
    assert paired_difference({0: float("nan"), 1: 0.6}, {0: 0.5, 1: 0.5}).n == 1  # a NaN metric is no pair


def test_image_test_counts_the_discordant_images_of_each_seed():
    v = {0: [1, 1, 1, 0, 0, 1], 1: [1, 0, 1, 1, 1, 1]}
    p = {0: [1, 0, 0, 0, 1, 1], 1: [1, 1, 0, 0, 0, 0]}
    t = image_test({s: np.array(x, bool) for s, x in v.items()}, {s: np.array(x, bool) for s, x in p.items()})
    # seed 0: only v right on images 1, 2; only p right on image 4 -> (2, 1); seed 1: (4, 1)
    assert t.seeds == (0, 1) and t.images == 6 and t.discordant == ((2, 1), (4, 1))
    # Bin(3): 2 P(X <= 1) = 2 * 4 / 8; Bin(5): 2 * (1 + 5) / 32; pooled 6 vs 2: 2 * (1 + 8 + 28) / 256
    assert t.p_per_seed == pytest.approx((1.0, 12 / 32))
    assert t.p == pytest.approx(2 * (1 + 8 + 28) / 2 ** 8)
    assert t.mean == pytest.approx((1 / 6 + 3 / 6) / 2)
    assert image_test({0: np.ones(3, bool)}, {1: np.ones(3, bool)}) is None


def test_bootstrap_is_deterministic_and_holds_the_test_set_noise():
    constant = np.full((3, 50), 0.2)
    assert bootstrap_ci(constant) == pytest.approx((0.2, 0.2))
    rng = np.random.default_rng(1)
    diff = (rng.random((1, 4000)) < 0.3).astype(float) - (rng.random((1, 4000)) < 0.2).astype(float)
    assert bootstrap_ci(diff) == bootstrap_ci(diff)  # the same bytes on every regeneration
    # one seed: the interval is the images' sampling interval, mean +- 1.96 sd / sqrt(N)
    mean, sd = diff.mean(), diff.std()
    low, high = bootstrap_ci(diff)
    half = 1.96 * sd / math.sqrt(diff.shape[1])
    assert low == pytest.approx(mean - half, abs=0.15 * half) and high == pytest.approx(mean + half, abs=0.15 * half)


def test_evidence_needs_the_difference_to_hold_over_seeds_and_images():
    seeds = paired_difference({0: 0.6, 1: 0.62}, {0: 0.5, 1: 0.5})
    images = image_test({0: np.array([1, 1, 0], bool), 1: np.array([1, 1, 1], bool)},
                        {0: np.array([0, 1, 0], bool), 1: np.array([0, 0, 0], bool)})
    both = evidence(seeds, images)
    assert both.basis == "seeds and images" and both.p == max(seeds.p, images.p)
    assert both.ci == (min(seeds.ci[0], images.ci[0]), max(seeds.ci[1], images.ci[1]))
    assert evidence(seeds, None).p == seeds.p and evidence(seeds, None).ci == seeds.ci
    one = paired_difference({0: 0.6}, {0: 0.5})
    only = image_test({0: np.array([1, 1, 0], bool)}, {0: np.array([0, 1, 0], bool)})
    assert evidence(one, only).basis == "images (one seed)" and evidence(one, only).p == only.p
    assert evidence(one, None).p is None


def test_with_three_seeds_an_interval_excludes_no_difference_only_when_the_seeds_t_test_does_too():
    # Three seeds of 539 test images whose paired differences are +3.2, +6.3 and +1.9 points (the
    # 64 px VGG13 with and without the article's BatchNorm): the bootstrap over seeds x images alone
    # excludes 0, but the seeds' t-test gives p 0.10 - the interval a verdict uses must hold 0 too.
    rng = np.random.default_rng(0)
    n = 539
    parent = {s: rng.random(n) < 0.86 for s in range(3)}
    variant = {}
    for s, gain in enumerate((17, 34, 10)):  # images turned from wrong to right
        v = parent[s].copy()
        v[np.flatnonzero(~v)[:gain]] = True
        variant[s] = v
    seeds = paired_difference({s: variant[s].mean() for s in range(3)}, {s: parent[s].mean() for s in range(3)})
    images = image_test(variant, parent)
    assert images.ci[0] > 0 and images.p < 0.05 and seeds.p > 0.05 and seeds.ci[0] < 0
    both = evidence(seeds, images)
    assert both.p == seeds.p and both.ci[0] == seeds.ci[0] < 0 < both.ci[1]


def test_a_finished_runs_log_from_another_attempt_is_not_drawn_as_its_curve(tmp_path):
    from visualdl import LogWriter
    from ablations.vdl import SCALAR_TAGS

    results = tmp_path / "results.csv"
    append_row(str(results), row("baseline", 0, 0.5))  # finished, 3 epochs done
    runs = data.load_runs(str(results))
    folder = data.run_logdir(runs.iloc[0], str(tmp_path / "logs"))
    os.makedirs(folder)
    with LogWriter(logdir=folder) as w:  # a later attempt, stopped after its first epoch
        for tag in SCALAR_TAGS.values():
            w.add_scalar(tag, 0.5, 1)
    curves, missing = data.load_curves(runs, str(tmp_path / "logs"))
    run_id = runs.iloc[0]["run_id"]
    assert run_id not in curves
    assert missing[run_id].startswith("its VisualDL log holds epoch 1, its results row says 3 finished")


# ---------------------------------------------------------------- claims, by hand

def verdicts(results, logdir):
    """Claim number -> Verdict, through the report's own loading (no figures)."""
    runs = data.load_runs(str(results))
    curves, no_curves = data.load_curves(runs, str(logdir))
    found, not_found = data.load_predictions(runs, str(results))
    rep = report.Report(runs, curves, no_curves, str(results), str(logdir), found, not_found)
    from ablations.report_claims import check_claims
    return {v.claim.number: v for v in check_claims(rep)}


def trick_study(tmp_path, accs, **kw):
    """sigmoid, baseline and the given variants over the seeds of their accuracy tuples."""
    path = tmp_path / "results.csv"
    for name, values in {"sigmoid": (0.10, 0.10, 0.10), "baseline": (0.50, 0.52, 0.54), **accs}.items():
        for seed, acc in enumerate(values):
            append_row(str(path), row(name, seed, acc, **kw))
    return path


@pytest.mark.parametrize("leaky, verdict, why", [
    # d = .10, .11, .10: Holm p = max(2 p_base, p_leaky) tiny; interval [8.9, 11.8] of 48 error points
    # -> [18.5%, 24.5%] of the errors, reaching the 10% that +10 points remove at the least
    ((0.60, 0.63, 0.64), "agree", "significantly better"),
    ((0.40, 0.43, 0.44), "disagree", "significantly worse"),
    # d = .010, .011, .012: significant, but [0.85, 1.35] pts is [1.8%, 2.8%] of the errors, below 10%
    ((0.51, 0.531, 0.552), "disagree", "lies below the 10% the claim implies"),
    # d = -.05, .10, .25: the interval spans no difference and the claimed size
    ((0.45, 0.62, 0.79), "inconclusive", "holds both no difference and the claimed size"),
])
def test_a_claimed_gain_agrees_only_with_direction_and_size(tmp_path, leaky, verdict, why):
    v = verdicts(trick_study(tmp_path, {"leaky_relu": leaky}), tmp_path / "logs")[3]
    assert (v.verdict, v.criterion) == (verdict, "C2") and why in v.why


def test_the_size_scale_is_the_share_of_the_parents_errors(tmp_path):
    v = verdicts(trick_study(tmp_path, {"leaky_relu": (0.51, 0.531, 0.552)}), tmp_path / "logs")[3]
    d = (0.010, 0.011, 0.012)
    half = T_975_2 * statistics.stdev(d) / math.sqrt(3)
    errors = 1 - 0.52
    lo, hi = (0.011 - half) / errors, (0.011 + half) / errors
    assert f"+{100 * 0.011 / errors:.1f}% of the parent's errors [+{100 * lo:.1f}%, +{100 * hi:.1f}%]" in v.measured
    assert "[+1.8%, +2.8%]" in v.measured


def test_a_claim_without_a_test_or_a_run_says_so(tmp_path):
    path = tmp_path / "results.csv"
    for name, acc in (("sigmoid", 0.1), ("baseline", 0.5), ("dropout", 0.7)):
        append_row(str(path), row(name, 0, acc))
    v = verdicts(path, tmp_path / "logs")
    assert v[5].verdict == "not testable here" and "one seed and no per-image predictions" in v[5].why
    assert v[3].verdict == "not measured" and v[3].measured == "leaky_relu not run"
    assert "`python -m ablations.run --variant leaky_relu --dataset synthetic --recipe cpu --epochs 3" in v[3].why


def test_gap_over_a_one_by_one_map_is_not_testable_and_at_two_by_two_it_is(tmp_path):
    accs = {"gap": (0.61, 0.64, 0.64)}
    at32 = verdicts(trick_study(tmp_path / "a", accs, blocks=BLOCKS_32, params=None), tmp_path / "logs")[4]
    assert at32.verdict == "not testable here"
    assert "last stage's map is 1 × 1" in at32.why and "pools nothing" in at32.caveats
    at64 = verdicts(trick_study(tmp_path / "b", accs, blocks=BLOCKS_64, params=None), tmp_path / "logs")[4]
    assert at64.verdict == "agree" and "pools nothing" not in at64.caveats


def test_lr_decay_needs_its_interval_to_support_direction_and_size(tmp_path):
    # The published study's all_tricks seeds: +0.6 [-1.5, +2.7] was once called "agree" with +6.
    published = {"all_tricks": (0.834879, 0.807050, 0.829314), "all_tricks+lrdecay": (0.833024, 0.821892, 0.834879)}
    v = verdicts(trick_study(tmp_path / "a", published), tmp_path / "logs")[8]
    assert (v.verdict, v.criterion) == ("inconclusive", "C2")
    # +6 from 60% removes 15% of the errors: d = .06, .055, .06 from a 61% parent removes ~15% [13.1%, 16.8%]
    clear = {"all_tricks": (0.60, 0.61, 0.62), "all_tricks+lrdecay": (0.66, 0.665, 0.68)}
    assert verdicts(trick_study(tmp_path / "b", clear), tmp_path / "logs")[8].verdict == "agree"


def test_the_ci_next_to_a_verdict_never_reads_minus_zero(tmp_path):
    # The published leaky_relu seeds: the upper bound is -0.05 pts, once printed "[-3.5, -0.0] hurts".
    base, leaky = (0.870130, 0.849722, 0.862709), (0.844156, 0.834879, 0.849722)
    path = trick_study(tmp_path, {"baseline": base, "leaky_relu": leaky})
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    d = [a - b for a, b in zip(leaky, base)]
    half = T_975_2 * statistics.stdev(d) / math.sqrt(3)
    lo, hi = statistics.mean(d) - half, statistics.mean(d) + half
    assert f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" == "[-3.54, -0.05]"
    assert row_of(md_table(md, "### Each trick against its parent"), "variant", "leaky_relu")[
        "95% CI, seeds (pts)"] == "[-3.54, -0.05]"
    assert "-0.0]" not in md and "-0.0," not in md and "+0.0]" not in md


def test_equal_means_over_seeds_read_zero_not_float_noise(tmp_path):
    # The 64 px study's gap and baseline seeds (k / 539 test images): both means are 1500 / 1617, but the
    # float mean of the differences is -1.9e-14 and was printed so, in both tables.
    base = (499 / 539, 501 / 539, 500 / 539)
    gap = (503 / 539, 493 / 539, 504 / 539)
    d = [a - b for a, b in zip(gap, base)]
    assert statistics.mean(d) != 0 and abs(statistics.mean(d)) < 1e-12
    path = trick_study(tmp_path, {"baseline": base, "gap": gap})
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert row_of(md_table(md, "### Each trick against its parent"), "variant", "gap")[
        "Δ top-1 (pts)"] == f"0.0 ± {100 * statistics.stdev(d):.1f}"
    assert "e-1" not in md and "Δ top-1 0.0 pts" in claims_of(md)[4]["we measured"]


def test_a_claim_on_fewer_seeds_than_its_parent_quotes_the_parent_on_the_paired_seeds(tmp_path):
    # dropout finished seed 0 only; the baseline's mean over three seeds (52%) is not what Δ pairs with.
    path = trick_study(tmp_path, {"dropout": (0.60,)})
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    measured = claims_of(md)[5]["we measured"]
    # Δ +10 pts on seed 0 removes 10 / 50 = 20% of the parent's errors there (10 / 48 = 20.8% of its mean's)
    assert "Δ top-1 +10.0 pts" in measured and "+20.0% of the parent's errors" in measured, measured
    assert measured.endswith("; 60.0% vs 50.0%"), measured


def accuracy_study(tmp_path, right: dict, sizes=None, n=100):
    """Classic networks with one seed and per-image predictions: name -> how many of n images it gets right
    (always the first ones, so a network right on more images is right on every image the other is)."""
    path = tmp_path / "results.csv"
    labels = [i % 10 for i in range(n)]
    for name, k in right.items():
        predicted = [y if i < k else (y + 1) % 10 for i, y in enumerate(labels)]
        run_with_predictions(path, classic_row, name, 0, labels, predicted, image_size=(sizes or {}).get(name, 32))
    return path


@pytest.mark.parametrize("right, verdict", [
    ({"lenet": 10, "alexnet": 80, "vgg13": 60, "googlenet": 50}, "agree"),          # b = 20, c = 0
    ({"lenet": 10, "alexnet": 60, "vgg13": 80, "googlenet": 50}, "disagree"),
    ({"lenet": 10, "alexnet": 61, "vgg13": 60, "googlenet": 50}, "inconclusive"),   # b = 1: p = 1
])
def test_alexnet_best_of_the_articles_four_with_a_per_image_test(tmp_path, right, verdict):
    path = accuracy_study(tmp_path, {**right, "vgg13_bn": 95, "vgg19": 90})  # not the article's four: ignored
    v = verdicts(path, tmp_path / "logs")[9]
    assert (v.verdict, v.criterion) == (verdict, "C3")
    assert "vgg13_bn" not in v.measured and "vgg19" not in v.measured


def test_alexnet_at_a_larger_image_size_cannot_be_judged_best(tmp_path):
    path = accuracy_study(tmp_path, {"lenet": 10, "alexnet": 80, "vgg13": 60, "googlenet": 50}, sizes={"alexnet": 64})
    v = verdicts(path, tmp_path / "logs")[9]
    assert v.verdict == "not testable here" and "alexnet ran at 64 px" in v.why


def test_bn_lifts_vgg_is_judged_on_the_articles_bn_placement(tmp_path):
    path = accuracy_study(tmp_path, {"vgg13": 60, "vgg13_bn": 90})
    v = verdicts(path, tmp_path / "logs")[12]
    assert v.verdict == "not measured" and v.measured.startswith("vgg13_bn_article not run; for reference only, "
                                                                 "vgg13_bn (BN after every conv): Δ top-1 +30.0 pts")
    path = accuracy_study(tmp_path / "b", {"vgg13": 60, "vgg13_bn_article": 62})  # b = 2, c = 0: p = 0.5
    assert verdicts(path, tmp_path / "logs")[12].verdict == "inconclusive"
    path = accuracy_study(tmp_path / "c", {"vgg13": 60, "vgg13_bn_article": 75})  # b = 15: p = 2 / 2^15
    v = verdicts(path, tmp_path / "logs")[12]
    assert (v.verdict, v.criterion) == ("agree", "C2") and "images (one seed)" in v.measured


@pytest.mark.parametrize("eval_loss, train_acc, verdict, why", [
    ((1.0, 0.8, 0.9, 1.0), 0.95, "agree", "1 of 1 testable runs overfit"),       # +25% over its minimum
    ((1.0, 0.8, 0.82, 0.85), 0.95, "disagree", "none of 1 testable runs"),       # +6%: below 10%
    ((1.0, 0.9, 0.85, 0.8), 0.95, "not testable here", "no run can show"),       # still falling
    ((1.0, 0.8, 0.9, 1.0), 0.55, "not testable here", "no run can show"),        # underfit: 55% <= 60%
])
def test_vgg_overfits_from_its_eval_loss_curve(tmp_path, eval_loss, train_acc, verdict, why):
    path = tmp_path / "results.csv"
    r = classic_row("vgg13", 0, 0.6, final_train_acc=train_acc, epochs_done=4)
    append_row(str(path), r)
    write_curves(tmp_path / "logs", r["run_id"], list(zip((2.0, 1.5, 1.0, 0.5), eval_loss)))
    v = verdicts(path, tmp_path / "logs")[10]
    assert (v.verdict, v.criterion) == (verdict, "C4") and why in v.why


def test_vgg_overfit_row_shows_the_train_loss_and_how_far_the_run_fitted_its_training_images(tmp_path):
    # A VGG13 still learning (93% train acc) whose eval loss drifts up 6% while its train loss stalls:
    # the verdict is C4's, but the row must show the reader it had not fitted its training images.
    path = tmp_path / "results.csv"
    r = classic_row("vgg13", 0, 0.85, final_train_acc=0.932, final_eval_acc=0.872, epochs_done=4)
    append_row(str(path), r)
    write_curves(tmp_path / "logs", r["run_id"], [(2.0, 1.0), (1.0, 0.8), (0.5, 0.82), (0.6, 0.85)])
    v = verdicts(path, tmp_path / "logs")[10]
    assert v.verdict == "disagree" and v.why == "none of 1 testable runs overfits in 4 epochs"
    assert v.measured == ("seed 0: eval loss 0.800 at epoch 2, 0.850 at 4 (+6%), train loss 1.000 → 0.600 (fell); "
                          "last epoch train acc 93.2%, eval acc 87.2%")


def test_classic_table_lists_each_seeds_best_epoch_not_their_mean(tmp_path):
    path = tmp_path / "results.csv"
    for seed, best in ((0, 3), (1, 2), (2, 2)):
        append_row(str(path), classic_row("googlenet", seed, 0.8, best_epoch=best))
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    line = next(line for line in md.split("## 2. Classic networks")[1].splitlines() if line.startswith("| googlenet"))
    assert "3, 2, 2 of 3" in [cell.strip() for cell in line.split("|")]  # the mean was '2.33333 of 3'


def test_a_sigmoid_net_that_converges_disagrees(tmp_path):
    path = trick_study(tmp_path, {"sigmoid": (0.5, 0.5, 0.5)})
    assert verdicts(path, tmp_path / "logs")[1].verdict == "disagree"


# ---------------------------------------------------------------- the report around the verdicts

def test_predictions_that_do_not_match_their_row_are_left_out_and_named(tmp_path):
    path = tmp_path / "results.csv"
    labels = [i % 10 for i in range(20)]
    good = run_with_predictions(path, row, "baseline", 0, labels, labels)
    other = row("sigmoid", 0, 0.5, test_size=20)
    append_row(str(path), other)
    write_predictions(path, other["run_id"], labels, labels)  # 100% right, the row says 50%
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert good["run_id"] not in md.split("Without usable predictions")[1].split("\n")[0]
    assert ("`synthetic/32px/sigmoid/seed0` (the predictions do not give the row's test accuracy (another attempt "
            "of the run?))") in md


def test_setup_lists_the_model_zoos_deviations_from_the_article(tmp_path, monkeypatch):
    path = trick_study(tmp_path, {})
    monkeypatch.setattr(paddle_cnns, "DEVIATIONS", [("alexnet", "linear logits"), ("lenet", "84 hidden units")])
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert "- **alexnet**: linear logits\n- **lenet**: 84 hidden units" in md
    monkeypatch.setattr(paddle_cnns, "DEVIATIONS", [])
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert "The model zoo lists no deviation from the article's networks." in md


def test_the_deltas_figure_names_image_size_and_epochs(tmp_path):
    done, _ = build(trick_study(tmp_path, {}), tmp_path / "logs", tmp_path / "out")
    assert deltas_title(done["report"]) == "Trick ablation at 32 px, 3 epochs: each variant against its parent"


def test_labels_of_crowded_points_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    points = [{"label": f"network_{i}", "flops": 4.8e8 * (1 + 0.02 * (i % 3)), "acc": 85 + 0.3 * i} for i in range(9)]
    points += [{"label": "far_away", "flops": 1e6, "acc": 20.0}]
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.plot([p["flops"] for p in points], [p["acc"] for p in points], "o")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.12)
    ax.autoscale_view()
    annotations = place_labels(fig, ax, points, "flops")
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = []
    for a in annotations:
        a.get_window_extent(renderer)
        boxes.append(Text.get_window_extent(a, renderer))
    assert len(boxes) == len(points)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (annotations[i].get_text(), annotations[j].get_text())


def test_rows_of_an_earlier_network_are_named_from_their_recorded_revision_without_rebuilding(tmp_path):
    from paddle_cnns import get_spec
    now = get_spec("baseline").revision
    path = tmp_path / "results.csv"
    for seed in (0, 1):  # sigmoid as today's zoo builds it; baseline trained on an earlier revision
        append_row(str(path), row("sigmoid", seed, 0.1, blocks=BLOCKS_32, model_revision=get_spec("sigmoid").revision))
        append_row(str(path), row("baseline", seed, 0.5, blocks=BLOCKS_32, params=4_073_744, model_revision=now - 1))
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert ("1 of 2 configurations ran an earlier version of the network than today's model zoo builds (the "
            "recorded model revision differs from today's): their numbers describe the earlier networks, and "
            f"retraining them measures today's: baseline (revision {now - 1}, today {now}; 4.07 M params "
            "recorded).") in md
    caveats = row_of(md_table(md, "### Each trick against its parent"), "variant", "baseline")["caveats"]
    assert f"trained on an earlier model: baseline (revision {now - 1}, today {now}; 4.07 M params recorded)" in caveats
    assert "sigmoid (" not in caveats.split("trained on an earlier model")[1]


def test_a_decayed_variant_is_compared_with_itself_without_decay_even_when_that_did_not_run(tmp_path):
    path = trick_study(tmp_path, {"all_tricks+lrdecay": (0.6, 0.6, 0.6)})
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    r = row_of(md_table(md, "### Each trick against its parent"), "variant", "all_tricks+lrdecay")
    assert (r["parent"], r["change"], r["verdict"], r["note"]) == (
        "all_tricks", "+lr_decay", "not measured (parent not run)", "all_tricks not run")


def test_the_hint_names_the_data_folder_the_study_was_given(tmp_path):
    path = tmp_path / "results.csv"
    labels = [i % 10 for i in range(20)]
    r = run_with_predictions(path, row, "baseline", 0, labels, labels)
    with open(str(tmp_path / "predictions" / (r["run_id"] + ".json")), "w") as f:
        f.write('{"data_dir": "my data", "split": "test"}\n')
    _, md = build(path, tmp_path / "logs", tmp_path / "out")
    assert "--dataset synthetic --data-dir 'my data' --recipe cpu" in md
