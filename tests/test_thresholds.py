"""A curator's "suspicious" threshold: versioned with author and restorable, applied to verdicts, previewed."""

import numpy as np
import pytest
from PIL import Image
from test_memory_bank import texture

from reason_iad.config import MemoryConfig
from reason_iad.errors import UserError
from reason_iad.memory.backbone import EfficientNetLiteBackbone
from reason_iad.memory.calibration import fit_calibration
from reason_iad.memory.detector import VisualMemory
from reason_iad.memory.thresholds import ThresholdStore, raw_at, verdict_changes

CONFIG = MemoryConfig(image_size=64, views_per_exemplar=2, coreset_min_patches=100, coreset_ratio=0.5)
FITTED = fit_calibration([1.0, 1.1, 1.2, 1.3, 2.0], false_positive_rate=0.2)


@pytest.fixture(scope="module")
def backbone():
    return EfficientNetLiteBackbone(image_size=64)


def test_changes_are_versioned_with_their_author_and_restorable(tmp_path):
    store = ThresholdStore(tmp_path / "db")
    start = store.table.version
    assert store.current("D", "c") is None  # nothing curated: the fitted threshold applies
    store.set("D", "c", 1.5, "ana", "too many false alarms")
    store.set("D", "other", 9.0, "bo")
    store.set("D", "c", None, "bo", "back")
    assert store.current("D", "c") is None and store.current("D", "other") == 9.0
    restored = store.restore("D", "c", 1, "cy")
    assert store.current("D", "c") == 1.5 and restored.number == 3 and restored.author == "cy"
    history = store.history("D", "c")
    assert [(c.number, c.threshold, c.author) for c in history] == [(1, 1.5, "ana"), (2, None, "bo"), (3, 1.5, "cy")]
    assert store.table.version == start + 4  # one version per change
    with pytest.raises(UserError, match="needs an author"):
        store.set("D", "c", 1.2, " ")
    with pytest.raises(UserError, match="positive raw score"):
        store.set("D", "c", float("nan"), "ana")
    with pytest.raises(UserError, match="no threshold change number 7"):
        store.restore("D", "c", 7, "ana")
    assert store.table.version == start + 4 and store.current("D", "c") == 1.5  # refused: nothing written


def test_a_moved_threshold_is_calibrated_0_5_and_counts_the_verdicts_it_flips():
    assert FITTED.calibrate(FITTED.threshold) == pytest.approx(0.5)
    lower = FITTED.with_threshold(raw_at(FITTED, 0.3))
    assert lower.threshold < FITTED.threshold and lower.calibrate(lower.threshold) == pytest.approx(0.5)
    assert FITTED.calibrate(raw_at(FITTED, 0.3)) == pytest.approx(0.3)  # raw_at inverts the fitted scale
    assert lower.normal_level == FITTED.normal_level
    with pytest.raises(UserError, match="above the normal level"):
        FITTED.with_threshold(FITTED.normal_level)
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        raw_at(FITTED, 1.0)
    between = (lower.threshold + FITTED.threshold) / 2  # normal under the fitted line, suspicious under the lower
    scores = [FITTED.normal_level, between, between, FITTED.threshold + 100 * FITTED.spread]
    assert verdict_changes(scores, FITTED, lower) == {"normal -> suspicious": 2}
    assert verdict_changes(scores, lower, FITTED) == {"suspicious -> normal": 2}
    assert verdict_changes(scores, FITTED, FITTED) == {}


def defective(seed: int):
    pixels = np.asarray(texture(seed)).copy()
    pixels[20:36, 20:36] = 255
    return Image.fromarray(pixels)


def test_the_memory_applies_the_curated_threshold_and_remembers_recent_scores(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    memory.add_exemplars("D", "c", [texture(i) for i in range(4)])
    query = defective(9)
    before = memory.inspect(query, "D", "c")
    view = memory.threshold_view("D", "c")
    assert before.verdict != "normal" and not view.curated and view.threshold == view.fitted.threshold
    assert view.recent_scores == (pytest.approx(before.raw_score),) and len(view.exemplar_scores) >= 2
    above_it = (1.0 + float(view.on_fitted_scale(before.raw_score))) / 2  # the line moves above this image
    change = memory.set_threshold("D", "c", above_it, "ana", "this texture varies more")
    after = memory.inspect(query, "D", "c")
    assert change.threshold > before.raw_score and after.verdict == "normal" and after.score < 0.5
    assert memory.bank_info("D", "c").calibration.threshold == pytest.approx(change.threshold)
    assert memory.threshold_view("D", "c").curated
    memory.set_threshold("D", "c", None, "bo")
    assert memory.inspect(query, "D", "c").score == pytest.approx(before.score)
    assert memory.bank_info("D", "c").calibration.threshold == pytest.approx(view.fitted.threshold)
    assert len(memory.threshold_view("D", "c").recent_scores) == 3


def test_a_threshold_is_only_used_where_it_lies_above_the_normal_level(tmp_path, backbone):
    memory = VisualMemory(tmp_path / "db", CONFIG, backbone)
    memory.add_exemplars("D", "c", [texture(i) for i in range(3)])
    fitted = memory.threshold_view("D", "c").fitted
    memory.thresholds.set("D", "c", fitted.normal_level / 2, "ana")  # e.g. set before the bank was rebuilt
    assert memory.bank_info("D", "c").calibration.threshold == pytest.approx(fitted.threshold)
    assert np.isfinite(memory.inspect(texture(5), "D", "c").score)
