"""PyTorch mirrors of our paddle models, for the benchmark only, generated from the paddle layer tree.

describe(paddle_model) walks the model we train and writes each layer as a plain dict (type and
hyper-parameters); build(spec) turns that dict into torch modules. The mirror therefore has the
same layers, shapes and parameter count as the paddle model by construction (build checks the
count), and cannot drift when a model changes. This module imports neither framework at the top:
describe runs in a paddle process, build in a torch-only benchmark worker
(`python -m ablations.bench.torch_models --worker`, started by the train benchmark).
"""
import sys
import time

from . import common


# ---------------------------------------------------------------- paddle side

def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(t) for t in v]


def describe(layer) -> dict:
    """A JSON-able description of a paddle layer tree that build() can rebuild in torch."""
    import paddle.nn as nn

    from paddle_cnns.models.base import BlockNet
    from paddle_cnns.models.googlenet import AuxHead, GoogLeNet, Inception
    from paddle_cnns.models.tricks import ConcatConv

    def children(module):
        return [describe(child) for _, child in module.named_children()]

    spec = _describe_leaf(layer, nn)
    if spec is None:
        if isinstance(layer, (Inception, ConcatConv)):
            # Four branches on the same input, concatenated on channels (their forward).
            spec = {"type": "concat", "children": children(layer)}
        elif isinstance(layer, GoogLeNet) and layer.aux_logits:
            spec = {"type": "googlenet_aux", "blocks": describe(layer.blocks),
                    "aux1": describe(layer.aux1), "aux2": describe(layer.aux2)}
        elif isinstance(layer, (nn.Sequential, BlockNet, AuxHead)):
            # BlockNet runs its blocks in order; AuxHead is pool -> conv -> fc.
            spec = {"type": "sequential", "children": children(layer)}
        else:
            raise TypeError(f"no torch mirror for paddle layer {type(layer).__name__}; "
                            "add it to ablations/bench/torch_models.py")
    # Trainable parameters only: paddle counts BatchNorm's running statistics as parameters,
    # torch keeps them as buffers.
    spec["params"] = sum(int(p.size) for p in layer.parameters() if not p.stop_gradient)
    return spec


def _describe_leaf(layer, nn):
    if isinstance(layer, nn.Conv2D):
        if layer._data_format != "NCHW" or isinstance(layer._padding, str):
            raise TypeError("only NCHW convs with numeric padding have a torch mirror")
        cout, cin_per_group, kh, kw = layer.weight.shape
        return {"type": "conv", "in": cin_per_group * layer._groups, "out": cout, "kernel": [kh, kw],
                "stride": _pair(layer._stride), "padding": _pair(layer._padding),
                "dilation": _pair(layer._dilation), "groups": layer._groups, "bias": layer.bias is not None}
    if isinstance(layer, nn.BatchNorm2D):
        # paddle's momentum weighs the old running value, torch's the new batch statistic.
        return {"type": "batch_norm", "features": layer.weight.shape[0], "eps": float(layer._epsilon),
                "momentum": 1.0 - float(layer._momentum)}
    if isinstance(layer, nn.Linear):
        return {"type": "linear", "in": layer.weight.shape[0], "out": layer.weight.shape[1],
                "bias": layer.bias is not None}
    if isinstance(layer, nn.MaxPool2D):
        k = _pair(layer.ksize)
        return {"type": "max_pool", "kernel": k, "stride": _pair(layer.stride or k),
                "padding": _pair(layer.padding), "ceil_mode": bool(layer.ceil_mode)}
    if isinstance(layer, nn.AvgPool2D):
        k = _pair(layer.ksize)
        return {"type": "avg_pool", "kernel": k, "stride": _pair(layer.stride or k),
                "padding": _pair(layer.padding), "ceil_mode": bool(layer.ceil_mode),
                "count_include_pad": not layer.exclusive}
    if isinstance(layer, nn.AdaptiveAvgPool2D):
        return {"type": "adaptive_avg_pool", "size": _pair(layer._output_size)}
    if isinstance(layer, nn.ReLU):
        return {"type": "relu"}
    if isinstance(layer, nn.Sigmoid):
        return {"type": "sigmoid"}
    if isinstance(layer, nn.LeakyReLU):
        return {"type": "leaky_relu", "slope": float(layer._negative_slope)}
    if isinstance(layer, nn.Dropout):
        return {"type": "dropout", "p": float(layer.p)}
    if isinstance(layer, nn.Flatten):
        return {"type": "flatten", "start": layer.start_axis, "stop": layer.stop_axis}
    return None


