"""Exporting a trained model: a Paddle Inference model (paddle.jit.save) and ONNX (paddle2onnx),
and running both back, so an export can be checked against the dygraph model it came from."""
from __future__ import annotations

import contextlib
import inspect
import os
import sys

import numpy as np
import paddle

from .errors import CNNsError

PREFIX = "inference"  # Paddle Inference / FastDeploy's usual names: inference.json|pdmodel + .pdiparams
ONNX_FILE = "model.onnx"
ONNX_OPSET = 13
INPUT_NAME = "x"


class MaxLeakyReLU(paddle.nn.Layer):
    """leaky_relu(x) = max(x, slope * x), exactly, for 0 <= slope <= 1: two plain ops instead of one."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x):
        """LeakyReLU as max(x, slope * x): the same numbers, ops every exporter keeps."""
        return paddle.maximum(x, x * self.slope)


@contextlib.contextmanager
def composite_leaky_relu(model):
    """Swap every LeakyReLU layer for MaxLeakyReLU inside the block, and back after it.

    Paddle Inference 3.3.1 crashes (SIGSEGV in conv_activation_mkldnn_fuse_pass, its default CPU
    oneDNN passes) on conv + leaky_relu: the fused op reads the slope as a float, paddle 3 stores
    it as a double. maximum and scale are not fused that way, and give the same numbers.
    """
    swapped = []
    for parent in [model, *model.sublayers()]:
        for key, child in list(parent._sub_layers.items()):
            if isinstance(child, paddle.nn.LeakyReLU) and 0 <= child._negative_slope <= 1:
                parent._sub_layers[key] = MaxLeakyReLU(child._negative_slope)
                swapped.append((parent, key, child))
    try:
        yield len(swapped)
    finally:
        for parent, key, child in swapped:
            parent._sub_layers[key] = child


def save_inference_model(model, in_channels: int, image_size: int, out_dir: str, composite: bool = True) -> dict:
    """paddle.jit.save the eval-mode forward pass (any batch size); returns its model and params files.

    Paddle 3 writes the program as inference.json (PIR), paddle 2.6 as inference.pdmodel.
    Layers the eval forward pass does not use (GoogLeNet's auxiliary heads) are left out.
    composite: LeakyReLU as max(x, slope x) (see composite_leaky_relu); False keeps the
    leaky_relu op (for ONNX, where it becomes the standard LeakyRelu node).
    """
    model.eval()
    spec = [paddle.static.InputSpec([None, in_channels, image_size, image_size], "float32", INPUT_NAME)]
    prefix = os.path.join(out_dir, PREFIX)
    swap = composite_leaky_relu(model) if composite else contextlib.nullcontext()
    with swap:
        paddle.jit.save(model, prefix, input_spec=spec)
    for ext in (".json", ".pdmodel"):
        if os.path.isfile(prefix + ext):
            return {"model": prefix + ext, "params": prefix + ".pdiparams"}
    raise CNNsError(f"paddle.jit.save wrote no program file in {out_dir}")


def paddle_inference_logits(files: dict, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a saved inference model with paddle.inference (CPU) on x [N, C, S, S]."""
    config = paddle.inference.Config(files["model"], files["params"])
    config.disable_gpu()
    config.disable_glog_info()  # one log line per optimisation pass otherwise
    config.set_cpu_math_library_num_threads(threads)
    predictor = paddle.inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(x.shape))
    handle.copy_from_cpu(np.ascontiguousarray(x, dtype=np.float32))
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def leaky_relu_slopes(model) -> list[float]:
    """The distinct negative slopes of the model's LeakyReLU layers."""
    slopes = {float(layer._negative_slope) for layer in model.sublayers() if isinstance(layer, paddle.nn.LeakyReLU)}
    return sorted(slopes)


