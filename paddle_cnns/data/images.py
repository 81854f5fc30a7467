"""Decoding one image file into a uint8 [C, H, W] array, with a one-line error naming a bad file."""
from __future__ import annotations

import io
import re
import os

import numpy as np
from PIL import Image

from ..errors import DataError

# What counts as an image when scanning folders and archives: by extension, so a stray file
# (the real Caltech-101 archive has `BACKGROUND_Google/tmp`, a JPEG without one) is skipped and
# counted rather than guessed at.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
# No image of these datasets comes near this (Caltech-101's largest is well under 1 MB): a member
# of an archive announcing more is refused before it is decompressed into memory.
MAX_IMAGE_BYTES = 64 << 20


def is_image_name(name: str) -> bool:
    """Whether a file name has an image extension we decode."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def open_image(data: bytes, name: str, advice: str = "replace the file") -> Image.Image:
    """Fully decode `data`; a truncated or corrupt file raises DataError naming `name` and saying
    what to do (`advice`: the fix that fits where the image comes from)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # Image.open only reads the header; truncation shows up here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"image {name} cannot be decoded ({_reason(e)}); it is truncated or not an "
                        f"image: {advice}") from None
    return image


def decode_image(data: bytes, name: str, size: int, channels: int = 3,
                 advice: str = "replace the file or remove it from the label list") -> np.ndarray:
    """Decode, convert to RGB (or L for channels=1) and resize to size x size: uint8 [C, S, S].

    The whole image is resized to a square (aspect ratio not kept), as the article's
    Resize((224, 224)); bilinear with PIL's antialiasing when shrinking.
    """
    image = open_image(data, name, advice).convert("RGB" if channels == 3 else "L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    # PIL names the in-memory stream it was given ("<_io.BytesIO object at 0x...>"): noise to a user
    return re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", text) or type(e).__name__
