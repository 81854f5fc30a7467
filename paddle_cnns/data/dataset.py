"""ArrayDataset: decoded uint8 images in memory or memory-mapped, normalised (and augmented) on the fly."""
from __future__ import annotations

import math

import numpy as np
import paddle
from PIL import Image

from ..errors import UsageError

ROTATION_DEGREES = 10.0  # the ImageNet GoogLeNet-BN write-up's small rotation: uniform in [-10, 10] degrees
CROP_PAD_FRACTION = 1 / 8  # random crop: pad by 1/8 of the side (4 px at 32 px), crop back


class ArrayDataset(paddle.io.Dataset):
    """Images uint8 [N, C, h, w] and labels int64 [N], served as float32 [C, S, S] and int64.

    x = (pixel / 255 - mean) / std per channel. Images stored at another size than S (Fashion-MNIST
    keeps its 28 x 28 originals) are resized on the fly with a separable bilinear filter (PIL's,
    antialiased when shrinking), which for a batch is two small matrix products.

    Augmentation (train split, off by default as in the article; the ImageNet GoogLeNet-BN
    write-up's recipe when on) is one affine warp per image on the stored uint8 pixels: random
    crop (pad by 1/8 of the side with the mean colour, crop back at a random offset, i.e. an
    integer shift of up to side/8 in x and y), horizontal flip with probability 1/2, rotation uniform in +-10 degrees; bilinear. Its
    randomness is drawn from np.random.default_rng([seed, epoch, index]) only, so a resumed run
    sees the same images: call set_epoch(epoch) each epoch (make_loader does).
    """

    def __init__(self, images: np.ndarray, labels, mean, std, *, image_size: int | None = None,
                 augment: bool = False, seed: int = 0):
        super().__init__()
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {images.shape}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(self.labels)} labels")
        channels, height, width = images.shape[1:]
        self.mean = np.asarray(mean, dtype=np.float32).reshape(channels)
        # A floor of one grey level: a constant channel (e.g. a blank test set) must not divide by 0.
        self.std = np.maximum(np.asarray(std, dtype=np.float32).reshape(channels), 1 / 255)
        self.image_size = int(image_size or height)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0
        self._scale = (1.0 / (255.0 * self.std)).reshape(1, channels, 1, 1)
        self._shift = (-self.mean / self.std).reshape(1, channels, 1, 1)
        self._resize = None
        if (height, width) != (self.image_size, self.image_size):
            self._resize = (resize_matrix(height, self.image_size), resize_matrix(width, self.image_size).T)
        self._fill = tuple(int(round(255 * m)) for m in self.mean)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation draws __getitem__ makes (drawn from seed, epoch, index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        x, y = self.get_batch([index])
        return x[0], y[0]

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """float32 [B, C, S, S] and int64 [B]: the same as stacking __getitem__, vectorised."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.labels)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for a dataset of {n} images")
        idx = np.where(idx < 0, idx + n, idx)
        pixels = np.asarray(self.images[idx])
        if self.augment:
            pixels = np.stack([self._augment(p, i) for p, i in zip(pixels, idx)]) if len(idx) else pixels
        x = pixels.astype(np.float32)
        if self._resize is not None:
            rows, cols = self._resize
            x = np.matmul(np.matmul(rows, x), cols)  # B x C x S x S
        x *= self._scale
        x += self._shift
        return x, self.labels[idx]

    def _augment(self, pixels: np.ndarray, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        channels, height, width = pixels.shape
        pad = max(1, int(round(CROP_PAD_FRACTION * min(height, width))))
        dx, dy = (int(v) for v in rng.integers(-pad, pad + 1, size=2))
        flip = bool(rng.random() < 0.5)
        angle = math.radians(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
        # The inverse map output -> input that PIL's AFFINE wants: undo the shift, the flip and
        # the rotation about the centre (continuous coordinates, pixel centres at +0.5).
        cx, cy = width / 2, height / 2
        cos, sin = math.cos(angle), math.sin(angle)
        fx = -1.0 if flip else 1.0
        a, b = cos * fx, sin
        d, e = -sin * fx, cos
        ox, oy = -cx - dx, -cy - dy
        coefficients = (a, b, a * ox + b * oy + cx, d, e, d * ox + e * oy + cy)
        mode = "L" if channels == 1 else "RGB"
        image = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0), mode)
        fill = self._fill[0] if channels == 1 else self._fill
        out = np.asarray(image.transform((width, height), Image.AFFINE, coefficients,
                                         resample=Image.BILINEAR, fillcolor=fill))
        return out[None] if channels == 1 else out.transpose(2, 0, 1)


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of PIL-style bilinear resampling along one axis (antialiased when shrinking)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    inputs = np.arange(n_in) + 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(inputs[None, :] - centres[:, None]) / support)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


def check_image_size(image_size) -> int:
    """image_size as an int, or UsageError unless it is an integer of at least 8."""
    if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool) or image_size < 8:
        raise UsageError(f"image_size must be an integer >= 8, got {image_size!r}")
    return int(image_size)
