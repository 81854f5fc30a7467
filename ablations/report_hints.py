"""Commands the report prints for runs a study lacks: runnable as printed, landing in the same study."""
from __future__ import annotations

from collections import Counter

from paddle_cnns.errors import CNNsError

from .report_format import missing, num
from .study import RECIPES, decay_epochs_for, image_size_for

# study setting -> (flag, the Recipe field it overrides)
RECIPE_FLAGS = (("epochs", "--epochs"), ("batch_size", "--batch-size"), ("optimizer", "--optimizer"),
                ("lr", "--lr"), ("momentum", "--momentum"), ("weight_decay", "--weight-decay"))


def _same(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def study_size(rep, study: str):
    """The image size the study asked for with --image-size (the size of its runs that the recipe
    alone would have run at another size), or None when it used the recipe's."""
    recipe = RECIPES.get(rep.studies[study]["recipe"])
    if recipe is None:
        return None
    asked = Counter()
    for variant, size in zip(*(rep.runs.loc[rep.runs["study"] == study, c] for c in ("variant", "image_size"))):
        try:
            if not missing(size) and int(size) != image_size_for(variant, None, recipe):
                asked[int(size)] += 1
        except CNNsError:  # a model this checkout no longer has
            continue
    return asked.most_common(1)[0][0] if asked else None


def _fits(name: str, size: int) -> bool:
    try:
        image_size_for(name, size, next(iter(RECIPES.values())))  # an explicit size: the recipe is not read
        return True
    except CNNsError:
        return False


def run_command(rep, study: str, names: list, family: str, lr_decay: bool = False, size=None) -> str:
    """`python -m ablations.run ...` training `names` with the study's data, recipe, seeds and stores."""
    s = rep.studies[study]
    args = ["python -m ablations.run", "--variant" if len(names) == 1 else "--variants", ",".join(names)]
    if s["dataset"] != "caltech16":
        args += ["--dataset", str(s["dataset"])]
    data_dir = rep.data_dirs.get(study)
    if data_dir:
        args += ["--data-dir", data_dir]
    recipe = RECIPES.get(s["recipe"])
    args += ["--recipe", str(s["recipe"])]
    for field, flag in RECIPE_FLAGS:
        if not missing(s[field]) and (recipe is None or not _same(s[field], getattr(recipe, field))):
            args += [flag, num(s[field])]
    if size is not None:
        args += ["--image-size", str(size)]
    if s["augment"] is True:
        args.append("--augment")
    if not missing(s["max_per_class"]):
        args += ["--max-per-class", num(s["max_per_class"])]
    if s["tag"]:
        args += ["--tag", str(s["tag"])]
    runs = rep.runs[(rep.runs["study"] == study) & (rep.runs["family"] == family)]
    seeds = sorted({int(x) for x in runs["seed"].dropna()}) or sorted({int(x) for x in rep.runs["seed"].dropna()})
    if len(seeds) == 1:
        args += ["--seed", str(seeds[0])]
    elif seeds:
        args += ["--seeds", ",".join(map(str, seeds))]
    if lr_decay:
        args.append("--lr-decay")
        decayed = [tuple(e) for e in runs["decay_epochs"] if e]
        used = Counter(decayed).most_common(1)[0][0] if decayed else ()
        if used and used != tuple(decay_epochs_for(int(s["epochs"]), True, None)):
            args += ["--decay-epochs", ",".join(map(str, used))]
    args += ["--results", rep.results_path, "--logdir", rep.logdir]
    return " ".join(args[:1] + [_quote(a) for a in args[1:]])


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(ch in arg for ch in " '\"$&;|<>*?()") else arg


def train_missing(rep, study: str, names: list, family: str) -> str:
    """The commands that train `names` into the study: all_tricks+lrdecay via --lr-decay, and models
    too large for the study's --image-size at their own minimum size (as the study's run would fail)."""
    size = study_size(rep, study)
    groups = {}
    for n in names:
        base, decay = n.split("+lrdecay")[0], "+lrdecay" in n
        fits = size is not None and _fits(base, size)
        groups.setdefault((decay, size if fits else None), []).append(base)
    commands = [run_command(rep, study, group, family, lr_decay=decay, size=flag)
                for (decay, flag), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is None))]
    return "; ".join(f"`{c}`" for c in commands)
