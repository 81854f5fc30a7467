"""Importing this package registers every model: classics first, then the trick variants."""
from __future__ import annotations

from . import lenet, alexnet, vgg, nin, googlenet, tricks  # noqa: F401

# Where our networks still differ from the article's, one line each as (which models, what and
# why), for the report's setup section. The code at each place says so in a comment too.
DEVIATIONS: list[tuple[str, str]] = [
    ("alexnet", "linear logits: the article's AlexNet puts a ReLU after its last layer, which "
                "clips every negative logit to 0 and stalls classes whose scores start negative"),
    ("classic networks", "weights start from He-uniform convs and small linear layers (std 0.01), "
                         "LeNet's from Xavier uniform, not from fluid's defaults as in the article: "
                         "with paddle's defaults (the same as fluid's) VGG13-BN diverged at lr 0.01; "
                         "the trick CNN uses fluid's defaults"),
    ("every network with dropout", "dropout scales the kept activations by 1/(1-p) while training "
                                   "(paddle 2's default); fluid's default, downgrade_in_infer, "
                                   "scales by 1-p at inference instead: the same expected output, "
                                   "but the next layer sees 1/(1-p) times larger inputs in training"),
]
