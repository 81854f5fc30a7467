"""Importing this package registers every model: classics first, then the trick variants."""
from . import lenet, alexnet, vgg, nin, googlenet, tricks  # noqa: F401
