"""Anomaly evidence and what other parts make of it: visual prompts, a text line, a per-token prior.

`AnomalyEvidence` (declared in `reason_iad.types` with the other inspection events) is the visual memory's typed
result. The pure functions here turn it into MMAD-style
evidence prompts for a multimodal LLM (`draw_evidence`: highlight / contour / box on a copy of the image;
`evidence_text`: one line) and into `token_prior`, the mean anomaly under each image token's pixel box, which the
engine can mix with its attention scores to choose the patches it injects.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from reason_iad.config import EvidenceMode
from reason_iad.mmad import REGIONS
from reason_iad.types import AnomalyEvidence

VisualMode = Literal["highlight", "contour", "box"]  # the evidence modes drawn on the image
VISUAL_MODES: tuple[str, ...] = get_args(VisualMode)
EVIDENCE_MODES: tuple[str, ...] = get_args(EvidenceMode)
HIGHLIGHT_COLOUR = (255, 32, 32)
HIGHLIGHT_OPACITY = 0.6  # from calibrated value HIGHLIGHT_FULL ("anomalous") up
HIGHLIGHT_FROM, HIGHLIGHT_FULL = 0.25, 0.75  # the tint ramps up between these calibrated values
PEAK_LEVEL = 0.5  # the peak's region: pixels above halfway between the map's median and its peak


def region_name(x: float, y: float, width: int, height: int) -> str:
    """The 3x3 grid cell ("top left" ... "bottom right") holding pixel (x, y)."""
    col = min(2, max(0, int(3 * x / width)))
    row = min(2, max(0, int(3 * y / height)))
    return REGIONS[3 * row + col]


def locate_peak(values: np.ndarray) -> tuple[str, tuple[int, int, int, int], np.ndarray]:
    """Where a map peaks: its 3x3 region, the box of the connected blob around the peak, and that blob's mask.

    Args:
        values: [H, W] map (raw or calibrated; only its shape matters, not its scale).

    Returns:
        (region name, (x0, y0, x1, y1) with exclusive ends, bool mask [H, W] of the blob).
    """
    height, width = values.shape
    peak_y, peak_x = np.unravel_index(int(np.argmax(values)), values.shape)
    peak, base = float(values[peak_y, peak_x]), float(np.median(values))
    above = values >= base + PEAK_LEVEL * (peak - base) if peak > base else values >= peak
    labels, _ = ndimage.label(above)
    blob = labels == labels[peak_y, peak_x]
    return region_name(peak_x + 0.5, peak_y + 0.5, width, height), mask_box(blob), blob


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) bounding box of a boolean mask (exclusive ends); the whole image for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return 0, 0, mask.shape[1], mask.shape[0]
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def evidence_line(verdict: str, region: str, score: float) -> str:
    """The evidence line from its parts: "verdict: anomalous; most anomalous region: top left, score 0.91"."""
    return f"verdict: {verdict}; most anomalous region: {region}, score {score:.2f}"


def evidence_text(evidence: AnomalyEvidence) -> str:
    """One line for the prompt, e.g. "verdict: anomalous; most anomalous region: top left, score 0.91"."""
    return evidence_line(evidence.verdict, evidence.region, evidence.score)


def focus_crop(
    image: Image.Image, box: tuple[int, int, int, int], min_fraction: float = 0.4, margin: float = 1.3
) -> Image.Image:
    """A square crop around `box` (x0, y0, x1, y1), shifted to stay inside the image.

    Its side is the box's longer side times `margin`, at least `min_fraction` of the image's shorter side.
    Retrieval embeds it so that a small defect fills the retriever's low-resolution input.
    """
    width, height = image.size
    side = max(box[2] - box[0], box[3] - box[1]) * margin
    side = int(round(min(min(width, height), max(side, min_fraction * min(width, height)))))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return image.crop((x0, y0, x0 + side, y0 + side))


def _line_width(width: int, height: int) -> int:
    return max(2, round(min(width, height) / 128))


def draw_evidence(image: Image.Image, evidence: AnomalyEvidence, mode: VisualMode) -> Image.Image:
    """Draw the evidence on a copy of the image (the input is not modified).

    Args:
        image: The inspected image (its size must match the evidence map).
        evidence: The visual memory's evidence for that image.
        mode: "highlight" (red tint rising with the calibrated map from 0.25 to full at 0.75, "anomalous"),
            "contour" (outline of the peak's region)
            or "box" (rectangle around the peak's region).

    Returns:
        A new RGB image.

    Raises:
        ValueError: Unknown mode or an image of another size.
    """
    if image.size != evidence.image_size:
        raise ValueError(f"image is {image.size}, the evidence map is for {evidence.image_size}")
    canvas = image.convert("RGB")
    if mode == "highlight":
        pixels = np.asarray(canvas, dtype=np.float32)
        ramp = np.clip((evidence.anomaly_map - HIGHLIGHT_FROM) / (HIGHLIGHT_FULL - HIGHLIGHT_FROM), 0.0, 1.0)
        alpha = (HIGHLIGHT_OPACITY * ramp)[..., None]
        tinted = pixels * (1 - alpha) + np.asarray(HIGHLIGHT_COLOUR, dtype=np.float32) * alpha
        return Image.fromarray(tinted.round().clip(0, 255).astype(np.uint8))
    width = _line_width(*canvas.size)
    if mode == "box":
        canvas = canvas.copy()
        x0, y0, x1, y1 = evidence.box
        ImageDraw.Draw(canvas).rectangle((x0, y0, x1 - 1, y1 - 1), outline=HIGHLIGHT_COLOUR, width=width)
        return canvas
    if mode == "contour":
        blob = evidence.region_mask
        outline = blob & ~ndimage.binary_erosion(blob, iterations=width, border_value=0)
        pixels = np.array(canvas)
        pixels[outline] = HIGHLIGHT_COLOUR
        return Image.fromarray(pixels)
    raise ValueError(f"unknown evidence mode {mode!r}; choose highlight, contour or box")


def token_prior(evidence: AnomalyEvidence, boxes: Any) -> Any:
    """Mean calibrated anomaly under each image token's pixel box.

    Args:
        evidence: Evidence for the image the tokens come from.
        boxes: [n, 4] (x0, y0, x1, y1) boxes in original image pixels (torch tensor or numpy array), as the
            backends give in `ImageSlots.boxes`. Boxes are clipped to the image; each covers at least one pixel.

    Returns:
        [n] float32 means in [0, 1], a torch tensor on the boxes' device when given one, else a numpy array.
    """
    is_torch = type(boxes).__module__.startswith("torch")
    array = boxes.detach().cpu().double().numpy() if is_torch else np.asarray(boxes, dtype=np.float64)
    array = array.reshape(-1, 4)
    height, width = evidence.anomaly_map.shape
    integral = np.zeros((height + 1, width + 1), dtype=np.float64)
    integral[1:, 1:] = evidence.anomaly_map.astype(np.float64).cumsum(0).cumsum(1)
    x0 = np.clip(np.floor(array[:, 0]), 0, width - 1).astype(int)
    y0 = np.clip(np.floor(array[:, 1]), 0, height - 1).astype(int)
    x1 = np.maximum(np.clip(np.ceil(array[:, 2]), 0, width).astype(int), x0 + 1)
    y1 = np.maximum(np.clip(np.ceil(array[:, 3]), 0, height).astype(int), y0 + 1)
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    means = (total / ((x1 - x0) * (y1 - y0))).astype(np.float32)
    if is_torch:
        import torch

        return torch.from_numpy(means).to(boxes.device)
    return means
