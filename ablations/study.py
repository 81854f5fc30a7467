"""What the study trains: recipes, variant groups and image sizes per model."""
from __future__ import annotations

from dataclasses import replace

from paddle_cnns import VARIANTS, get_spec, list_models
from paddle_cnns.data import STREAMABLE, decoded_bytes
from paddle_cnns.engine import default_decay_epochs
from paddle_cnns.errors import UsageError

from .config import Recipe


RECIPES = {
    # The article's recipe (the AI Studio article on classic CNNs and tricks this study
    # reproduces): 224 px, 60 epochs, batch 32, Momentum 0.9, lr 0.001. A GPU job.
    "article": Recipe("article", image_size=224, epochs=60, batch_size=32, optimizer="momentum", lr=0.001),
    # A recipe for a 2-core CPU, chosen so the whole study (one seed) fits in about an hour:
    # 32 px (AlexNet and NiN need more: see image_size_for), batch 64, 5 epochs. lr 0.01
    # because 5 epochs at the article's 0.001 leave even the BatchNorm nets barely trained.
    "cpu": Recipe("cpu", image_size=32, epochs=5, batch_size=64, optimizer="momentum", lr=0.01),
    # The CPU study that can test the article's claims (scripts/study64.sh): at 64 px every stage of
    # the trick CNN keeps at least a 2x2 map (at 32 px stage 6 sees 1x1, so GAP only drops a hidden
    # layer), the article's batch 32, and 15 epochs, long enough for the baseline to fit its training
    # images and start overfitting, the regime where dropout and GAP can show (checked by a pilot
    # run; see the README). lr 0.01: the article's 0.001 is for 60 epochs.
    "cpu64": Recipe("cpu64", image_size=64, epochs=15, batch_size=32, optimizer="momentum", lr=0.01),
    # The ImageNet GoogLeNet-BN write-up's set-up (train --variant googlenet_bn on an ImageNet-style
    # folder, data parallel on several GPUs): 224 px, Momentum 0.9 with piecewise decay, random
    # resized crop + flip + small rotation, streamed from the JPEGs, a checkpoint every epoch.
    # Its Adam arm: --optimizer adam --lr 0.001 --tag adam. The values are PaddleClas' usual
    # ImageNet ones (lr 0.1 for a global batch of 256, weight decay 1e-4, 90 epochs): the
    # write-up's own numbers are not in our sources.
    "imagenet": Recipe("imagenet", image_size=224, epochs=90, batch_size=256, optimizer="momentum", lr=0.1,
                       weight_decay=1e-4),
}
# Flags a recipe turns on (the command line can only add to them): the imagenet recipe decays
# its LR (x0.1 at 50% and 75% of the epochs, or --decay-epochs), augments and streams.
RECIPE_FLAGS = {"imagenet": {"lr_decay": True, "augment": True, "cache": "off"}}
# Old recipe names that still work, with a warning: 'seed' read too easily as related to --seed.
DEPRECATED_RECIPES = {"seed": "article"}


def recipe_names() -> list[str]:
    """The names --recipe takes (deprecated aliases left out)."""
    return ["auto", *RECIPES]


def deprecation(name: str) -> str | None:
    """What to say when a deprecated recipe name is used, or None."""
    new = DEPRECATED_RECIPES.get(name)
    return None if new is None else (f"--recipe {name} is deprecated (renamed to '{new}', the article's recipe); "
                                     f"use --recipe {new}")


def pick_recipe(name: str, on_gpu: bool) -> Recipe:
    """'auto' is the article's recipe on a GPU and the CPU recipe elsewhere; deprecated names map to the new."""
    name = DEPRECATED_RECIPES.get(name, name)
    if name == "auto":
        name = "article" if on_gpu else "cpu"
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; known: {', '.join(recipe_names())}")
    return RECIPES[name]


def override(recipe: Recipe, **values) -> Recipe:
    """The recipe with every non-None value replacing its field (command-line overrides)."""
    return replace(recipe, **{k: v for k, v in values.items() if v is not None})


TRICKS = list(VARIANTS)


def classics() -> list[str]:
    return list_models("classic")


GROUPS = ("all", "tricks", "classics")


def expand(names: list[str], lr_decay: bool) -> list[tuple[str, bool]]:
    """Variant names or groups -> (model name, lr_decay) pairs, each once, in study order.

    The groups 'all' and 'tricks' also train all_tricks with the other --lr-decay setting:
    the article reports all-tricks with and without LR decay (66% vs ~60%), and the report
    checks that claim.
    """
    runs: list[tuple[str, bool]] = []
    for name in names:
        if name in ("all", "classics"):
            runs += [(m, lr_decay) for m in classics()]
        if name in ("all", "tricks"):
            runs += [(v, lr_decay) for v in TRICKS] + [("all_tricks", not lr_decay)]
        if name not in GROUPS:
            runs.append((get_spec(name).name, lr_decay))  # validates: unknown -> UsageError
    return list(dict.fromkeys(runs))


def image_size_for(model: str, requested: int | None, recipe: Recipe) -> int:
    """The run's image size: an explicit --image-size must fit the model (else an error);
    the recipe's size is raised to the model's minimum, rounded up to a multiple of 32
    (the CPU recipe's 32 px becomes 64 for AlexNet, whose minimum is 63, and 96 for NiN, 67)."""
    spec = get_spec(model)
    if requested is not None:
        if requested < spec.min_size:
            raise UsageError(f"--image-size {requested} is too small for {model} "
                             f"(it needs at least {spec.min_size} px)")
        return requested
    if recipe.image_size >= spec.min_size:
        return recipe.image_size
    return -(-spec.min_size // 32) * 32


def decay_epochs_for(epochs: int, lr_decay: bool, decay_epochs: tuple[int, ...] | None) -> tuple[int, ...]:
    if not lr_decay:
        return ()
    return tuple(decay_epochs) if decay_epochs else default_decay_epochs(epochs)


def streams(cache: str | None, cache_limit_gib: float, dataset: str, data_dir: str | None, image_size: int,
            max_per_class: int | None) -> bool:
    """Whether a run reads its JPEGs per batch: cache 'off', or 'auto' (None) and a decoded cache
    over the limit (counted from the file names; ImageNet at 224 px would take ~190 GB)."""
    if cache == "off":
        return True
    if cache == "on" or dataset not in STREAMABLE:
        return False
    size = decoded_bytes(dataset, data_dir, image_size, max_per_class)
    return size is not None and size > cache_limit_gib * 2**30
