"""Image input for every entry point: read, check and normalise to 8-bit RGB, or refuse with a clear message.

Handles unreadable and truncated files, decompression bombs (checked from the header before decoding), grey,
palette, alpha, 16-bit and float images, images too small to inspect and very large ones (downscaled).
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reason_iad.errors import UserError

MAX_PIXELS = 40_000_000  # refuse above this before decoding (a 40-megapixel photo is already generous)
MIN_SIDE = 16
MAX_SIDE = 2048  # larger images are downscaled, keeping the aspect ratio
MAX_ASPECT_RATIO = 100  # longer strips would shrink below MIN_SIDE when downscaled (and vision processors refuse them)
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error)  # from hostile files


def load_image(source: str | Path | bytes | Image.Image, name: str = "image") -> Image.Image:
    """Read `source` (a path, encoded bytes or a PIL image) and return a normalised RGB image."""
    if isinstance(source, Image.Image):
        return normalise_image(source, name)
    with _decoded(source, name) as (image, label):
        return normalise_image(image, label)


def read_image(source: str | Path | bytes, name: str = "image") -> Image.Image:
    """Decode `source` with the same checks as `load_image` but keep its mode (alpha included), e.g. paint layers."""
    with _decoded(source, name) as (image, _):
        return image.copy()


@contextlib.contextmanager
def _decoded(source: str | Path | bytes, name: str) -> Iterator[tuple[Image.Image, str]]:
    """(decoded image, label) after the size checks; any decoding failure, here or in the body, is a `UserError`."""
    if isinstance(source, bytes):
        stream, label = io.BytesIO(source), name
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{name} not found: {path}")
        stream, label = path.open("rb"), str(path)
    try:
        with warnings.catch_warnings():  # sizes PIL warns about are refused below, with a clearer message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
        with image:
            _check_size(image, label)
            image.load()
            yield image, label
    except UserError:
        raise
    except Image.DecompressionBombError as err:
        raise UserError(f"{label} is too large to decode safely ({err})") from err
    except UnidentifiedImageError as err:
        raise UserError(f"{label} is not a readable image (unknown or unsupported file format)") from err
    except DECODE_ERRORS as err:
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
    if max(width, height) > MAX_ASPECT_RATIO * (min(width, height) + 1):  # +1: a downscaled image passes again
        raise UserError(f"{label} is {width}x{height}: an aspect ratio beyond {MAX_ASPECT_RATIO}:1 cannot be inspected")


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
