"""The visual memory finds defects: a bright square on a flat texture, and procedural SynthIAD defects."""

import numpy as np
import pytest
from PIL import Image

from reason_iad.config import MemoryConfig
from reason_iad.memory.backbone import EfficientNetLiteBackbone
from reason_iad.memory.detector import VisualMemory
from reason_iad.memory.evidence import draw_evidence, evidence_text, token_prior
from reason_iad.synth import render_sample, sample_rng

SIZE = 128


@pytest.fixture(scope="module")
def backbone():
    return EfficientNetLiteBackbone(image_size=SIZE)


def flat_texture(seed: int, size: int = 160) -> Image.Image:
    rng = np.random.default_rng(seed)
    values = 110 + 12 * rng.standard_normal((size, size))
    return Image.fromarray(np.repeat(values[..., None], 3, axis=-1).clip(0, 255).astype(np.uint8))


def test_a_bright_square_on_a_flat_texture_is_found(tmp_path, backbone):
    memory = VisualMemory(tmp_path, MemoryConfig(image_size=SIZE, views_per_exemplar=2), backbone)
    memory.add_exemplars("toy", "flat", [flat_texture(seed) for seed in range(3)])
    query = np.array(flat_texture(10))
    query[100:130, 20:50] = 250  # the square: x 20..50, y 100..130 (bottom left)
    evidence = memory.inspect(Image.fromarray(query), "toy", "flat")
    normal = memory.inspect(flat_texture(11), "toy", "flat")
    y, x = np.unravel_index(int(np.argmax(evidence.anomaly_map)), evidence.anomaly_map.shape)
    assert 100 <= y < 130 and 20 <= x < 50
    assert evidence.region == "bottom left" and evidence.verdict == "anomalous" and evidence.score > 0.9
    x0, y0, x1, y1 = evidence.box
    assert x0 <= 35 < x1 and y0 <= 115 < y1 and (x1 - x0) * (y1 - y0) < 0.25 * 160 * 160
    assert normal.verdict == "normal" and normal.raw_score < evidence.raw_score
    assert evidence.anomaly_map.dtype == np.float32 and evidence.anomaly_map.shape == (160, 160)
    assert 0.0 <= evidence.anomaly_map.min() and evidence.anomaly_map.max() <= 1.0
    assert evidence_text(evidence).endswith(f"most anomalous region: bottom left, score {evidence.score:.2f}")
    assert evidence_text(evidence).startswith(f"verdict: {evidence.verdict}; ")
    boxes = np.array([[20, 100, 50, 130], [110, 10, 150, 40]])
    inside, outside = token_prior(evidence, boxes)
    assert inside > 0.9 and outside < 0.2
    for mode in ("highlight", "contour", "box"):
        drawn = np.asarray(draw_evidence(Image.fromarray(query), evidence, mode))
        changed = np.any(drawn != query, axis=-1)
        assert changed[y0:y1, x0:x1].any()


CASES = [("carpet", "hole"), ("tile", "oil"), ("pill", "contamination")]
TOLERANCE = 8  # pixels: one backbone stride at the default 256-px input


@pytest.fixture(scope="module")
def default_backbone():
    return EfficientNetLiteBackbone(image_size=MemoryConfig().image_size)


@pytest.mark.parametrize("category,defect", CASES)
def test_procedural_defects_peak_inside_the_mask_and_scores_separate(tmp_path, default_backbone, category, defect):
    memory = VisualMemory(tmp_path, MemoryConfig(views_per_exemplar=2), default_backbone)
    exemplars = [render_sample(category, None, sample_rng(0, category, i, "template"), SIZE).image for i in range(4)]
    memory.add_exemplars("SynthIAD", category, exemplars)
    normal_scores, defect_scores = [], []
    for i in range(2):
        normal = render_sample(category, None, sample_rng(5, category, i, "normal"), SIZE)
        normal_scores.append(memory.inspect(normal.image, "SynthIAD", category).raw_score)
        sample = render_sample(category, defect, sample_rng(5, category, i, "defect"), SIZE)
        evidence = memory.inspect(sample.image, "SynthIAD", category)
        defect_scores.append(evidence.raw_score)
        mask = np.asarray(sample.mask) > 0
        raw_map = memory.score(sample.image, "SynthIAD", category).at_size(SIZE, SIZE)
        y, x = np.unravel_index(int(np.argmax(raw_map)), mask.shape)
        near = mask[max(0, y - TOLERANCE) : y + TOLERANCE + 1, max(0, x - TOLERANCE) : x + TOLERANCE + 1]
        assert near.any(), f"{defect} #{i}: the map peaks at ({x}, {y}), off the mask"
        assert (evidence.region_mask & mask).any()
    assert min(defect_scores) > max(normal_scores)
