"""The ablation study: named variants, the CLI, VisualDL logging, results, report and benchmarks."""
import warnings

from . import cli

# Before anything imports paddle: every entry point and worker is `python -m ablations.something`,
# so this line runs first in all of them (paddle reads its flags when it is imported).
cli.paddle_environment("library")

# paddle warns about a missing ccache on every import (it only matters when compiling custom
# C++ ops, which we never do); keep the CLI's first lines for what the user asked about.
warnings.filterwarnings("ignore", message="No ccache found")
# paddle 2.6+ BatchNorm always tracks running statistics in training and says so on every
# forward; it is how we use it.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
