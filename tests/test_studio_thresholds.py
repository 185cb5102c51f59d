"""The threshold panel: histogram with the lines, the verdict flips a move would cause, curated writes."""

import pytest
from test_memory_bank import texture
from test_thresholds import defective

from demo.handlers import StudioHandlers
from demo.threshold_panel import ThresholdHandlers
from reason_iad.config import AppConfig, MemoryConfig
from reason_iad.errors import UserError
from reason_iad.memory import open_memory
from reason_iad.memory.backbone import EfficientNetLiteBackbone
from reason_iad.pipeline import Pipeline


@pytest.fixture
def panel(tmp_path):
    config = MemoryConfig(image_size=64, views_per_exemplar=2)
    memory = open_memory(tmp_path / "db", config, EfficientNetLiteBackbone(image_size=64))
    memory.add_exemplars("D", "c", [texture(i) for i in range(4)])
    for seed in (20, 21):
        memory.inspect(defective(seed), "D", "c")
    memory.inspect(texture(30), "D", "c")
    pipeline = Pipeline(None, AppConfig(), memory=memory, exemplars=memory.exemplar_store)
    return ThresholdHandlers(StudioHandlers(pipeline, [], curators={"ana"}))


def test_the_view_marks_the_lines_and_counts_the_recent_verdicts_a_move_changes(panel):
    figure, summary, history = panel.view("D / c", None)
    names = [trace.name for trace in figure.data]
    assert names[:2] == ["normal exemplars (leave-one-out)", "recent inspections"]
    assert "suspicious in force" in names and "proposed" not in names and history == []
    assert len(figure.layout.shapes) == 3  # fitted, in force, anomalous in force
    assert "Fitted:" in summary and "Proposed" not in summary
    figure, summary, _ = panel.view("D / c", 0.99)  # a line above every recent score
    assert "proposed" in [trace.name for trace in figure.data] and len(figure.layout.shapes) == 4
    assert "2 of 3 recent inspections would change verdict" in summary  # both defective ones read normal then
    assert "-> normal" in summary


def test_moving_the_threshold_needs_a_curator_and_is_recorded(panel):
    with pytest.raises(UserError, match="log in"):
        panel.save("D / c", 0.6, "", None)
    with pytest.raises(UserError, match="curator list"):
        panel.save("D / c", 0.6, "", "mallory")
    assert panel.view("D / c", None)[2] == []  # refused: nothing written
    assert panel.save("D / c", 0.6, "looser", "ana").startswith("Saved change 1")
    assert panel.reset("D / c", "ana").startswith("Saved change 2")
    assert panel.restore("D / c", 1, "ana").startswith("Restored change 1 as change 3")
    _, summary, history = panel.view("D / c", None)
    assert [row[0] for row in history] == [3, 2, 1] and history[1][1] == "fitted" and history[2][4] == "looser"
    assert "In force:** curated" in summary
    with pytest.raises(UserError, match="choose a category"):
        panel.view(None, None)
    with pytest.raises(UserError, match="number of the change"):
        panel.restore("D / c", None, "ana")


def test_without_a_visual_memory_the_panel_says_so(panel):
    panel.pipeline.memory = None
    with pytest.raises(UserError, match="visual memory is off"):
        panel.view("D / c", 0.5)
