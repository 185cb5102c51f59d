"""Evidence outputs: regions, peak boxes, visual prompts, the text line, token priors and calibration."""

import numpy as np
import pytest
import torch
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.memory.calibration import fit_calibration
from reason_iad.memory.evidence import (
    REGIONS,
    AnomalyEvidence,
    draw_evidence,
    evidence_text,
    focus_crop,
    locate_peak,
    region_name,
    token_prior,
)


def make_evidence(anomaly_map: np.ndarray, score: float = 0.91, verdict: str = "suspicious") -> AnomalyEvidence:
    region, box, blob = locate_peak(anomaly_map)
    return AnomalyEvidence(
        anomaly_map=anomaly_map.astype(np.float32),
        raw_score=3.2,
        score=score,
        verdict=verdict,
        region=region,
        box=box,
        region_mask=blob,
        dataset="SynthIAD",
        category="tile",
        backbone="test",
    )


def blob_map(width=90, height=60, box=(6, 4, 18, 14), value=1.0):
    values = np.zeros((height, width), dtype=np.float32)
    x0, y0, x1, y1 = box
    values[y0:y1, x0:x1] = value
    return values


def test_region_names_follow_the_3x3_grid():
    assert region_name(1, 1, 90, 60) == "top left"
    assert region_name(45, 30, 90, 60) == "center"
    assert region_name(89, 59, 90, 60) == "bottom right"
    assert region_name(45, 5, 90, 60) == "top"
    assert len(REGIONS) == 9


def test_locate_peak_finds_the_blob_and_its_box():
    values = blob_map()
    values[40:45, 70:80] = 0.4  # a weaker second blob is not part of the peak's region
    region, box, blob = locate_peak(values)
    assert region == "top left"
    assert box == (6, 4, 18, 14)
    assert blob.sum() == 12 * 10


def test_text_line_names_the_verdict_region_and_score():
    evidence = make_evidence(blob_map())
    assert evidence_text(evidence) == "verdict: suspicious; most anomalous region: top left, score 0.91"


@pytest.mark.parametrize("mode", ["highlight", "contour", "box"])
def test_visual_prompts_draw_inside_the_region_only_on_a_copy(mode):
    image = Image.new("RGB", (90, 60), (90, 90, 90))
    evidence = make_evidence(blob_map(box=(40, 20, 60, 40)))
    drawn = draw_evidence(image, evidence, mode)
    assert image.getpixel((50, 30)) == (90, 90, 90)  # the input is untouched
    changed = np.any(np.asarray(drawn) != np.asarray(image), axis=-1)
    ys, xs = np.nonzero(changed)
    assert changed.any()
    assert xs.min() >= 40 and xs.max() < 60 and ys.min() >= 20 and ys.max() < 40
    assert np.asarray(drawn)[ys[0], xs[0], 0] > 90  # red-ish


def test_visual_prompt_refuses_a_mismatched_image_or_mode():
    evidence = make_evidence(blob_map())
    with pytest.raises(ValueError):
        draw_evidence(Image.new("RGB", (10, 10)), evidence, "box")
    with pytest.raises(ValueError):
        draw_evidence(Image.new("RGB", (90, 60)), evidence, "sparkles")


def test_token_prior_matches_a_hand_computed_case():
    values = np.zeros((4, 6), dtype=np.float32)
    values[0, 0], values[1, 1], values[3, 5] = 1.0, 0.5, 0.25
    evidence = make_evidence(values)
    boxes = torch.tensor(
        [
            [0, 0, 2, 2],  # (1 + 0.5) / 4
            [0.4, 0.2, 1.6, 1.1],  # widened to whole pixels [0, 2) x [0, 2): same
            [5, 3, 6, 4],  # one pixel: 0.25
            [4, 2, 9, 9],  # clipped to [4, 6) x [2, 4): 0.25 / 4
            [3, 1, 3, 1],
        ]
    )  # empty: widened to the single pixel (3, 1): 0
    prior = token_prior(evidence, boxes)
    assert isinstance(prior, torch.Tensor) and prior.dtype == torch.float32
    assert torch.allclose(prior, torch.tensor([0.375, 0.375, 0.25, 0.0625, 0.0]))
    as_numpy = token_prior(evidence, boxes.numpy())
    assert isinstance(as_numpy, np.ndarray) and np.allclose(as_numpy, prior.numpy())


def test_calibration_reads_normal_suspicious_anomalous():
    scores = [1.0, 1.1, 0.9, 1.0, 1.2, 1.05, 0.95, 1.0, 1.1, 1.3]
    calibration = fit_calibration(scores, false_positive_rate=0.1)
    assert calibration.normal_level == pytest.approx(1.025)
    assert calibration.threshold == pytest.approx(np.quantile(scores, 0.9))
    assert calibration.calibrate(0.5) == 0.0
    assert calibration.calibrate(calibration.threshold) == pytest.approx(0.5)
    assert calibration.calibrate(calibration.anomalous_threshold) == pytest.approx(0.75)
    assert 0.99 < calibration.calibrate(100.0) <= 1.0
    assert [calibration.verdict(v) for v in (0.2, 0.5, 0.74, 0.75, 0.99)] == [
        "normal",
        "suspicious",
        "suspicious",
        "anomalous",
        "anomalous",
    ]
    raw = np.array([[0.0, calibration.threshold], [calibration.anomalous_threshold, 1.025]])
    mapped = calibration.calibrate(raw)
    assert mapped.dtype == np.float32 and np.allclose(mapped, [[0, 0.5], [0.75, 0]])


def test_calibration_needs_two_finite_scores_and_floors_its_spread():
    with pytest.raises(UserError):
        fit_calibration([1.0])
    with pytest.raises(UserError):
        fit_calibration([1.0, float("nan")])
    flat = fit_calibration([2.0, 2.0, 2.0])
    assert flat.spread > 0 and flat.threshold > 2.0


@pytest.mark.parametrize("box", [(10, 10, 20, 20), (0, 0, 4, 4), (150, 60, 160, 100), (0, 0, 160, 100)])
def test_focus_crop_is_a_square_inside_the_image_around_the_box(box):
    image = Image.new("RGB", (160, 100))
    image.putpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), (255, 0, 0))
    crop = focus_crop(image, box, min_fraction=0.4)
    assert crop.width == crop.height and 40 <= crop.width <= 100
    assert (255, 0, 0) in {crop.getpixel((x, y)) for x in range(crop.width) for y in range(crop.height)}
    big = focus_crop(image, (60, 30, 100, 70), min_fraction=0.1, margin=1.0)
    assert big.size == (40, 40)
