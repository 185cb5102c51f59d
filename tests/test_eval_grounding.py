import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from reason_iad.eval.answers import AnswerRecord, read_answers
from reason_iad.eval.grounding import (
    Grounding,
    MaskCounter,
    inspection_grounding,
    measure_grounding,
    pixel_span,
)
from reason_iad.eval.grounding_report import grounding_markdown
from reason_iad.eval.grounding_scores import score_grounding
from reason_iad.eval.masks import load_mask, mask_candidates, resolve_mask_path
from reason_iad.types import AnomalySummary, InjectedPatch, Inspection, Timings


def _mask(height=40, width=80, x0=60, y0=20, x1=80, y1=40):
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _dot(height=10, width=10, x=5, y=5):
    mask = np.zeros((height, width), dtype=bool)
    mask[y, x] = True
    return mask


# ---------------------------------------------------------------- pixel rule and box overlap


def test_a_box_covers_the_pixels_its_half_open_range_meets():
    assert pixel_span(2.0, 5.0, 10) == (2, 5)  # [2, 5): pixels 2, 3, 4
    assert pixel_span(2.5, 5.01, 10) == (2, 6)  # a fraction of a pixel counts
    assert pixel_span(-3, 12, 10) == (0, 10)  # clipped to the image


@pytest.mark.parametrize(
    "box, overlaps",
    [
        ((0, 0, 5, 10), False),  # x1 == the mask's column: touches its left edge only
        ((0, 0, 5.01, 10), True),
        ((6, 0, 10, 10), False),  # starts right after the mask's column
        ((5.99, 0, 10, 10), True),  # starts inside the mask's pixel
        ((0, 0, 10, 5), False),  # y1 == the mask's row
        ((5, 5, 6, 6), True),  # exactly the mask's pixel
        ((5, 5, 5, 6), False),  # no area
        ((6, 6, 5, 5), False),  # reversed corners cover nothing
    ],
)
def test_edge_touching_boxes_do_not_overlap(box, overlaps):
    assert MaskCounter(_dot()).overlaps(box) is overlaps


def test_boxes_partly_outside_the_image_are_clipped_and_boxes_outside_overlap_nothing():
    mask = np.zeros((40, 80), dtype=bool)
    mask[0, 0] = mask[39, 79] = True
    counter = MaskCounter(mask)
    assert counter.overlaps((-10, -10, 1, 1)) and counter.overlaps((70, 30, 500, 500))
    assert not counter.overlaps((80, 0, 200, 40)) and not counter.overlaps((-20, -20, 0, 0))
    assert counter.count((-100, -100, 1000, 1000)) == 2


# ---------------------------------------------------------------- kept patches


def test_patch_hit_and_precision_count_overlapping_kept_patches():
    mask = _mask()  # 40 x 80 image, defect in the bottom-right 20 x 20 cell
    hit = measure_grounding(mask, patches=[(60, 20, 80, 40), (0, 0, 20, 20)])
    assert hit.patch_hit is True and hit.patch_precision == 0.5 and hit.patches == 2
    both = measure_grounding(mask, patches=[(60, 20, 80, 40), (50, 10, 61, 21)])
    assert both.patch_precision == 1.0
    miss = measure_grounding(mask, patches=[(0, 0, 20, 20), (40, 20, 60, 40)])  # the second touches the edge only
    assert miss.patch_hit is False and miss.patch_precision == 0.0


def test_no_kept_patches_is_a_miss_with_undefined_precision():
    result = measure_grounding(_mask(), patches=[])
    assert result.patch_hit is False and result.patch_precision is None and result.patch_hit_chance == 0.0
    assert result.value("patch_precision") is None and result.chance("patch_precision") is None


def test_patch_chance_is_drawing_random_tokens_of_the_grid():
    attention = np.zeros((2, 4))
    attention[0, 0] = 1.0
    result = measure_grounding(_mask(), patches=[(0, 0, 20, 20), (20, 0, 40, 20)], attention=attention)
    # 8 cells of 20 x 20, one overlaps the mask: precision chance 1/8, hit chance 1 - C(7, 2) / C(8, 2)
    assert result.patch_precision_chance == pytest.approx(1 / 8)
    assert result.patch_hit_chance == pytest.approx(1 - math.comb(7, 2) / math.comb(8, 2))


def test_without_a_token_grid_the_patch_chance_is_the_mask_area_share():
    result = measure_grounding(_mask(), patches=[(0, 0, 20, 20), (20, 0, 40, 20)])
    share = 400 / 3200
    assert result.mask_share == result.patch_precision_chance == pytest.approx(share)
    assert result.patch_hit_chance == pytest.approx(1 - (1 - share) ** 2)


# ---------------------------------------------------------------- attention pointing (non-square image)


def _peak_at(row, col, grid=(2, 4)):
    attention = np.full(grid, 0.1)
    attention[row, col] = 0.9
    return attention


