"""The article's 12 claims: what each says, how the runs test it, and the verdict with its reason and criterion."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from . import report_ablation as ab
from . import report_stats as st
from .report_caveats import caveats, gap_reason, pools_nothing
from .report_curves import overfit_run
from .report_format import delta, interval, pct, plural, pvalue
from .report_hints import train_missing
from .study import RECIPES

CONVERGE_FACTOR = 2.0   # converges: balanced test accuracy above this many times chance
ARTICLE_CLASSICS = ("lenet", "alexnet", "vgg13", "googlenet")


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    article: str                  # what the article reports
    kind: str                     # not_converges | converges | delta | best_classic | overfits
    variant: str = ""
    parent: str = ""
    points: Optional[float] = None            # the claimed gain, in points
    article_parent: Optional[float] = None    # the article's parent accuracy (%), where it gives one
    reference: str = ""           # a model measured instead when `variant` did not run (shown, not judged)

    @property
    def target(self) -> Optional[float]:
        """The share of the parent's errors the claimed gain removes. Without the article's parent
        accuracy, +X points remove at least X% of any parent's errors (at most 100% were wrong)."""
        if self.points is None:
            return None
        return self.points / (100.0 - (self.article_parent or 0.0))


CLAIMS = [
    Claim(1, "The sigmoid CNN does not converge", "stays at chance", "not_converges", "sigmoid"),
    Claim(2, "BatchNorm after every conv makes it converge (the baseline)", "converges", "converges", "baseline"),
    Claim(3, "LeakyReLU instead of sigmoid", "+10 pts or more", "delta", "leaky_relu", "baseline", 10.0),
    Claim(4, "Global average pooling instead of the FC head", "about +25 pts (its largest gain)", "delta",
          "gap", "baseline", 25.0),
    Claim(5, "Dropout before the classifier", "about +20 pts", "delta", "dropout", "baseline", 20.0),
    Claim(6, "Two 3x3 convs instead of each 5x5", "about +20 pts", "delta", "conv3x3", "baseline", 20.0),
    Claim(7, "ConcatConv (Inception-style) block", "about +25 pts", "delta", "concat_conv", "baseline", 25.0),
    Claim(8, "All tricks: 66% with LR decay, about 60% without", "+6 pts from LR decay", "delta",
          "all_tricks+lrdecay", "all_tricks", 6.0, article_parent=60.0),
    Claim(9, "AlexNet is the best of LeNet, AlexNet, VGG13 and GoogLeNet", "alexnet", "best_classic", "alexnet"),
    Claim(10, "VGG overfits", "eval loss rises while train loss falls", "overfits", "vgg13"),
    Claim(11, "BatchNorm lifts GoogLeNet", "about +8 pts", "delta", "googlenet_bn_article", "googlenet", 8.0,
          reference="googlenet_bn"),
    Claim(12, "BatchNorm lifts VGG", "at least +1 pt", "delta", "vgg13_bn_article", "vgg13", 1.0,
          reference="vgg13_bn"),
]

OVERFIT_RISE = 0.10  # eval loss at the end at least 10% above its minimum

CRITERIA = {
    "C1": f"converges: balanced test accuracy (mean per-class recall) above {CONVERGE_FACTOR:g} × chance "
          "(1 / classes), as the mean over the finished runs; plain accuracy cannot tell, since a network that "
          "always answers the largest class scores that class's share; a configuration whose runs all diverged "
          "did not converge.",
    "C2": f"a claimed gain: direction from the test of the difference (p < {st.ALPHA:g}; Holm-adjusted over the "
          "trick table's comparisons for claims 3-8, a single comparison for 11-12), size on the relative-error "
          "scale: a gain of +X points removes X / (100 − the article's parent accuracy) of the parent's errors, and "
          "at least X% of them when the article gives no parent accuracy (claim 8 gives 60%: +6 pts is 15%), since "
          "our parents leave far less headroom than +20 or +25 points. agree: significantly better and the 95% "
          "interval reaches the claimed share; disagree: significantly worse, or the whole interval below the "
          "claimed share; inconclusive otherwise.",
    "C3": "best of the article's four (LeNet, AlexNet, VGG13, GoogLeNet; not the BN variants or deeper VGGs): the "
          "first by mean test top-1 must beat the second with p < 0.05 (the same test as C2) to agree, and the one "
          "that beat AlexNet must do so with p < 0.05 to disagree; not testable when the first ran at a larger "
          "image size than the others.",
    "C4": f"overfits (plain VGG13, as the article saw it): per run, eval loss in the last epoch at least "
          f"{100 * OVERFIT_RISE:.0f}% above its minimum while train loss fell after that minimum; runs that are "
          "underfit (train acc ≤ eval acc) or whose eval loss is lowest in the last epoch cannot show it (not "
          "testable); agree when every testable run overfits, disagree when none does.",
}


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    measured: str
    verdict: str        # agree | disagree | inconclusive | not testable here | not measured
    why: str
    criterion: str
    caveats: str = ""


