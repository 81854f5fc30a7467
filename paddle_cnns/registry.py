"""The model registry: every network of the study is built by name through create_model.

The model modules fill it when they are imported; paddle_cnns/__init__ imports them (through
paddle_cnns.models), so importing anything from paddle_cnns gives a full registry, and this
module imports no model module back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import paddle
import paddle.nn as nn

from . import impl
from .errors import UsageError
from .layers import init_scope


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Layer]   # builder(num_classes, in_channels, image_size, **options)
    min_size: int                      # smallest square input (px) every layer has output for
    family: str                        # "classic" or "trick"
    init: str = "he"                   # weight initialisation scheme (layers.weight_initializer)
    summary: str = ""                  # one line for listings and the report
    options: dict = field(default_factory=dict)  # fixed keyword arguments for the builder
    # Bumped whenever the network or its initialisation changes, so results rows (which record
    # it) trained on an earlier version can be told apart from today's model.
    revision: int = 1


MODELS: dict[str, ModelSpec] = {}
# Functions that turn a name outside MODELS into a spec (families with open-ended names, such
# as ad-hoc trick sets 'tricks-batch_norm+gap'); None means "not mine".
RESOLVERS: list[Callable[[str], ModelSpec | None]] = []


def register(spec: ModelSpec) -> ModelSpec:
    """Add `spec` to MODELS under its name; a name can be registered once."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def register_resolver(fn):
    """Add a resolver for open-ended names (see RESOLVERS); usable as a decorator."""
    RESOLVERS.append(fn)
    return fn


def get_spec(name: str) -> ModelSpec:
    """The spec registered (or resolved) under `name`; UsageError listing the known names if none."""
    if name in MODELS:
        return MODELS[name]
    for resolve in RESOLVERS:
        spec = resolve(name)
        if spec is not None:
            return spec
    raise UsageError(f"unknown model {name!r}; known: {', '.join(list_models())}"
                     " (or an ad-hoc trick set such as tricks-batch_norm+gap)")


def list_models(family: str | None = None) -> list[str]:
    """Registered names, classic networks first, then the trick variants in study order."""
    return [n for n, s in MODELS.items() if family is None or s.family == family]


def create_model(name: str, num_classes: int = 16, in_channels: int = 3, image_size: int = 224,
                 layers: str = "auto", **options) -> nn.Layer:
    """Build a registered model for `num_classes` classes and square `image_size` inputs.

    `layers` picks the conv and max-pool implementation (paddle_cnns.impl.KINDS): "auto" is the
    fastest that works on the current device; `model.layers` records what was used.
    """
    spec = get_spec(name)
    for arg, value, low in (("num_classes", num_classes, 2), ("in_channels", in_channels, 1),
                            ("image_size", image_size, 1)):
        if not isinstance(value, int) or value < low:
            raise UsageError(f"{arg} must be an integer >= {low}, got {value!r}")
    if image_size < spec.min_size:
        raise UsageError(f"model {name!r} needs image_size >= {spec.min_size} px, got {image_size}",
                         fix="image_size", minimum=spec.min_size)
    # Fresh parameter names (conv2d_0.w_0, ...) for every model, whatever was built before in
    # this process: optimizer checkpoints are keyed by these names, so a rebuilt model must
    # get the same ones to resume.
    with paddle.utils.unique_name.guard(), init_scope(spec.init):
        with impl.building_with(layers) as kind:
            model = spec.builder(num_classes=num_classes, in_channels=in_channels,
                                 image_size=image_size, **{**spec.options, **options})
    model.model_name, model.layers = spec.name, kind
    return model