@pytest.mark.parametrize(
    "peak, points",
    [
        ((1, 3), True),  # the cell holding the defect
        ((0, 2), True),  # a diagonal neighbour: within one token
        ((1, 2), True),
        ((1, 1), False),  # two cells away
        ((0, 0), False),
    ],
)
def test_attention_pointing_is_the_peak_token_within_one_token_of_the_mask(peak, points):
    result = measure_grounding(_mask(), attention=_peak_at(*peak))
    assert result.attention_pointing is points
    assert result.attention_pointing_chance == pytest.approx(4 / 8)  # cells (0,2), (0,3), (1,2), (1,3)


def test_attention_rows_run_down_the_image_and_columns_across_it():
    tall = _mask(height=80, width=40, x0=20, y0=60, x1=40, y1=80)  # bottom-right cell of a 4 x 2 grid
    assert measure_grounding(tall, attention=_peak_at(3, 1, grid=(4, 2))).attention_pointing is True
    assert measure_grounding(tall, attention=_peak_at(0, 1, grid=(4, 2))).attention_pointing is False


def test_a_flat_or_missing_attention_map_has_no_pointing():
    assert measure_grounding(_mask(), attention=np.full((2, 4), 0.25)).attention_pointing is None
    result = measure_grounding(_mask(), attention=())
    assert result.attention_pointing is None and result.attention_pointing_chance is None


# ---------------------------------------------------------------- anomaly pointing and box IoU


def test_anomaly_pointing_uses_a_tolerance_of_a_sixteenth_of_the_shorter_side():
    mask = _mask()  # defect from x = 60; tolerance ceil(40 / 16) = 3 pixels
    assert measure_grounding(mask, anomaly_peak=(70, 30)).anomaly_pointing is True
    assert measure_grounding(mask, anomaly_peak=(57, 30)).anomaly_pointing is True  # 3 pixels left of the mask
    assert measure_grounding(mask, anomaly_peak=(56.5, 30)).anomaly_pointing is False  # pixel 56: 4 away
    far = measure_grounding(mask, anomaly_peak=(5, 5))
    assert far.anomaly_pointing is False and far.anomaly_pointing_chance == pytest.approx(23 * 23 / 3200)
    assert measure_grounding(mask).anomaly_pointing is None


def test_box_iou_against_the_masks_bounding_box_with_the_whole_image_as_chance():
    mask = _mask()
    exact = measure_grounding(mask, evidence_box=(60, 20, 80, 40))
    assert exact.box_iou == 1.0 and exact.box_iou_chance == pytest.approx(400 / 3200)
    assert measure_grounding(mask, evidence_box=(50, 20, 70, 40)).box_iou == pytest.approx(200 / 600)
    assert measure_grounding(mask, evidence_box=(60, 20, 200, 90)).box_iou == 1.0  # clipped to the image
    assert measure_grounding(mask, evidence_box=(0, 0, 20, 20)).box_iou == 0.0
    assert measure_grounding(mask).box_iou is None


def test_an_empty_mask_gives_no_grounding_at_all():
    empty = np.zeros((40, 80), dtype=bool)
    assert (
        measure_grounding(
            empty, patches=[(0, 0, 80, 40)], attention=_peak_at(0, 0), anomaly_peak=(1, 1), evidence_box=(0, 0, 80, 40)
        )
        is None
    )


# ---------------------------------------------------------------- from an inspection


def _inspection(patches=(), attention=(), anomaly=None):
    injected = tuple(InjectedPatch(token_index=i, box=box, latent=0, step=1) for i, box in enumerate(patches))
    return Inspection(
        answer="A",
        answer_text="Yes.",
        option_probs={"A": 1.0},
        rationale="",
        mode="full",
        model="fake",
        steps=(),
        best_step=0,
        injected=injected,
        attention_map=attention,
        timings=Timings(0, 0, 0, 0, 0),
        anomaly=anomaly,
    )


def test_an_inspection_is_measured_by_its_patches_attention_and_anomaly_box():
    summary = AnomalySummary(0.9, 1.0, "anomalous", "bottom right", (62, 22, 78, 38), "text")
    attention = tuple(tuple(row) for row in _peak_at(1, 3).tolist())
    result = inspection_grounding(_mask(), _inspection([(60, 20, 80, 40)], attention, summary))
    assert result.patch_hit and result.attention_pointing and result.anomaly_pointing  # box centre (70, 30)
    assert result.box_iou == pytest.approx(256 / 400)
    off_centre = AnomalySummary(0.9, 1.0, "anomalous", "left", (0, 0, 20, 40), "text")
    assert inspection_grounding(_mask(), _inspection(anomaly=off_centre)).anomaly_pointing is False


def test_the_evidence_map_peak_is_preferred_to_the_box_centre():
    anomaly_map = np.zeros((40, 80), dtype=np.float32)
    anomaly_map[30, 70] = 1.0  # peak on the defect, box elsewhere
    evidence = SimpleNamespace(anomaly_map=anomaly_map, box=(0, 0, 20, 40))
    result = inspection_grounding(_mask(), _inspection(), evidence)
    assert result.anomaly_pointing is True and result.box_iou == 0.0