def _by_name(rep) -> dict:
    own = rep.cfgs[rep.cfgs["study"] == rep.main_study] if not rep.cfgs.empty else rep.cfgs
    out = {}
    for _, c in own.iterrows():  # the tag is one per study; several sizes: the first
        out.setdefault(c["variant"] + ("+lrdecay" if c["lr_decay"] else ""), c)
    return out


def check_claims(rep) -> list:
    """Each claim measured on the main study's configurations."""
    by_name = _by_name(rep)
    judges = {"converges": _converges, "not_converges": _converges, "delta": _delta,
              "best_classic": _best_classic, "overfits": _overfits}
    return [judges[c.kind](rep, c, by_name) for c in CLAIMS]


def _not_run(rep, claim, names, family) -> Verdict:
    hint = train_missing(rep, rep.main_study, names, family) if rep.studies else ""
    return Verdict(claim, f"{' and '.join(names)} not run", "not measured",
                   f"train {'them' if len(names) > 1 else 'it'}: {hint}" if hint else "", "")


# ---------------------------------------------------------------- converges

def _converges(rep, claim, by_name) -> Verdict:
    cfg = by_name.get(claim.variant)
    if cfg is None:
        return _not_run(rep, claim, [claim.variant], "trick")
    chance = 1.0 / cfg["num_classes"] if st.finite(cfg["num_classes"]) and cfg["num_classes"] > 0 else float("nan")
    epochs = f"in {int(cfg['epochs'])} epochs" if st.finite(cfg["epochs"]) else ""
    if st.finite(cfg["test_balanced_acc"]):
        converged = cfg["test_balanced_acc"] > CONVERGE_FACTOR * chance
        text = f"balanced test acc {pct(cfg['test_balanced_acc'])}% (chance {pct(chance)}%)"
        if st.finite(cfg["best_eval_any"]):
            text += f"; best eval acc {pct(cfg['best_eval_any'])}%"
    elif cfg["finished"]:
        return Verdict(claim, f"{claim.variant}: no balanced test accuracy recorded (older results file)",
                       "not measured", "", "C1")
    elif cfg["diverged"]:
        converged, text = False, "no run finished"
    else:
        return Verdict(claim, f"{claim.variant}: every run failed", "not measured", "", "C1")
    if cfg["diverged"]:
        text += f"; {int(cfg['diverged'])} of {int(cfg['runs'])} runs diverged"
    agree = converged if claim.kind == "converges" else not converged
    why = ("converged" if converged else "did not converge") + (f" {epochs}" if epochs else "")
    return Verdict(claim, text, "agree" if agree else "disagree", why, "C1", "; ".join(caveats(cfg)))


# ---------------------------------------------------------------- claimed gains

def paired_acc(cfg: dict, seeds) -> float:
    """Mean test top-1 over the seeds a difference pairs: a parent may have finished more seeds, and its mean
    over those would not match Δ nor the share of its errors Δ removes."""
    return sum(cfg["by_seed"][s] for s in seeds) / len(seeds)


def describe(ev: st.Evidence, parent: dict, p_label: str, p) -> str:
    """'Δ top-1 -1.8 pts [-3.54, -0.05] (seeds, n=3); -12.9% of the parent's errors [-25.4%, -0.3%]; Holm p 0.24'."""
    parent_acc = paired_acc(parent, ev.seeds.seeds)
    text = f"Δ top-1 {delta(ev.mean)} pts"
    if ev.ci is not None:
        text += f" {interval(ev.ci)}"
    text += f" ({ev.basis}, n={ev.seeds.n})" if ev.basis else f" (n={ev.seeds.n}, no test)"
    share = ab.interval_removed(ev.ci, parent_acc)
    removed = ab.errors_removed(ev.mean, parent_acc)
    if removed is not None:
        text += f"; {delta(removed)}% of the parent's errors" + (f" {interval(share, unit='%')}" if share else "")
    if p is not None:
        text += f"; {p_label} {pvalue(p)}"
    return text


