"""The studio's event renderer, ground truth and cited evidence, tested as plain functions (no server, no browser)."""

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo import render
from demo.events import (
    InspectRun,
    InspectView,
    event_outputs,
    highlighted_patch,
    patch_view,
    run_view,
    starting_outputs,
)
from demo.gallery import load_gallery
from demo.ground_truth import GroundTruth, GroundTruthIndex, patches_on_defect, pixel_digest
from demo.handlers import ReasoningSettings, uploaded_image
from demo.overlay import LAYERS, Look, explanation_view, heat
from reason_iad.config import ReasoningConfig
from reason_iad.paths import PROJECT_ROOT
from reason_iad.types import AnomalyEvidence, AnomalySummary, InjectedPatch, Inspection, ReasoningStep, Timings

VIEW = InspectView(**{f.name: f.name for f in dataclasses.fields(InspectView)})  # components stand-ins: names
ON = InjectedPatch(0, (8.0, 8.0, 16.0, 16.0), 0, 1, 0.02)  # inside the defect
EDGE = InjectedPatch(1, (0.0, 8.0, 8.0, 16.0), 1, 1, 0.01)  # ends where the defect starts: touches, no overlap
OFF = InjectedPatch(2, (40.0, 40.0, 56.0, 56.0), 0, 2, 0.005)


def _defect_mask(size=64):
    mask = np.zeros((size, size), dtype=bool)
    mask[8:24, 8:24] = True  # x, y in [8, 24)
    return mask


def _step(number, patches=()):
    return ReasoningStep(
        number,
        0.1 * number,
        {"answer": 0.2, "latent": 0.1},
        (0.5, 0.4),
        {"A": 0.6, "B": 0.4},
        0.1 * number,
        tuple(patches),
        tuple(patches),
        0.01,
        1.0,
    )


def _inspection(patches=(ON, EDGE, OFF), anomaly=None):
    from reason_iad.types import UsedKnowledge

    knowledge = (
        UsedKnowledge("test/wood/hole", "Hole", 0.8, False),
        UsedKnowledge("test/wood/good", "Good", 0.1, True),
    )
    steps = (_step(1, patches[:1]), _step(2, patches))
    return Inspection(
        "A",
        "Yes.",
        {"A": 0.7, "B": 0.3},
        "A dark hole.",
        "full",
        "tiny",
        steps,
        2,
        tuple(patches),
        ((0.0, 1.0), (0.0, 0.0)),
        Timings(1, 2, 1, 1, 5),
        knowledge=knowledge,
        anomaly=anomaly,
    )


def _run(mask=None, defective=True):
    truth = GroundTruth("gallery example wood/hole.png", defective, mask) if mask is not None or not defective else None
    return InspectRun(Image.new("RGB", (64, 64), (0, 0, 0)), 4, truth)


# ---------------------------------------------------------------------------------------------- overlap rule
def test_kept_patches_on_the_defect_hit_miss_edge_and_empty_mask():
    mask = _defect_mask()
    assert patches_on_defect(mask, [ON.box, OFF.box, EDGE.box]) == [True, False, False]  # hit, miss, edge only
    assert patches_on_defect(mask, [(23.5, 23.5, 30, 30)]) == [True]  # a fraction of a pixel counts
    assert patches_on_defect(np.zeros((64, 64), bool), [ON.box]) == [False]  # empty mask: nothing is on it
    assert patches_on_defect(mask, []) == []


# ---------------------------------------------------------------------------------------------- the renderer
def test_every_event_maps_onto_named_outputs_only():
    run = _run(_defect_mask())
    evidence = AnomalyEvidence(
        np.zeros((64, 64), np.float32),
        0.3,
        0.7,
        "anomalous",
        "top left",
        (8, 8, 24, 24),
        np.zeros((64, 64), bool),
        "Test",
        "wood",
        "fake",
    )
    assert set(event_outputs(evidence, VIEW, run.advance(evidence))) == {"explanation", "anomaly_note", "run"}
    assert run.advance(evidence).anomaly is evidence
    step = _step(1, [ON])
    stepped = event_outputs(step, VIEW, run.advance(step))
    assert set(stepped) == {"plot", "explanation", "replay", "answer_plot", "answer", "run"}
    assert stepped["answer"] == "Step 1 of 4…" and stepped["run"].steps == (step,)
    assert set(starting_outputs(VIEW)) == {"answer", "evidence", "grounding"}
    with pytest.raises(TypeError):
        event_outputs("not an event", VIEW, run)


