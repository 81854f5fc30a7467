"""paddle-cnns: the classic CNNs and the article's trick-CNN family for PaddlePaddle dygraph."""
# Pillow before paddle: paddle 2.6 loads its own zlib, and a Pillow first imported after it fails
# on every PNG ("codec configuration error"; JPEGs are unaffected).
import PIL.Image  # noqa: F401

from .errors import CNNsError, DataError, UsageError
from .models import DEVIATIONS  # importing the models package fills the registry
from .models.tricks import PARENTS, VARIANTS, Tricks
from .registry import ModelSpec, create_model, get_spec, list_models

__all__ = ["CNNsError", "DataError", "UsageError", "Tricks", "VARIANTS", "PARENTS", "DEVIATIONS",
           "ModelSpec", "create_model", "get_spec", "list_models"]