def judge_gain(claim: Claim, ev: st.Evidence, p, parent_acc: float) -> tuple:
    """(verdict, why) of a claimed gain, criterion C2."""
    if ev.seeds.n == 0:
        return "not measured", "no seed where both finished"
    if p is None:
        return "not testable here", "one seed and no per-image predictions: the difference has no test"
    share = ab.interval_removed(ev.ci, parent_acc)
    target = claim.target
    significant = p < st.ALPHA
    if significant and ev.mean < 0:
        return "disagree", "significantly worse"
    if share is not None and share[1] < target:
        return "disagree", (f"the whole interval, {interval(share, unit='%')} of the parent's errors, lies below "
                            f"the {100 * target:.0f}% the claim implies")
    if significant and ev.mean > 0:
        return "agree", f"significantly better, and the interval reaches the claimed {100 * target:.0f}%"
    if ev.ci is not None and (ev.ci[0] > 0 or ev.ci[1] < 0):  # possible with one seed: McNemar vs bootstrap
        return "inconclusive", (f"not significant (p {pvalue(p)}), though the interval excludes no difference; "
                                "it reaches the claimed size")
    return "inconclusive", "the interval holds both no difference and the claimed size"


def _delta(rep, claim, by_name) -> Verdict:
    cfg, parent = by_name.get(claim.variant), by_name.get(claim.parent)
    missing = [n for n, c in ((claim.variant, cfg), (claim.parent, parent)) if c is None]
    if missing:
        verdict = _not_run(rep, claim, missing, "classic" if claim.reference else "trick")
        ref = by_name.get(claim.reference)
        if ref is not None and parent is not None:
            ev = ab.compare(ref, parent)
            if ev.mean is not None:
                measured = (f"{verdict.measured}; for reference only, {claim.reference} (BN after every conv): "
                            + describe(ev, parent, "p", ev.p))
                return Verdict(claim, measured, verdict.verdict, verdict.why, "", "")
        return verdict
    comparison = next((c for c in rep.comparisons if c.study == rep.main_study and c.cfg is not None
                       and c.cfg["name"] == cfg["name"] and c.parent == parent["name"]), None)
    if comparison is not None:
        ev, p, p_label = comparison.evidence, comparison.p_adjusted, "Holm p"
    else:  # a classic pair: one comparison, no family to adjust for
        ev = ab.compare(cfg, parent)
        p, p_label = ev.p, "p"
    if ev.seeds.n == 0:
        return Verdict(claim, f"no seed where both {cfg['name']} and {parent['name']} finished", "not measured",
                       "", "C2", "")
    mine, theirs = paired_acc(cfg, ev.seeds.seeds), paired_acc(parent, ev.seeds.seeds)
    measured = describe(ev, parent, p_label, p)
    bal = st.paired_difference(cfg["balanced_by_seed"], parent["balanced_by_seed"])
    if bal.mean is not None:
        measured += f"; Δ balanced {delta(bal.mean)} pts"
    measured += f"; {pct(mine)}% vs {pct(theirs)}%"
    notes = "; ".join(caveats(cfg, parent, change="+gap" if claim.variant == "gap" else ""))
    if claim.variant == "gap" and pools_nothing(cfg):
        return Verdict(claim, measured, "not testable here", gap_reason(cfg), "C2", notes)
    verdict, why = judge_gain(claim, ev, p, theirs)
    return Verdict(claim, measured, verdict, why, "C2", notes)


# ---------------------------------------------------------------- classics