def test_the_final_answer_cites_its_evidence_and_counts_patches_on_the_defect():
    inspection = _inspection(anomaly=AnomalySummary(0.7, 0.3, "anomalous", "top left", (8, 8, 24, 24), "none"))
    run = _run(_defect_mask()).advance(inspection)
    outputs = event_outputs(inspection, VIEW, run)
    assert outputs["grounding"].startswith("**1 of 3 kept patches on the defect** · the anomaly map's box overlaps it")
    rows = outputs["evidence"]
    assert [row[0] for row in rows] == ["knowledge 1", "knowledge 2", "patch 1", "patch 2", "patch 3", "anomaly map"]
    assert [row[1] for row in rows] == inspection.evidence.lines()
    assert [row[2] for row in rows] == ["", "", "yes", "no", "no", "yes"]
    assert outputs["last_answer"] == "A. Yes." and outputs["run"].inspection is inspection
    assert "anomaly_note" not in outputs  # the map came with its own event
    assert "Timings:" in outputs["details"] and "Timings:" not in outputs["answer"]
    plain = event_outputs(_inspection(), VIEW, _run().advance(_inspection()))
    assert "no normal exemplars" in plain["anomaly_note"]  # a stale verdict is replaced
    assert plain["grounding"].startswith("_No ground truth") and [row[2] for row in plain["evidence"]][2:] == [""] * 3


@pytest.mark.parametrize(
    "truth, expected",
    [
        (None, "No ground truth"),
        (GroundTruth("annotation a", False, None), "**normal**"),
        (GroundTruth("annotation b", True, None), "without a defect mask"),
        (GroundTruth("annotation c", True, _defect_mask()), "**0 of 0 kept patches on the defect**"),
    ],
)
def test_the_grounding_line_says_what_is_known(truth, expected):
    assert expected in render.grounding_markdown(truth, [], None)


def test_the_patch_view_outlines_the_mask_and_emphasises_a_clicked_patch():
    inspection = _inspection()
    run = _run(_defect_mask()).advance(inspection)
    drawn = patch_view(run)
    assert drawn.getpixel((7, 20)) == render.MASK_COLOUR and drawn.getpixel((8, 20)) == (0, 0, 0)  # outside, in
    row = next(r for r in render.evidence_rows(inspection.evidence) if r[0] == "patch 3")
    assert highlighted_patch(run, row) == OFF and highlighted_patch(run, ["knowledge 1", "", ""]) is None
    emphasised = patch_view(run, row)
    assert emphasised.getpixel((38, 48)) == (255, 255, 255)  # the white frame just outside the clicked box
    assert drawn.getpixel((38, 48)) == (0, 0, 0)
    lit = patch_view(dataclasses.replace(run, query=Image.new("RGB", (64, 64), (200, 200, 200))), row)
    assert lit.getpixel((48, 48)) == (200, 200, 200) and lit.getpixel((4, 60))[0] < 100  # the rest of the image dims
    assert patch_view(None, row) is None and highlighted_patch(_run(), row) is None  # before any run ends


def test_replay_keeps_the_ground_truth_outline_and_shows_the_patches_of_that_step():
    run = _run(_defect_mask()).advance(_step(1)).advance(_step(2, [OFF]))
    frame = run_view(dataclasses.replace(run, upto=1))
    assert frame.getpixel((7, 20)) == render.MASK_COLOUR and frame.getpixel((40, 44)) == (0, 0, 0)
    assert run_view(run).getpixel((40, 44)) != (0, 0, 0)  # the latest step: patch 3's box is drawn


def _evidence(value_at_defect=0.9):
    anomaly_map = np.zeros((64, 64), np.float32)
    anomaly_map[8:24, 8:24] = value_at_defect
    return AnomalyEvidence(
        anomaly_map, 0.3, 0.7, "anomalous", "top left", (8, 8, 24, 24), anomaly_map > 0.5, "Test", "wood", "fake"
    )