# ---------------------------------------------------------------- torch side

def build(spec: dict):
    """The torch module described by `spec`; raises if its parameter count differs from paddle's."""
    module = _build(spec)
    n = sum(p.numel() for p in module.parameters())
    if n != spec["params"]:
        raise AssertionError(f"torch mirror has {n:,} parameters, the paddle model {spec['params']:,}")
    return module


def _build(spec: dict):
    import torch
    import torch.nn as tnn

    class Concat(tnn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = tnn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([b(x) for b in self.branches], dim=1)

    class GoogLeNetAux(tnn.Module):
        """GoogLeNet with auxiliary heads after 4a and 4d in training, as paddle_cnns' forward."""

        def __init__(self, blocks, aux1, aux2):
            super().__init__()
            self.blocks, self.aux1, self.aux2 = blocks, aux1, aux2

        def forward(self, x):
            if not self.training:
                return self.blocks(x)
            b1, b2, b3, b4, b5, head = self.blocks
            x = b3(b2(b1(x)))
            aux = []
            for i, layer in enumerate(b4):
                x = layer(x)
                if i == 0:
                    aux.append(self.aux1(x))
                elif i == 3:
                    aux.append(self.aux2(x))
            return (head(b5(x)), *aux)

    t = spec["type"]
    if t == "conv":
        return tnn.Conv2d(spec["in"], spec["out"], spec["kernel"], spec["stride"], spec["padding"],
                          spec["dilation"], spec["groups"], bias=spec["bias"])
    if t == "batch_norm":
        return tnn.BatchNorm2d(spec["features"], eps=spec["eps"], momentum=spec["momentum"])
    if t == "linear":
        return tnn.Linear(spec["in"], spec["out"], bias=spec["bias"])
    if t == "max_pool":
        return tnn.MaxPool2d(spec["kernel"], spec["stride"], spec["padding"], ceil_mode=spec["ceil_mode"])
    if t == "avg_pool":
        return tnn.AvgPool2d(spec["kernel"], spec["stride"], spec["padding"], ceil_mode=spec["ceil_mode"],
                             count_include_pad=spec["count_include_pad"])
    if t == "adaptive_avg_pool":
        return tnn.AdaptiveAvgPool2d(spec["size"])
    if t == "relu":
        return tnn.ReLU()
    if t == "sigmoid":
        return tnn.Sigmoid()
    if t == "leaky_relu":
        return tnn.LeakyReLU(spec["slope"])
    if t == "dropout":
        return tnn.Dropout(spec["p"])
    if t == "flatten":
        return tnn.Flatten(spec["start"], spec["stop"])
    if t == "sequential":
        return tnn.Sequential(*[_build(c) for c in spec["children"]])
    if t == "concat":
        return Concat([_build(c) for c in spec["children"]])
    if t == "googlenet_aux":
        return GoogLeNetAux(_build(spec["blocks"]), _build(spec["aux1"]), _build(spec["aux2"]))
    raise ValueError(f"unknown layer type {t!r} in a model description")


# ---------------------------------------------------------------- torch worker


class TorchWorker:
    def setup(self, spec, px, batch, threads):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.model = build(spec)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.001, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.randn(batch, 3, px, px)
        self.y = torch.randint(0, 16, (batch,))
        return {"torch": torch.__version__}

    def run(self, system, steps):
        import torch

        start = time.perf_counter()
        if system == "torch":
            self.model.train()
            for _ in range(steps):
                out = self.model(self.x)
                logits = out[0] if isinstance(out, tuple) else out
                self.opt.zero_grad(set_to_none=True)
                self.loss(logits, self.y).backward()
                self.opt.step()
        else:  # torch_eval
            self.model.eval()
            with torch.no_grad():
                for _ in range(steps):
                    self.model(self.x).argmax(1)
        return time.perf_counter() - start


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    w = TorchWorker()
    common.serve({"setup": lambda **a: w.setup(**a), "run": lambda **a: {"seconds": w.run(**a)},
                  "rss": lambda: {"peak_rss_mb": common.peak_rss_mb()}})
