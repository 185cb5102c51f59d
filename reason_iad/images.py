"""Image input for every entry point: read, check and normalise to 8-bit RGB, or refuse with a clear message.

Handles unreadable and truncated files, decompression bombs (checked from the header before decoding), grey,
palette, alpha, 16-bit and float images, images too small to inspect and very large ones (downscaled).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reason_iad.errors import UserError

MAX_PIXELS = 40_000_000  # refuse above this before decoding (a 40-megapixel photo is already generous)
MIN_SIDE = 16
MAX_SIDE = 2048  # larger images are downscaled, keeping the aspect ratio


def load_image(source: str | Path | bytes | Image.Image, name: str = "image") -> Image.Image:
    """Read `source` (a path, encoded bytes or a PIL image) and return a normalised RGB image."""
    if isinstance(source, Image.Image):
        return normalise_image(source, name)
    if isinstance(source, bytes):
        stream, label = io.BytesIO(source), name
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{name} not found: {path}")
        stream, label = path.open("rb"), str(path)
    try:
        with Image.open(stream) as image:
            _check_size(image, label)
            image.load()
            return normalise_image(image, label)
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise UserError(f"{label} is not a readable image ({type(err).__name__})") from err
    except OSError as err:
        raise UserError(f"{label} could not be decoded (truncated or corrupt: {err})") from err
    finally:
        stream.close()


def _check_size(image: Image.Image, label: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise UserError(
            f"{label} is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels"
        )
    if min(width, height) < MIN_SIDE:
        raise UserError(f"{label} is {width}x{height}; images need at least {MIN_SIDE} pixels per side")


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG (lossless, no metadata), for storing in LanceDB."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def normalise_image(image: Image.Image, label: str = "image") -> Image.Image:
    """8-bit RGB, alpha composited on white, high bit depths rescaled, EXIF orientation applied, <= MAX_SIDE."""
    _check_size(image, label)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        image = Image.fromarray(scaled.round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image