def test_each_layer_of_the_explanation_is_drawn_only_when_it_is_on():
    grey = Image.new("RGB", (64, 64), (128, 128, 128))
    everything = Look(LAYERS, 0.8, "inferno")
    full = explanation_view(grey, everything, _evidence(), ((0.0, 0.0), (0.0, 1.0)), (OFF,), (), _defect_mask())
    assert full.getpixel((16, 16)) != (128, 128, 128)  # the anomaly map heats the defect
    assert full.getpixel((48, 8)) == (128, 128, 128)  # cold: untouched (attention is 0 there)
    assert full.getpixel((56, 36)) != (128, 128, 128)  # attention's hot quarter (bottom right)
    assert full.getpixel((7, 20)) == render.MASK_COLOUR  # the ground truth's outline
    none = explanation_view(grey, Look((), 0.8), _evidence(), ((0.0, 0.0), (0.0, 1.0)), (OFF,), (), _defect_mask())
    assert np.array_equal(np.asarray(none), np.asarray(grey))  # every layer off: the query as it is
    patches_only = explanation_view(grey, Look(("kept patches",)), _evidence(), (), (OFF,))
    assert patches_only.getpixel((16, 16)) == (128, 128, 128) and patches_only.getpixel((40, 48)) != (128, 128, 128)


def test_the_anomaly_map_is_read_as_calibrated_and_attention_is_rescaled():
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    faint = heat(grey, np.full((4, 4), 0.1), Look(opacity=1.0), scale=False)
    strong = heat(grey, np.full((4, 4), 0.9), Look(opacity=1.0), scale=False)
    distance = lambda a: np.abs(np.asarray(a, float) - 128).mean()  # noqa: E731
    assert distance(faint) < distance(strong)  # a normal image's low map stays faint (not stretched to full heat)
    assert distance(heat(grey, np.full((4, 4), 0.1), Look(opacity=0.0), scale=False)) == 0  # opacity 0: unchanged
    ramp = heat(grey, [[0.0, 0.001]], Look(opacity=1.0), scale=True)
    assert distance(ramp.crop((24, 0, 32, 32))) > distance(faint)  # min-max: the larger value is the hottest
    jet = heat(grey, np.full((4, 4), 0.9), Look(opacity=1.0, colormap="jet"), scale=False)
    assert jet.getpixel((5, 5)) != strong.getpixel((5, 5))  # the colormap is applied
    assert Look.of(["kept patches", "bogus"], 7, "nope") == Look(("kept patches",), 1.0, "inferno")


# ---------------------------------------------------------------------------------------------- ground truth
def _gallery(folder: Path):
    Image.new("RGB", (32, 32), (120, 90, 60)).save(folder / "hole.png")
    Image.new("RGB", (32, 32), (90, 90, 90)).save(folder / "good.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[4:10, 6:12] = 255
    Image.fromarray(mask).save(folder / "hole_mask.png")
    rows = [
        {"image": "hole.png", "dataset": "T", "category": "wood", "defect": "hole", "mask": "hole_mask.png"},
        {"image": "good.png", "dataset": "T", "category": "wood", "defect": "good", "mask": None},
    ]
    (folder / "index.json").write_text(json.dumps(rows))
    return load_gallery(folder)


def test_gallery_examples_are_recognised_by_their_pixels_however_they_arrive(tmp_path):
    index = GroundTruthIndex(_gallery(tmp_path))
    upload = {"path": str(tmp_path / "hole.png"), "orig_name": "mine.png"}  # a copy uploaded under another name
    truth = index.lookup(uploaded_image(upload))
    assert truth.defective and truth.source == f"gallery example {tmp_path.name}/hole.png"
    assert truth.mask.shape == (32, 32) and truth.mask.sum() == 36 and truth.mask[5, 7]
    normal = index.lookup(uploaded_image(str(tmp_path / "good.png")))
    assert normal is not None and not normal.defective and normal.mask is None
    assert index.lookup(Image.new("RGB", (32, 32), (1, 2, 3))) is None
    assert pixel_digest(Image.new("RGB", (32, 32))) != pixel_digest(Image.new("RGB", (16, 64)))  # same bytes, shape


def test_annotated_images_carry_their_painted_mask(tmp_path):
    from reason_iad.annotations import AnnotationStore

    store = AnnotationStore(tmp_path / "db")
    picture = Image.new("RGB", (48, 48), (10, 200, 30))
    mask = np.zeros((48, 48), bool)
    mask[30:40, 30:40] = True
    store.add(picture, "defective", "Mine", "gear", "ana", "chip", mask=mask)
    truth = GroundTruthIndex([]).lookup(picture, store)
    assert truth.source.startswith("annotation mine/gear/") and truth.defective
    assert truth.mask[35, 35] and not truth.mask[5, 5]
    assert GroundTruthIndex([]).lookup(picture) is None  # the gallery alone does not know it


# ---------------------------------------------------------------------------------------------- the controls
def test_the_controls_start_from_the_loaded_configuration_and_cover_every_setting():
    import gradio as gr

    from demo.tabs.inspect import reasoning_controls
    from reason_iad.reasoning.reward import REWARDS

    weights = {"answer": 0.3, "latent": 0.2, "confidence": 0.7}
    config = ReasoningConfig(num_steps=7, reward_weights=weights, readout="likelihood")
    settings = ReasoningSettings.from_config(config)
    assert (settings.num_steps, settings.reward_weights) == (7, weights)
    assert settings.to_config(ReasoningConfig()) == dataclasses.replace(
        ReasoningConfig(), **dataclasses.asdict(settings)
    )
    with gr.Blocks():
        controls = reasoning_controls(settings)
    assert set(controls) == set(settings.controls())  # one control per setting, a weight slider per reward
    assert {f"{name}_reward_weight" for name in REWARDS} <= set(controls)
    assert controls["answer_reward_weight"].value == 0.3 and controls["confidence_reward_weight"].value == 0.7
    assert controls["readout"].value == "likelihood"
    assert ReasoningSettings.from_controls({k: c.value for k, c in controls.items()}) == settings


# ---------------------------------------------------------------------------------------------- layout
def _demo_imports() -> dict[str, set[str]]:
    graph = {}
    for path in (PROJECT_ROOT / "demo").rglob("*.py"):
        name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("demo"):
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("demo")}
        graph[name] = found
    return {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}


