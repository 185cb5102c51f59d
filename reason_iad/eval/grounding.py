"""Does an explanation point at the defect? Grounding metrics of one answer against a ground-truth mask.

Pure functions on a boolean mask [H, W] in original-image pixels and what an inspection carries: the kept patches'
pixel boxes, the latent -> image attention map (a rows x cols grid laid evenly over the whole image), the anomaly
map's peak and the visual memory's evidence box.

Pixel rule: a box (x0, y0, x1, y1) spans [x0, x1) x [y0, y1); it covers pixel column i when [i, i + 1) meets
[x0, x1) with positive length, i.e. floor(x0) <= i < ceil(x1), clipped to the image. A box that only touches
the mask's edge (x1 == the mask's first column) does not overlap it; boxes partly outside the image are clipped,
boxes with no area cover nothing.

Metrics (None where undefined, so they are left out of means rather than counted as 0):

- patch hit: at least one kept patch overlaps the mask (False without kept patches);
- kept-patch precision: the share of kept patches that overlap the mask (None without kept patches);
- attention pointing: the attention map's peak cell lies within one cell (8-neighbourhood) of a cell that
  overlaps the mask (None without a map, or for a flat map that has no peak);
- anomaly pointing: the anomaly map's peak pixel lies within `POINTING_TOLERANCE` x the image's shorter side of a
  mask pixel (Chebyshev distance; None without a peak);
- box IoU: the evidence box's IoU with the mask's bounding box (None without a box).

Chance levels: what random choices would score. Patch hit and precision: random distinct tokens of the grid
(precision = share of cells that overlap the mask; hit = 1 - C(n - t, k) / C(n, k) for k kept patches), or, when
the token grid is unknown, the mask's area share a (hit = 1 - (1 - a)^k). Attention pointing: the share of cells
within one cell of the mask. Anomaly pointing: the share of pixels within the tolerance of the mask. Box IoU: the
whole-image box's IoU with the mask's bounding box (a trivial box, not a random one). An empty mask gives no
grounding at all (`measure_grounding` returns None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in original-image pixels, [x0, x1) x [y0, y1)
POINTING_TOLERANCE = 1 / 16  # anomaly pointing: tolerance as a share of the image's shorter side
METRICS: tuple[str, ...] = ("patch_hit", "patch_precision", "attention_pointing", "anomaly_pointing", "box_iou")


@dataclass(frozen=True)
class Grounding:
    """Grounding figures of one answer on a defective image, each with its chance level (None: undefined)."""

    patches: int  # kept patches
    mask_share: float  # the mask's share of the image's pixels
    patch_hit: bool
    patch_precision: float | None
    attention_pointing: bool | None
    anomaly_pointing: bool | None
    box_iou: float | None
    patch_hit_chance: float
    patch_precision_chance: float | None
    attention_pointing_chance: float | None
    anomaly_pointing_chance: float | None
    box_iou_chance: float | None

    def value(self, metric: str) -> float | None:
        """A metric (one of `METRICS`) as a number (True -> 1.0), None when undefined."""
        value = getattr(self, metric)
        return None if value is None else float(value)

    def chance(self, metric: str) -> float | None:
        """A metric's chance level, None when the metric is undefined."""
        return None if getattr(self, metric) is None else getattr(self, f"{metric}_chance")

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Grounding:
        """Build from `to_dict` output; raises `ValueError` on missing or unknown fields."""
        if not isinstance(data, dict) or set(data) != {f.name for f in fields(cls)}:
            raise ValueError(f"a grounding record needs exactly the fields {[f.name for f in fields(cls)]}")
        return cls(**data)


def pixel_span(low: float, high: float, size: int) -> tuple[int, int]:
    """The pixels [start, stop) that the range [low, high) covers in an axis of `size` pixels (start >= stop: none)."""
    return max(0, math.floor(low)), min(size, math.ceil(high))


