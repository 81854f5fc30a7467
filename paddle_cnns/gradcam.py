"""Grad-CAM (Selvaraju et al. 2017): where in a conv layer's map the evidence for a class lies.

Computed with paddle's autograd (paddle.grad on a hooked feature map). InterpretDL 0.8.0, paddle's
own interpretability library, cannot do it here: it pins scikit-learn <= 0.24 (no wheel for
Python >= 3.10), and its Grad-CAM reads `.grad` of the hooked intermediate tensor, which paddle's
eager mode leaves None on paddle 2.6 and 3.x alike (it then fails in numpy), after switching the
model to train mode and changing its BatchNorm and Dropout layers in place.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from .errors import UsageError

# The default layer is the deepest whose map is at least this many pixels on a side: deeper maps
# are more about classes, but a 2 x 2 or 1 x 1 map (the trick CNN's last stages at 32 px) can only
# say which quadrant, or nothing at all.
MIN_SIDE = 4


@paddle.no_grad()
def feature_layers(model, in_channels: int, image_size: int) -> list[tuple[str, list[int]]]:
    """(name, [C, H, W]) of each sublayer with a 4-D output, in the order they finish in a forward pass."""
    found, hooks = [], []
    for name, layer in model.named_sublayers():
        def hook(layer, inputs, output, name=name):
            if isinstance(output, paddle.Tensor) and len(output.shape) == 4:
                found.append((name, list(output.shape[1:])))
        hooks.append(layer.register_forward_post_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(paddle.zeros([1, in_channels, image_size, image_size]))
    finally:
        for h in hooks:
            h.remove()
        if was_training:
            model.train()
    return found


def default_layer(model, in_channels: int, image_size: int) -> str:
    """The deepest layer whose map is at least MIN_SIDE px on a side (else the deepest conv map).

    A container finishes after its last child, so a whole block is named where it ends in a map.
    """
    layers = feature_layers(model, in_channels, image_size)
    if not layers:
        raise UsageError("the model has no layer with a spatial feature map to explain")
    big = [name for name, (_, h, w) in layers if min(h, w) >= MIN_SIDE]
    return (big or [name for name, _ in layers])[-1]


def grad_cam(model, x: np.ndarray, layer: str, targets=None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps [N, h, w] in [0, 1] at `layer`'s resolution, and the logits [N, classes].

    targets: the class explained per image (default: the predicted one). The map is
    ReLU(sum over channels of A_c x mean over pixels of d logit / d A_c), scaled so its peak is 1
    (an all-zero map stays zero). The model runs in eval mode: BatchNorm uses its running
    statistics and dropout is off, as in prediction.
    """
    sublayers = dict(model.named_sublayers())
    if layer not in sublayers:
        blocks = [n for n in sublayers if n.count(".") == 1]  # the top-level blocks, e.g. blocks.stage3
        raise UsageError(f"model has no layer {layer!r}; its blocks are {', '.join(blocks)} "
                         "(and their numbered parts, e.g. blocks.stage3.0)")
    captured = {}
    handle = sublayers[layer].register_forward_post_hook(lambda l, i, o: captured.__setitem__("a", o))
    model.eval()
    try:
        inputs = paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32))
        inputs.stop_gradient = False  # so the map is in the graph even for a frozen first layer
        logits = model(inputs)
    finally:
        handle.remove()
    activations = captured.get("a")
    if not isinstance(activations, paddle.Tensor) or len(activations.shape) != 4:
        raise UsageError(f"layer {layer!r} does not output a feature map [N, C, H, W]; pick a conv layer or block")
    chosen = logits.argmax(axis=1) if targets is None else paddle.to_tensor(np.asarray(targets, dtype=np.int64))
    # Images are independent in eval mode, so one backward pass of the summed scores gives each
    # image's gradient.
    score = (logits * F.one_hot(chosen, logits.shape[1])).sum()
    (grads,) = paddle.grad([score], [activations])
    weights = grads.mean(axis=[2, 3], keepdim=True)  # N x C x 1 x 1
    cams = F.relu((weights * activations).sum(axis=1)).numpy()  # N x h x w
    peaks = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    cams = np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)
    return cams.astype(np.float32), logits.numpy()