def to_onnx(files: dict, onnx_path: str, leaky_slopes: list[float], opset: int = ONNX_OPSET) -> dict:
    """Convert a saved inference model with paddle2onnx, fix LeakyRelu slopes, check and write it.

    Returns {"paddle2onnx": version, "leaky_relu_fixed": n}. paddle2onnx 2.1.0 on paddle 3.x writes
    every LeakyRelu with alpha 0.0: the PIR program stores the slope as a double attribute
    `negative_slope`, which its converter does not read. The slope is set back from the model's
    own LeakyReLU layers (export parity then checks the result).
    """
    try:
        import onnx
        import paddle2onnx
    except ImportError as e:
        raise CNNsError(f"ONNX export needs paddle2onnx and onnx ({e.name} is not installed); "
                        "pip install -r requirements-export.txt") from None
    from paddle2onnx.utils import logging as p2o_logging

    options = {"opset_version": opset, "enable_onnx_checker": True}
    if "optimize_tool" in inspect.signature(paddle2onnx.export).parameters:
        # paddle2onnx 2.x folds constants with Polygraphy when writing a file itself, and lets it
        # pip-install packages into the running environment; returning the bytes skips that.
        options["optimize_tool"] = "none"
    level, p2o_logging.log_level = p2o_logging.log_level, 1  # its INFO lines to stdout: warnings only
    log = os.path.join(os.path.dirname(os.path.abspath(onnx_path)), "paddle2onnx.log")
    try:
        with _stdout_to(log):
            data = paddle2onnx.export(files["model"], files["params"], None, **options)
    except Exception as e:  # it logs and re-raises its own failures in various forms
        raise CNNsError(f"paddle2onnx {paddle2onnx.__version__} could not convert the model "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; {_last_line(log)})") from None
    finally:
        p2o_logging.log_level = level
        if os.path.exists(log):
            os.remove(log)
    if not data:
        raise CNNsError(f"paddle2onnx {paddle2onnx.__version__} produced no model")
    graph = onnx.load_model_from_string(data)
    fixed = fix_leaky_relu(graph, leaky_slopes)
    _drop_unused_initializers(graph)
    onnx.checker.check_model(graph)
    onnx.save_model(graph, onnx_path)
    return {"paddle2onnx": paddle2onnx.__version__, "onnx_opset": opset, "leaky_relu_fixed": fixed}


def fix_leaky_relu(graph, slopes: list[float]) -> int:
    """Set every LeakyRelu node's alpha to the model's slope; returns how many were wrong."""
    from onnx import helper

    nodes = [n for n in graph.graph.node if n.op_type == "LeakyRelu"]
    if not nodes:
        return 0
    if len(slopes) != 1:
        raise CNNsError(f"the ONNX graph has {len(nodes)} LeakyRelu nodes but the model's LeakyReLU slopes "
                        f"are {slopes or 'none'}: they cannot be matched to set each node's slope")
    wrong = 0
    for node in nodes:
        attrs = [a for a in node.attribute if a.name == "alpha"]
        if not attrs or not np.isclose(attrs[0].f, slopes[0], rtol=1e-6, atol=0):
            wrong += 1
        for a in attrs:
            node.attribute.remove(a)
        node.attribute.append(helper.make_attribute("alpha", float(slopes[0])))
    return wrong


def _drop_unused_initializers(graph) -> None:
    """paddle2onnx leaves constants no node reads; onnxruntime warns about each one at load."""
    used = {name for node in graph.graph.node for name in node.input} | {o.name for o in graph.graph.output}
    for init in [i for i in graph.graph.initializer if i.name not in used]:
        graph.graph.initializer.remove(init)


@contextlib.contextmanager
def _stdout_to(path: str):
    """Send file descriptor 1 to `path` inside the block: paddle2onnx's C++ part prints progress there."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "wb") as f:
            os.dup2(f.fileno(), 1)
            try:
                yield path
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def onnx_logits(onnx_path: str, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run an ONNX model with onnxruntime (CPU) on x [N, C, S, S]."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CNNsError("checking an ONNX export needs onnxruntime; pip install -r requirements-export.txt") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def package_versions() -> dict:
    """paddle and, where installed, the ONNX tools' versions, for an export's manifest."""
    versions = {"paddle": paddle.__version__}
    for name in ("paddle2onnx", "onnx", "onnxruntime"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # not installed, or (paddle2onnx 2.x on paddle 2.6) refusing to import
            pass
    return versions