class MaskCounter:
    """Counts mask pixels inside boxes in O(1) per box (a summed-area table)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = np.asarray(mask, dtype=bool)
        if self.mask.ndim != 2:
            raise ValueError(f"a mask must be 2-D [H, W], not of shape {self.mask.shape}")
        self.height, self.width = self.mask.shape
        self._table = np.zeros((self.height + 1, self.width + 1), dtype=np.int64)
        self._table[1:, 1:] = self.mask.cumsum(0).cumsum(1)

    def count(self, box: Sequence[float]) -> int:
        """Mask pixels covered by `box` (clipped to the image)."""
        x0, x1 = pixel_span(box[0], box[2], self.width)
        y0, y1 = pixel_span(box[1], box[3], self.height)
        if x0 >= x1 or y0 >= y1:
            return 0
        t = self._table
        return int(t[y1, x1] - t[y0, x1] - t[y1, x0] + t[y0, x0])

    def overlaps(self, box: Sequence[float]) -> bool:
        """Whether `box` covers at least one mask pixel."""
        return self.count(box) > 0


def grid_boxes(grid: tuple[int, int], size: tuple[int, int]) -> list[Box]:
    """Row-major pixel boxes of a rows x cols token grid laid evenly over an image of (width, height)."""
    rows, cols = grid
    width, height = size
    return [
        (c * width / cols, r * height / rows, (c + 1) * width / cols, (r + 1) * height / rows)
        for r in range(rows)
        for c in range(cols)
    ]


def touched_cells(counter: MaskCounter, grid: tuple[int, int]) -> np.ndarray:
    """The cells [rows, cols] (bool) of an even grid over the image that overlap the mask."""
    boxes = grid_boxes(grid, (counter.width, counter.height))
    return np.array([counter.overlaps(box) for box in boxes], dtype=bool).reshape(grid)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes (x0, y0, x1, y1) as continuous ranges; 0 when their union has no area."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def clip_box(box: Sequence[float], width: int, height: int) -> Box:
    """The box clipped to the image [0, width) x [0, height)."""
    x0, x1 = sorted((min(max(box[0], 0.0), width), min(max(box[2], 0.0), width)))
    y0, y1 = sorted((min(max(box[1], 0.0), height), min(max(box[3], 0.0), height)))
    return float(x0), float(y0), float(x1), float(y1)


def mask_bounding_box(mask: np.ndarray) -> Box | None:
    """(x0, y0, x1, y1) of a mask's pixels, exclusive ends; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def patch_scores(counter: MaskCounter, patches: Sequence[Sequence[float]]) -> tuple[bool, float | None]:
    """(hit, precision) of kept-patch boxes: any overlaps the mask; the share that do (None without patches)."""
    if not patches:
        return False, None
    overlapping = sum(counter.overlaps(box) for box in patches)
    return overlapping > 0, overlapping / len(patches)


def patch_chances(counter: MaskCounter, kept: int, grid: tuple[int, int] | None) -> tuple[float, float]:
    """(hit chance, precision chance) of `kept` random distinct tokens; the mask's area share without a grid."""
    if grid is None or grid[0] * grid[1] == 0:
        share = float(counter.mask.mean())
        return 1.0 - (1.0 - share) ** kept, share
    cells = touched_cells(counter, grid)
    total, touched = cells.size, int(cells.sum())
    kept_drawn = min(kept, total)
    miss = math.comb(total - touched, kept_drawn) / math.comb(total, kept_drawn)
    return 1.0 - miss, touched / total


def attention_pointing(counter: MaskCounter, attention: np.ndarray) -> tuple[bool, float] | None:
    """(hit, chance) of the map's peak cell against the mask's cells dilated by one cell; None for a flat map."""
    if attention.ndim != 2 or attention.size == 0 or not np.isfinite(attention).all():
        return None
    if float(attention.max()) == float(attention.min()):
        return None  # no peak to point with
    near = ndimage.binary_dilation(touched_cells(counter, attention.shape), structure=np.ones((3, 3), dtype=bool))
    peak = np.unravel_index(int(np.argmax(attention)), attention.shape)
    return bool(near[peak]), float(near.mean())


def point_pointing(mask: np.ndarray, point: tuple[float, float], tolerance: float = POINTING_TOLERANCE):
    """(hit, chance) of a point (x, y) in pixels against the mask dilated by `tolerance` x the shorter side."""
    height, width = mask.shape
    radius = math.ceil(tolerance * min(width, height))
    near = ndimage.binary_dilation(mask, structure=np.ones((2 * radius + 1,) * 2, dtype=bool)) if radius else mask
    x = min(max(math.floor(point[0]), 0), width - 1)
    y = min(max(math.floor(point[1]), 0), height - 1)
    return bool(near[y, x]), float(near.mean())