def _best_classic(rep, claim, by_name) -> Verdict:
    ran = [by_name[n] for n in ARTICLE_CLASSICS if n in by_name and st.finite(by_name[n]["test_acc"])]
    absent = [n for n in ARTICLE_CLASSICS if n not in by_name]
    if claim.variant not in by_name or len(ran) < 2:
        return _not_run(rep, claim, absent or [claim.variant], "classic")
    ranked = sorted(ran, key=lambda c: (-c["test_acc"], c["name"]))
    first, second = ranked[0], ranked[1]
    measured = ", ".join(f"{c['name']} {pct(c['test_acc'])}% @{int(c['image_size'])}px" for c in ranked)
    if absent:
        measured += f" ({', '.join(absent)} not run)"
    notes = "; ".join(caveats(*ranked))
    smaller = [c["name"] for c in ranked[1:] if c["image_size"] < first["image_size"]]
    if smaller:
        why = (f"{first['name']} ran at {int(first['image_size'])} px, {', '.join(smaller)} at less: its lead may be "
               "the larger input")
        return Verdict(claim, measured, "not testable here", why, "C3", notes)
    leads = first["variant"] == claim.variant
    rival = second if leads else by_name[claim.variant]  # alexnet's nearest rival, or alexnet itself
    ev = ab.compare(first, rival)
    if ev.p is None:
        lead = first["test_acc"] - rival["test_acc"]
        return Verdict(claim, measured, "not testable here",
                       f"one seed and no per-image predictions: a {delta(lead)}-pt lead has no test", "C3", notes)
    measured += f"; {first['name']} vs {rival['name']}: p {pvalue(ev.p)}"
    if ev.p >= st.ALPHA:
        return Verdict(claim, measured, "inconclusive", "the first is not significantly ahead", "C3", notes)
    if leads:
        return Verdict(claim, measured, "agree", "alexnet first, significantly ahead of the second", "C3", notes)
    return Verdict(claim, measured, "disagree", f"{first['name']} significantly ahead of alexnet", "C3", notes)


def _overfits(rep, claim, by_name) -> Verdict:
    cfg = by_name.get(claim.variant)
    if cfg is None:
        return _not_run(rep, claim, [claim.variant], "classic")
    runs = rep.runs_of(cfg)
    runs = runs[runs["status"] == "finished"]
    results, texts = [], []
    for _, row in runs.iterrows():
        outcome, text = overfit_run(row, rep.curves.get(row["run_id"]), OVERFIT_RISE)
        results.append(outcome)
        texts.append(f"seed {int(row['seed'])}: {text}")
    testable = [r for r in results if r is not None]
    measured = "; ".join(texts) or "no finished run"
    notes = "; ".join(caveats(cfg))
    if not testable:
        return Verdict(claim, measured, "not testable here", "no run can show overfitting (see the runs)", "C4", notes)
    if all(testable):
        return Verdict(claim, measured, "agree", f"{len(testable)} of {len(testable)} testable runs overfit", "C4",
                       notes)
    if not any(testable):
        epochs = int(runs["epochs_done"].max())
        return Verdict(claim, measured, "disagree", f"none of {len(testable)} testable runs overfits in {epochs} epochs",
                       "C4", notes)
    return Verdict(claim, measured, "inconclusive", f"{sum(testable)} of {len(testable)} testable runs overfit",
                   "C4", notes)


# ---------------------------------------------------------------- section 4

def section(rep, doc):
    """Section 4: each claim, what we measured, the verdict, why, by which criterion, and its caveats."""
    doc.h(2, "4. Against the article")
    if not rep.studies:
        return
    verdicts = check_claims(rep)
    s = rep.studies[rep.main_study]
    seed = RECIPES.get("article") or RECIPES["seed"]  # the article's recipe, under either name
    sizes = sorted({int(v) for v in rep.runs[rep.runs["study"] == rep.main_study]["image_size"].dropna()})
    doc.p(f"The article trained one seed per network at {seed.image_size} px for {seed.epochs} epochs "
          f"(batch {seed.batch_size}, lr {seed.lr:g}); these runs used the {s['recipe']} recipe, "
          f"{', '.join(map(str, sizes))} px, {plural(s['epochs'], 'epoch')}, on {s['dataset']}"
          + (f" (study {rep.main_study}, the one with the most finished runs)" if rep.multi else "")
          + ". Absolute accuracies therefore differ: each claim is judged by the criterion named in its row "
            "(listed below the table), and a claim this design cannot test says so, with the reason.")
    main = rep.runs[(rep.runs["study"] == rep.main_study) & (rep.runs["status"] == "finished")]
    if not any(r in rep.predictions for r in main["run_id"]):
        doc.p("These runs stored no per-image predictions, so the verdicts rest on seed-level statistics alone "
              "(a paired t-test over seeds); comparisons of one seed each have no test here.")
    doc.table(pd.DataFrame([{"#": str(v.claim.number), "the article claims": v.claim.text,
                             "the article": v.claim.article, "we measured": v.measured, "verdict": v.verdict,
                             "why": v.why, "criterion": v.criterion or "–", "caveats": v.caveats}
                            for v in verdicts]))
    doc.p("Criteria (the row's criterion produced its verdict):")
    doc.ul([f"**{key}** {text}" for key, text in CRITERIA.items()])
