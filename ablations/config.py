"""A run's settings, written once: every name, folder, results column and worker start derives from RunConfig."""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Optional, Tuple


@dataclass(frozen=True)
class Recipe:
    """How a run trains: the named recipe's values after any command-line overrides.

    In a RunConfig, `image_size` is the size the run really uses (the recipe's, raised to the
    model's minimum, or --image-size).
    """
    name: str
    image_size: int
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """Everything one run depends on. Saved as config.json in its checkpoint folder: a run folder
    holding other settings is a different run, and packed workers start from that file."""
    variant: str                         # a registered model or trick variant
    recipe: Recipe
    seed: int = 0
    lr_decay: bool = False
    decay_epochs: Tuple[int, ...] = ()   # epochs after which the LR drops x0.1 (with lr_decay)
    dataset: str = "caltech16"
    data_dir: Optional[str] = None       # where the data is; not part of the run's identity
    augment: bool = False
    max_per_class: Optional[int] = None
    tag: str = ""                        # keeps runs apart that differ in anything the name lacks
    layers: str = "auto"                 # layer implementation asked for: auto, onednn, fast or plain
    amp: bool = False
    stream: bool = False                 # JPEGs decoded per batch (random resized crop) instead of the decoded cache
    data_fingerprint: str = ""           # the data's split lists and class names; set once the data is loaded

    @property
    def name(self) -> str:
        """The label a run goes by in folders, VisualDL and the report: all_tricks+lrdecay~tag."""
        return self.variant + ("+lrdecay" if self.lr_decay else "") + (f"~{self.tag}" if self.tag else "")

    @property
    def run_id(self) -> str:
        """The run's folder under --logdir and --checkpoint-dir: all_tricks+lrdecay/s0/caltech16-32px.

        What tells runs apart comes first: VisualDL's run list shows a run as LOGDIR/run_id cut
        after about 28 characters (VisualDL 2.5.3 at any window width; .ci/visualdl_check.py takes the
        screenshot), so the name and the seed must fit in the first 23 after "logs/"; the dataset
        and image size, the same for most runs one looks at together, come last.
        """
        return f"{self.name}/s{self.seed}/{self.dataset}-{self.recipe.image_size}px"

    def identity(self) -> dict:
        """The settings that make two runs the same run, flat, in results-column order (paths excluded)."""
        recipe = asdict(self.recipe)
        out = {"variant": self.variant, "dataset": self.dataset, "image_size": recipe.pop("image_size"),
               "recipe": recipe.pop("name"), **recipe}
        for f in fields(self):
            if f.name not in ("variant", "recipe", "dataset", "data_dir"):
                out[f.name] = getattr(self, f.name)
        out["decay_epochs"] = list(self.decay_epochs)
        return out

    def to_json(self) -> dict:
        """identity() plus the data folder: what a worker needs to train exactly this run."""
        return {**self.identity(), "data_dir": self.data_dir}

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        """The inverse of to_json."""
        recipe_keys = [f.name for f in fields(Recipe)]
        d = dict(d)
        recipe = Recipe(**{k: d.pop("recipe" if k == "name" else k) for k in recipe_keys})
        d["decay_epochs"] = tuple(d.get("decay_epochs") or ())
        return cls(recipe=recipe, **d)

    def replace(self, **changes) -> "RunConfig":
        """A copy with some settings changed."""
        return replace(self, **changes)

    @classmethod
    def defaults(cls) -> dict:
        """The settings that have a default, with it (what a config.json from before a setting means)."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def identity_columns() -> list:
    """The results columns that identity() fills, in order, derived from the dataclasses."""
    return list(_EXAMPLE.identity())


_EXAMPLE = RunConfig("example", Recipe("example", 1, 1, 1, "sgd", 1.0))


@dataclass(frozen=True)
class Session:
    """Where a command's runs write and how they run; shared by its runs, never part of a run's identity."""
    logdir: str = "logs"
    checkpoint_dir: str = "checkpoints"
    results: str = "results/results.csv"
    device: str = "cpu"
    threads: int = 1
    resume: bool = False
    force: bool = False
    world_size: int = 1                  # data parallelism: processes (devices) that train each run together
    sync_bn: bool = False                # BatchNorm over the global batch (SyncBatchNorm; GPU data parallelism)
    loader_workers: int = 0              # paddle.io.DataLoader processes of a streamed run

    def to_json(self) -> dict:
        """As a plain dict (for a worker's command line)."""
        return asdict(self)

    def replace(self, **changes) -> "Session":
        """A copy with some values changed."""
        return replace(self, **changes)
