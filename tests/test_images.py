import io

import numpy as np
import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.images import MAX_SIDE, load_image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (40, 30), 128),
        Image.new("RGBA", (40, 30), (255, 0, 0, 0)),  # fully transparent red -> white
        Image.new("P", (40, 30), 3),
        Image.new("1", (40, 30), 1),
        Image.new("CMYK", (40, 30), (0, 0, 0, 0)),
    ],
)
def test_any_mode_becomes_rgb(image):
    out = load_image(_png(image) if image.mode != "CMYK" else image)
    assert out.mode == "RGB" and out.size == (40, 30)


def test_transparent_pixels_become_white():
    out = load_image(_png(Image.new("RGBA", (20, 20), (255, 0, 0, 0))))
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_is_rescaled_not_clipped():
    values = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    out = np.asarray(load_image(_png(Image.fromarray(values))))
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out[..., 0])) > 200  # the gradient survives


def test_very_large_images_are_downscaled_keeping_aspect():
    out = load_image(Image.new("RGB", (5000, 1000), (1, 2, 3)))
    assert max(out.size) == MAX_SIDE and out.size[1] == pytest.approx(MAX_SIDE / 5, abs=1)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"definitely not an image", "not a readable image"),
        (_png(Image.new("RGB", (64, 64), (9, 9, 9)))[:60], "could not be decoded|not a readable image"),
        (_png(Image.new("RGB", (8, 64))), "at least 16 pixels"),
        (_png(Image.new("1", (8000, 6000))), "megapixels"),
    ],
)
def test_bad_images_are_refused_clearly(payload, message):
    with pytest.raises(UserError, match=message):
        load_image(payload)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "nope.png")
