"""Fast max pools stay safe and honest on non-numbers (a diverging run feeds them NaNs)."""
import numpy as np
import paddle
import pytest

from paddle_cnns.fast import FastMaxPool2D


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_fast_max_pool_propagates_nan_and_its_gradient_stays_inside_the_tensor(kernel, stride, padding):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32")
    x[0, 1] = np.nan             # a whole channel of NaNs: every window in it has no number
    x[1, 2, :4, :4] = -np.inf    # windows of -inf
    plain = paddle.nn.MaxPool2D(kernel, stride, padding)
    fast = FastMaxPool2D(kernel, stride, padding)
    xp, xf = paddle.to_tensor(x, stop_gradient=False), paddle.to_tensor(x, stop_gradient=False)
    yp, yf = plain(xp), fast(xf)
    np.testing.assert_array_equal(yp.numpy(), yf.numpy())  # NaN and -inf exactly where paddle has them
    # Scattering through the masked kernel's index -1 used to write outside the gradient
    # tensor and corrupt the heap; now backward runs and finite channels get exact gradients.
    yf.sum().backward()
    yp.sum().backward()
    for image, channel in [(0, 0), (0, 2), (1, 0), (1, 1)]:  # channels without non-numbers
        np.testing.assert_array_equal(xf.grad.numpy()[image, channel], xp.grad.numpy()[image, channel])