def box_centre(box: Sequence[float]) -> tuple[float, float]:
    """The centre (x, y) of a box; a stand-in for the anomaly map's peak when only its box is known."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def evidence_iou(counter: MaskCounter, box: Sequence[float] | None) -> tuple[float | None, float | None]:
    """(IoU, chance) of the evidence box, clipped to the image, with the mask's bounding box (None, None: no box).

    The chance level is the whole-image box's IoU with the mask's bounding box.
    """
    if box is None:
        return None, None
    truth = mask_bounding_box(counter.mask)
    whole = (0.0, 0.0, float(counter.width), float(counter.height))
    return box_iou(clip_box(box, counter.width, counter.height), truth), box_iou(whole, truth)


def measure_grounding(
    mask: np.ndarray,
    *,
    patches: Sequence[Sequence[float]] = (),
    attention: Sequence[Sequence[float]] | np.ndarray | None = None,
    anomaly_peak: tuple[float, float] | None = None,
    evidence_box: Sequence[float] | None = None,
    grid: tuple[int, int] | None = None,
) -> Grounding | None:
    """Grounding figures of one answer against a ground-truth mask.

    Args:
        mask: bool [H, W], True on the defect, in original-image pixels.
        patches: The kept patches' pixel boxes (x0, y0, x1, y1).
        attention: The latent -> image attention map, rows x cols over the whole image (None or empty: no map).
        anomaly_peak: (x, y) pixel of the anomaly map's peak (None: no anomaly map).
        evidence_box: The visual memory's evidence box (None: none).
        grid: The query image's token grid (rows, cols) for the patch chance levels; default: the map's shape.

    Returns:
        The figures, or None for an empty mask (nothing to point at: the answer is left out, not scored 0).
    """
    counter = MaskCounter(mask)
    if not counter.mask.any():
        return None
    attention_grid = np.asarray(attention if attention is not None else [], dtype=np.float64)
    if grid is None and attention_grid.ndim == 2 and attention_grid.size:
        grid = attention_grid.shape
    hit, precision = patch_scores(counter, patches)
    hit_chance, precision_chance = patch_chances(counter, len(patches), grid)
    pointing = attention_pointing(counter, attention_grid)
    anomaly = None if anomaly_peak is None else point_pointing(counter.mask, anomaly_peak)
    iou, iou_chance = evidence_iou(counter, evidence_box)
    return Grounding(
        patches=len(patches),
        mask_share=float(counter.mask.mean()),
        patch_hit=hit,
        patch_precision=precision,
        attention_pointing=None if pointing is None else pointing[0],
        anomaly_pointing=None if anomaly is None else anomaly[0],
        box_iou=iou,
        patch_hit_chance=hit_chance,
        patch_precision_chance=None if precision is None else precision_chance,
        attention_pointing_chance=None if pointing is None else pointing[1],
        anomaly_pointing_chance=None if anomaly is None else anomaly[1],
        box_iou_chance=iou_chance,
    )


def inspection_grounding(mask: np.ndarray, inspection, evidence=None) -> Grounding | None:
    """`measure_grounding` of an `Inspection`: its kept patches, its attention map and the anomaly evidence.

    Args:
        mask: bool [H, W] ground truth at the inspected image's size.
        inspection: The `Inspection` (its `injected` boxes, `attention_map` and `anomaly` summary are read).
        evidence: The visual memory's `AnomalyEvidence` for the image, when known: its map's peak and its box are
            used. Without it, the summary's box is the evidence box and its centre stands in for the peak (an
            `Inspection` does not carry the map's peak).
    """
    peak = box = None
    if evidence is not None:
        row, col = np.unravel_index(int(np.argmax(evidence.anomaly_map)), evidence.anomaly_map.shape)
        peak, box = (float(col), float(row)), tuple(evidence.box)
    elif inspection.anomaly is not None:
        box = tuple(inspection.anomaly.box)
        peak = inspection.anomaly.peak or box_centre(box)
    return measure_grounding(
        mask,
        patches=[p.box for p in inspection.injected],
        attention=inspection.attention_map,
        anomaly_peak=peak,
        evidence_box=box,
    )