# ---------------------------------------------------------------- records, scores, report


def _record(index, subtask="Anomaly Detection", grounding=None, answer="A", is_normal=False):
    return AnswerRecord(
        id=f"img{index}#0",
        image=f"img{index}",
        dataset="SynthIAD",
        category="bottle",
        subtask=subtask,
        is_normal=is_normal,
        correct_answer="A",
        readout_answer=answer,
        parsed_answer=answer,
        grounding=grounding,
    )


def test_grounding_round_trips_through_the_answers_file_and_old_lines_still_read(tmp_path):
    grounding = measure_grounding(_mask(), patches=[(60, 20, 80, 40)], attention=_peak_at(1, 3))
    path = tmp_path / "answers.jsonl"
    old = {k: v for k, v in json.loads(_record(1).to_line()).items() if k != "grounding"}
    path.write_bytes(_record(0, grounding=grounding).to_line() + (json.dumps(old) + "\n").encode())
    first, second = read_answers(path).records
    assert isinstance(first.grounding, Grounding) and first.grounding == grounding and second.grounding is None
    with pytest.raises(ValueError, match="exactly the fields"):
        Grounding.from_dict({**grounding.to_dict(), "extra": 1})


def test_undefined_figures_are_left_out_of_the_means_not_counted_as_zero():
    mask = _mask()
    with_patches = measure_grounding(mask, patches=[(60, 20, 80, 40), (0, 0, 20, 20)])  # precision 0.5
    without = measure_grounding(mask, patches=[])  # precision undefined, hit False
    scores = score_grounding(
        [
            _record(0, grounding=with_patches),
            _record(1, grounding=without, answer="B"),
            _record(2),
            _record(3, is_normal=True),
        ]
    )
    overall = scores.overall
    assert overall.answers == 2 and overall.accuracy == 50.0 and scores.ungrounded_defective == 1
    assert overall.metrics["patch_precision"].value == pytest.approx(50.0)
    assert overall.metrics["patch_precision"].count == 1
    assert overall.metrics["patch_hit"].value == pytest.approx(50.0) and overall.metrics["patch_hit"].count == 2
    assert overall.metrics["box_iou"].value is None


def test_scores_are_grouped_per_subtask_with_object_tags_merged():
    grounding = measure_grounding(_mask(), patches=[(60, 20, 80, 40)])
    records = [
        _record(0, "Object Structure", grounding),
        _record(1, "Object Details", grounding),
        _record(2, "Defect Localization", grounding),
    ]
    names = [row.name for row in score_grounding(records).by("subtask")]
    assert names == ["Defect Localization", "Object Analysis"]
    assert [r.answers for r in score_grounding(records).by("subtask")] == [1, 2]


def test_the_markdown_shows_value_and_chance_and_dashes_without_grounding():
    grounding = measure_grounding(_mask(), patches=[(60, 20, 80, 40)], attention=_peak_at(1, 3))
    text = grounding_markdown(score_grounding([_record(0, grounding=grounding)]))
    assert "| **All** | 1 | 100.0 | 100.0 (12.5) | 100.0 (12.5) | 100.0 (50.0) | – | – |" in text
    old = grounding_markdown(score_grounding([_record(0)]))
    assert "| **All** | 0 | – | – | – | – | – | – |" in old and "1 answers on defective images" in old


# ---------------------------------------------------------------- mask files


def test_mask_paths_resolve_relative_to_the_root_then_below_the_key(tmp_path):
    key = "MVTec-AD/bottle/test/broken/000.png"
    assert mask_candidates(key, "ground_truth/broken/000_mask.png") == [
        "ground_truth/broken/000_mask.png",
        "MVTec-AD/bottle/test/ground_truth/broken/000_mask.png",
        "MVTec-AD/bottle/ground_truth/broken/000_mask.png",
    ]
    target = tmp_path / "MVTec-AD/bottle/ground_truth/broken/000_mask.png"
    target.parent.mkdir(parents=True)
    Image.new("L", (8, 8)).save(target)
    assert resolve_mask_path(tmp_path, key, "ground_truth/broken/000_mask.png") == target.resolve()
    assert resolve_mask_path(tmp_path, key, "") is None
    assert resolve_mask_path(tmp_path, key, "../../../etc/passwd") is None
    assert resolve_mask_path(tmp_path, key, "ground_truth/missing.png") is None


def test_masks_are_thresholded_resized_to_the_image_and_unreadable_ones_are_none(tmp_path):
    picture = np.zeros((4, 8), dtype=np.uint8)
    picture[:, 4:] = 255
    Image.fromarray(picture).save(tmp_path / "mask.png")
    mask = load_mask(tmp_path / "mask.png", (16, 8))
    assert mask.shape == (8, 16) and mask.dtype == bool and mask[:, 8:].all() and not mask[:, :8].any()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert load_mask(tmp_path / "broken.png", (16, 8)) is None
