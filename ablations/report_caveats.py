"""Design caveats the runs reveal about themselves, printed beside the verdicts they affect."""
from __future__ import annotations

from .report_format import plural


def map_size(cfg) -> str:
    """'1 × 1': the spatial size of the last conv stage's output, from the recorded per-block shapes."""
    last = cfg["last_map"]
    return " × ".join(map(str, last)) if last else ""


def pools_nothing(cfg) -> bool:
    """Global average pooling over a 1 x 1 map averages one position: it pools nothing."""
    return bool(cfg["last_map"]) and tuple(cfg["last_map"]) == (1, 1)


def gap_reason(cfg) -> str:
    return (f"at {int(cfg['image_size'])} px the last stage's map is {map_size(cfg)}: global average pooling "
            "averages a single position, so this comparison only removes the head's 1024-unit hidden layer")


def earlier(cfg) -> str:
    """'revision 1, today 2; 4.07 M params recorded': how a configuration's model changed since."""
    from .report_format import si
    parts = []
    if cfg["old_revisions"]:
        parts.append(f"revision {', '.join(map(str, cfg['old_revisions']))}, today {cfg['revision_today']}")
    recorded = ", ".join(si(p) for p in cfg["params_recorded"])
    if recorded:
        parts.append(f"{recorded} params recorded")
    return "; ".join(parts)


def caveats(*cfgs, change: str = "") -> list:
    """One line per kind of caveat, naming each configuration it concerns, e.g.
    'not converged (best epoch = last): gap 2/3, baseline 2/3'. The 1 x 1 map matters only to a
    comparison whose change includes +gap."""
    kinds = {"not converged (best epoch = last)": [], "underfit (train acc ≤ eval acc)": [],
             "trained on an earlier model": [], "design": []}
    seen = set()
    for cfg in cfgs:
        if cfg is None or cfg["name"] in seen:
            continue
        seen.add(cfg["name"])
        n = int(cfg["finished"])
        if cfg["not_converged"]:
            kinds["not converged (best epoch = last)"].append(f"{cfg['name']} {cfg['not_converged']}/{n}")
        if cfg["underfit"]:
            kinds["underfit (train acc ≤ eval acc)"].append(f"{cfg['name']} {cfg['underfit']}/{n}")
        if cfg["earlier_model"]:
            kinds["trained on an earlier model"].append(f"{cfg['name']} ({earlier(cfg)})")
        tricks = cfg["tricks"] or {}
        if tricks.get("gap") and pools_nothing(cfg) and "+gap" in change:
            kinds["design"].append(f"{cfg['name']}: GAP over a {map_size(cfg)} map pools nothing")
    return [f"{kind}: {', '.join(items)}" if kind != "design" else "; ".join(items)
            for kind, items in kinds.items() if items]


def stage_line(cfgs) -> str:
    """The trick CNN's stage sizes at each image size it ran at, from one configuration per size."""
    by_size = {}
    for _, c in cfgs.iterrows():
        if c["family"] == "trick" and c["stages"] and int(c["image_size"]) not in by_size:
            by_size[int(c["image_size"])] = [(n, s) for n, s in c["stages"] if len(s) == 3]
    parts = []
    for size, stages in sorted(by_size.items()):
        maps = ", ".join(f"{n} {s[1]}×{s[2]}" for n, s in stages)
        parts.append(f"at {size} px: {maps}")
    return "; ".join(parts)


def fit_counts(cfgs) -> tuple:
    """(runs not converged, runs underfit, finished runs) over all configurations."""
    if cfgs.empty:
        return 0, 0, 0
    return int(cfgs["not_converged"].sum()), int(cfgs["underfit"].sum()), int(cfgs["finished"].sum())


def fit_sentence(cfgs) -> str:
    nc, uf, n = fit_counts(cfgs)
    if not n:
        return ""
    return (f"Of the {plural(n, 'finished run')}, {nc} had their best eval accuracy in the last epoch (not converged: "
            f"longer training could change the ranking) and {uf} ended with train accuracy no higher than eval "
            "accuracy (underfit: train accuracy is a running mean over the epoch with dropout on, so a network "
            "that has fit its training images scores clearly above its eval accuracy).")
