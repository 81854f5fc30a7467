"""The ablation study: named variants, the CLI, VisualDL logging, results, report and benchmarks."""
import warnings

# paddle warns about a missing ccache on every import (it only matters when compiling custom
# C++ ops, which we never do); keep the CLI's first lines for what the user asked about.
warnings.filterwarnings("ignore", message="No ccache found")