def test_the_studio_modules_import_without_cycles_and_studio_only_assembles_tabs():
    graph = _demo_imports()
    assert {"demo.tabs.inspect", "demo.tabs.knowledge", "demo.tabs.annotate", "demo.tabs.compare"} <= set(graph)
    visiting, done = set(), set()

    def visit(name, path):
        assert name not in visiting, f"import cycle: {' -> '.join([*path, name])}"
        if name not in done:
            visiting.add(name)
            for dep in graph[name]:
                visit(dep, [*path, name])
            visiting.discard(name)
            done.add(name)

    for name in graph:
        visit(name, [])
    assert not any("demo.studio" in deps for deps in graph.values())  # nothing reaches back into the assembler
    studio = (PROJECT_ROOT / "demo" / "studio.py").read_text()
    assert ".click(" not in studio and ".change(" not in studio and ".select(" not in studio


# ---------------------------------------------------------------------------------------------- correction loop
def test_the_correction_starts_from_the_anomaly_map_or_the_kept_patches():
    from demo.annotation import MASK_RGBA, correction_editor, editor_image_and_mask
    from reason_iad.errors import UserError

    run = _run(_defect_mask()).advance(_evidence()).advance(_inspection(patches=(OFF,)))
    from_map = correction_editor(run, "anomaly map")
    image, mask = editor_image_and_mask(from_map)
    assert image.size == (64, 64) and mask[16, 16] and not mask[40, 40]  # the map's suspicious region (>= 0.5)
    assert from_map["composite"].getpixel((16, 16)) != (0, 0, 0)  # the mask shows over the image
    assert from_map["layers"][0].getpixel((16, 16)) == MASK_RGBA
    _, boxes = editor_image_and_mask(correction_editor(run, "kept patches"))
    assert boxes[48, 48] and not boxes[16, 16] and boxes.sum() == 16 * 16  # OFF's box, exactly
    assert correction_editor(run, "nothing")["layers"] == []
    faint = _run().advance(_evidence(value_at_defect=0.3))
    assert correction_editor(faint, "anomaly map")["layers"] == []  # nothing suspicious: no mask to start from
    for bad, message in ((None, "inspect an image first"), (run, "pre-fill the mask from")):
        with pytest.raises(UserError, match=message):
            correction_editor(bad, "everything" if bad is not None else "anomaly map")


def test_the_correction_names_the_inspected_category():
    import dataclasses

    from demo.annotation import inspected_category

    assert inspected_category(_run().advance(_evidence())) == ("Test", "wood")  # the memory's bank
    asked = dataclasses.replace(_run(), asked=("SynthIAD / tile", "", "", None))
    assert inspected_category(asked) == ("SynthIAD", "tile")  # else the form's choice
    assert inspected_category(_run()) == ("", "")  # auto-detect without a bank: unknown
