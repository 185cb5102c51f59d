"""Crafted hostile and odd-but-valid image files, written into a test's tmp folder (no binary fixtures committed).

`hostile_images(folder)` writes every case and returns them; a case is either refused (the message a user must
see, as a regex) or answered (a valid image in an unusual shape, mode or format).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

UNREADABLE = "not a readable image|could not be decoded"
TOO_LARGE = "megapixels|too large"
TOO_SMALL = "at least 16 pixels"
ODD_SHAPE = "aspect ratio"


@dataclass(frozen=True)
class HostileImage:
    """One crafted file: its path, the kind of hostility, and the refusal message expected (None: answered)."""

    name: str
    kind: str
    path: Path
    refusal: str | None = None

    @property
    def refused(self) -> bool:
        """Whether every entry point must refuse it."""
        return self.refusal is not None


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth RGB test picture (uint8, H x W x 3)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    """`image` saved in `fmt` as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk (length, type, data, CRC); a wrong `crc` makes a corrupt chunk."""
    value = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", value & 0xFFFFFFFF)


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A tiny PNG whose header declares `width` x `height` 1-bit pixels (a decompression bomb when huge)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = png_chunk(b"IHDR", header) + (png_chunk(b"IDAT", idat) if idat else b"") + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def compressed_bomb(width: int, height: int) -> bytes:
    """A real, well-formed 1-bit PNG of zeros: a few hundred KiB that decode to `width` x `height` pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_declaring(width, height, data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header is patched to declare `width` x `height`."""
    data = bytearray(encoded(Image.fromarray(gradient(32, 32)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def text_bomb_png() -> bytes:
    """A valid 32x32 PNG carrying a zTXt chunk that inflates to 64 MiB (a metadata decompression bomb)."""
    png = encoded(Image.fromarray(gradient(32, 32)), "PNG")
    bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 64 * 2**20, 9))
    return png[:33] + bomb + png[33:]  # right after the 8-byte signature and the 25-byte IHDR chunk


def bad_crc_png() -> bytes:
    """A PNG whose header chunk's CRC is wrong."""
    png = bytearray(encoded(Image.fromarray(gradient()), "PNG"))
    png[29:33] = bytes(b ^ 0xFF for b in png[29:33])  # IHDR's CRC
    return bytes(png)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("image.png", encoded(Image.fromarray(gradient()), "PNG"))
    return buffer.getvalue()


def _svg_bytes() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'


def _pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def refused_payloads() -> list[tuple[str, str, str, bytes, str]]:
    """(name, kind, file name, bytes, expected message) of every file that must be refused."""
    png = encoded(Image.fromarray(gradient()), "PNG")
    jpeg = encoded(Image.fromarray(gradient()), "JPEG")
    return [
        ("truncated-png", "truncated", "truncated.png", png[: len(png) // 2], UNREADABLE),
        ("truncated-jpeg", "truncated", "truncated.jpg", jpeg[: len(jpeg) // 2], UNREADABLE),
        ("header-only-png", "header only", "header.png", png[:33], UNREADABLE),
        ("header-only-jpeg", "header only", "header.jpg", jpeg[:20], UNREADABLE),
        ("random-bytes", "garbage", "random.png", np.random.default_rng(0).bytes(4096), UNREADABLE),
        ("empty-file", "garbage", "empty.png", b"", UNREADABLE),
        ("text-file", "garbage", "notes.png", "not an image, just text ✓\n".encode() * 20, UNREADABLE),
        ("pdf-renamed", "wrong format", "document.png", _pdf_bytes(), UNREADABLE),
        ("svg-renamed", "wrong format", "vector.png", _svg_bytes(), UNREADABLE),
        ("zip-renamed", "wrong format", "archive.png", _zip_bytes(), UNREADABLE),
        ("bad-crc-png", "corrupt", "bad_crc.png", bad_crc_png(), UNREADABLE),
        ("bomb-header-30000", "decompression bomb", "bomb_header.png", png_declaring(30000, 30000), TOO_LARGE),
        ("bomb-real-20000", "decompression bomb", "bomb_zeros.png", compressed_bomb(20000, 20000), TOO_LARGE),
        ("bomb-9000", "decompression bomb", "bomb_9000.png", compressed_bomb(9000, 9000), TOO_LARGE),
        ("bomb-12000-pil-warns", "decompression bomb", "bomb_12000.png", compressed_bomb(12000, 12000), TOO_LARGE),
        ("bomb-jpeg-60000", "decompression bomb", "bomb.jpg", jpeg_declaring(60000, 60000), TOO_LARGE),
        ("bomb-ztxt-metadata", "decompression bomb", "text_bomb.png", text_bomb_png(), UNREADABLE + "|too large"),
        ("one-pixel", "too small", "one.png", encoded(Image.new("RGB", (1, 1)), "PNG"), TOO_SMALL),
        ("eight-pixels", "too small", "eight.png", encoded(Image.new("RGB", (8, 8)), "PNG"), TOO_SMALL),
        ("wide-4000x8", "extreme aspect", "wide.png", encoded(Image.new("RGB", (4000, 8)), "PNG"), TOO_SMALL),
        ("tall-8x4000", "extreme aspect", "tall.png", encoded(Image.new("RGB", (8, 4000)), "PNG"), TOO_SMALL),
        ("wide-4000x16", "extreme aspect", "wide16.png", encoded(Image.new("RGB", (4000, 16)), "PNG"), ODD_SHAPE),
        ("tall-20x3000", "extreme aspect", "tall20.png", encoded(Image.new("RGB", (20, 3000)), "PNG"), ODD_SHAPE),
    ]


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return encoded(Image.fromarray(gradient(64, 32)), "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [Image.fromarray(np.roll(gradient(48, 48), shift, axis=1)).convert("P") for shift in (0, 16, 32)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


def _palette_with_transparency() -> bytes:
    image = Image.new("P", (40, 40), 1)  # blue, with a transparent red corner (palette index 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(0, (0, 0, 8, 8))
    return encoded(image, "PNG", transparency=0)


def _sixteen_bit() -> bytes:
    return encoded(Image.fromarray(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)), "PNG")


def _float_tiff() -> bytes:
    return encoded(Image.fromarray(np.linspace(-1.5, 3.0, 48 * 64).reshape(48, 64).astype(np.float32)), "TIFF")


def answered_payloads() -> list[tuple[str, str, str, bytes]]:
    """(name, kind, file name, bytes) of every odd-but-valid image that must be answered."""
    rgb = Image.fromarray(gradient())
    rgba = Image.fromarray(np.dstack([gradient(), np.full((48, 64), 128, np.uint8)]))
    return [
        ("rgb-png", "baseline", "plain.png", encoded(rgb, "PNG")),
        ("cmyk-jpeg", "odd mode", "cmyk.jpg", encoded(rgb.convert("CMYK"), "JPEG")),
        ("sixteen-bit-png", "odd mode", "depth16.png", _sixteen_bit()),
        ("float-tiff", "odd mode", "float.tif", _float_tiff()),
        ("one-bit-png", "odd mode", "bilevel.png", encoded(rgb.convert("1"), "PNG")),
        ("palette-transparent", "odd mode", "palette.png", _palette_with_transparency()),
        ("rgba-png", "odd mode", "alpha.png", encoded(rgba, "PNG")),
        ("la-png", "odd mode", "grey_alpha.png", encoded(rgba.convert("LA"), "PNG")),
        ("grey-jpeg", "odd mode", "grey.jpg", encoded(rgb.convert("L"), "JPEG")),
        ("animated-gif", "odd format", "animated.gif", _animated_gif()),
        ("exif-rotated-jpeg", "odd format", "rotated.jpg", _exif_rotated_jpeg()),
        ("webp", "odd format", "image.webp", encoded(rgb, "WEBP")),
        ("bmp", "odd format", "image.bmp", encoded(rgb, "BMP")),
        ("progressive-jpeg", "odd format", "progressive.jpg", encoded(rgb, "JPEG", progressive=True)),
        ("trailing-garbage-png", "odd format", "trailing.png", encoded(rgb, "PNG") + b"\x00garbage" * 64),
        ("jpeg-named-png", "odd format", "really_a_jpeg.png", encoded(rgb, "JPEG")),
        ("minimum-16x16", "small", "min.png", encoded(Image.new("RGB", (16, 16), (90, 90, 90)), "PNG")),
        ("wide-1600x64", "wide", "banner.png", encoded(Image.fromarray(gradient(1600, 64)), "PNG")),
        ("strip-100-to-1", "wide", "strip.png", encoded(Image.fromarray(gradient(3200, 32)), "PNG")),
    ]


def photo_12mp(folder: Path) -> HostileImage:
    """A 4000 x 3000 JPEG upscaled from scikit-image's CC0 `brick` texture (a 12-megapixel phone photo)."""
    from skimage import data

    path = folder / "photo_12mp.jpg"
    Image.fromarray(data.brick()).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(path, quality=85)
    return HostileImage("photo-12mp", "large photo", path)


def hostile_images(folder: Path) -> list[HostileImage]:
    """Write every refused and answered case into `folder`; returns them (refused first)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, kind, file_name, payload, message in refused_payloads():
        (folder / file_name).write_bytes(payload)
        cases.append(HostileImage(name, kind, folder / file_name, message))
    for name, kind, file_name, payload in answered_payloads():
        (folder / file_name).write_bytes(payload)
        cases.append(HostileImage(name, kind, folder / file_name))
    return cases
