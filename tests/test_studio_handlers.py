import zipfile

import numpy as np
import pytest

from demo.handlers import ANY_CATEGORY, ReasoningSettings, StudioHandlers, parse_question, split_category
from demo.render import answer_figure, draw_patches, reasoning_figure
from knowledge_helpers import make_store, solid
from reason_iad.config import AppConfig, ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline
from reason_iad.types import AnomalyEvidence, InjectedPatch, Inspection, ReasoningStep


@pytest.fixture
def handlers(tiny_backends, tmp_path):
    config = AppConfig(reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=2))
    return StudioHandlers(Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(tmp_path / "kb")), [])


def test_writes_need_a_curator_when_auth_is_configured(handlers):
    assert handlers.curator("ana") == "ana"
    locked = StudioHandlers(handlers.pipeline, [], curators={"ana"})
    with pytest.raises(UserError, match="log in"):
        locked.add_entry("D", "c", "d", "T", "text", None)
    with pytest.raises(UserError, match="curator list"):
        locked.save_entry("test/wood/scratch", "T", "text", "mallory")
    assert handlers.pipeline.store.get("test/wood/scratch").entry.title == "Scratch"
    assert locked.save_entry("test/wood/scratch", "Scratch", "New text.", "ana").startswith("Saved")


def test_delete_needs_confirmation_and_history_and_diff_show_it(handlers):
    before = handlers.pipeline.store.version
    with pytest.raises(UserError, match="confirm"):
        handlers.delete_entry("test/wood/hole", False, None)
    handlers.delete_entry("test/wood/hole", True, None)
    assert handlers.history()[0][3] == "delete"
    assert "-test/wood/hole" in handlers.diff(before, handlers.pipeline.store.version)


def test_questions_and_categories_from_the_form():
    question = parse_question("Which defect?", "A. Crack\nHole\nC) Stain")
    assert question.options == (("A", "Crack"), ("B", "Hole"), ("C", "Stain"))
    assert parse_question("", "").text == "Is there any defect in the object?"
    with pytest.raises(UserError, match="at least two"):
        parse_question("Which?", "only one")
    assert split_category("SynthIAD / wood") == ("SynthIAD", "wood") and split_category(ANY_CATEGORY) == (None, None)


def test_inspect_streams_then_finishes_and_refuses_a_missing_image(handlers):
    settings = ReasoningSettings(num_latent_tokens=2, num_steps=2)
    events = list(handlers.inspect(solid((200, 10, 10)), "Test / wood", "", "", settings))
    assert [type(event) for event in events] == [ReasoningStep, ReasoningStep, Inspection]  # the pipeline's events
    assert [step.step for step in events[:2]] == [1, 2] and events[-1].steps == tuple(events[:2])
    assert not any(isinstance(event, AnomalyEvidence) for event in events)  # no visual memory loaded here
    with pytest.raises(UserError, match="upload an image"):
        list(handlers.inspect(None, "Test / wood", "", "", settings))
    with pytest.raises(UserError, match="mode"):
        list(handlers.inspect(solid((1, 1, 1)), "Test / wood", "", "", ReasoningSettings(mode="magic")))


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


def test_renderers_draw_what_they_are_given():
    image = solid((0, 0, 0)).resize((64, 64))
    patch = InjectedPatch(3, (16.0, 16.0, 32.0, 32.0), 0, 2)
    drawn = draw_patches(image, [patch], [patch])
    assert drawn.getpixel((16, 20)) != (0, 0, 0) and drawn.getpixel((50, 50)) == (0, 0, 0)
    figure = reasoning_figure([_step(1), _step(2, [patch])], num_steps=5)
    assert [t.name for t in figure.data][:2] == ["reward", "best reward"] and len(figure.data) == 5
    assert list(answer_figure({"A": 0.6, "B": 0.4}).data[0].x) == [0.6, 0.4]


def test_annotate_saves_with_mask_adds_templates_and_exports(handlers, tmp_path):
    import zipfile

    import numpy as np
    from PIL import Image

    from demo.annotation import AnnotationHandlers
    from reason_iad.annotations import AnnotationStore
    from reason_iad.memory.exemplars import ExemplarStore

    handlers.pipeline.annotations = AnnotationStore(tmp_path / "db")
    handlers.pipeline.exemplars = ExemplarStore(tmp_path / "db")
    work = AnnotationHandlers(handlers)
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (40, 40, 60, 60))
    part = solid((90, 90, 90)).resize((64, 64))
    part.paste((140, 120, 100), (4, 4, 12, 12))  # a part, not a flat canvas
    value = {"background": part, "layers": [layer], "composite": None}
    status = work.save_annotation(value, "defective", "Mine", "gear", "chip", "", "B. No.", "A. Yes.", False, None)
    assert status.startswith("Saved annotation")
    [saved] = handlers.pipeline.annotations.list()
    assert np.asarray(saved.mask)[50, 50] == 255 and np.asarray(saved.mask)[5, 5] == 0
    blank = Image.new("RGB", (800, 800), "white")  # the editor's empty canvas
    refusals = [
        ((value, "defective", "Mine", "gear", "chip", "", "", "", True, None), "only normal"),
        ((dict(value, layers=[]), "defective", "Mine", "gear", "chip", "", "", "", False, None), "paint the defect"),
        (
            (
                dict(value, background=blank),
                "normal",
                "Mine",
                "gear",
                "",
                "",
                "",
                "",
                False,
                None,
            ),
            "open an image",
        ),  # the editor's blank canvas
    ]
    for arguments, message in refusals:
        with pytest.raises(UserError, match=message):
            work.save_annotation(*arguments)
    assert len(handlers.pipeline.annotations.list()) == 1 and not handlers.pipeline.exemplars.list("gear")
    work.save_annotation(value, "normal", "Mine", "gear", "", "", "", "", True, None)
    assert len(handlers.pipeline.exemplars.list("gear")) == 1
    with zipfile.ZipFile(work.export_annotations()) as archive:
        assert "mmad.json" in archive.namelist()


def test_compare_runs_each_configuration_on_the_same_input(handlers):
    from demo.comparison import CompareHandlers, CompareSlot
    from demo.render import comparison_figure, comparison_rows

    compare = CompareHandlers(handlers)
    slots = [CompareSlot("plain"), CompareSlot("full")]
    results = compare.compare(solid((200, 10, 10)), "Test / wood", "", "", slots, 2, 2)
    assert [name for name, _ in results] == ["plain · latest", "full · latest"]
    assert [len(i.steps) for _, i in results] == [0, 2]
    rows = comparison_rows(results)
    assert len(rows) == 2 and rows[1][6] == 2 and rows[1][10] >= rows[1][8]
    figure = comparison_figure(results)
    assert {trace.name for trace in figure.data} == {"plain · latest", "full · latest"}
    with pytest.raises(UserError, match="at most 4"):
        compare.compare(solid((1, 1, 1)), None, "", "", [CompareSlot("plain")] * 5, 1, 1)
    with pytest.raises(UserError, match="not loaded"):
        compare.compare(solid((1, 1, 1)), None, "", "", [CompareSlot("plain", model="other")], 1, 1)


def test_compare_starts_from_the_loaded_configuration_not_fixed_weights(handlers):
    import dataclasses

    from demo.comparison import CompareHandlers, CompareSlot

    reasoning = dataclasses.replace(
        handlers.pipeline.config.reasoning, reward_weights={"answer": 0.25, "latent": 1.5}, patches_per_step=1
    )
    handlers.pipeline.config = dataclasses.replace(handlers.pipeline.config, reasoning=reasoning)
    [(_, inspection)] = CompareHandlers(handlers).compare(
        solid((200, 10, 10)), "Test / wood", "", "", [CompareSlot("latent")], 1, 2
    )
    used = inspection.config
    assert used["reward_weights"] == {"answer": 0.25, "latent": 1.5, "confidence": 0.0}
    assert used["patches_per_step"] == 1
    assert (used["mode"], used["num_steps"], used["num_latent_tokens"]) == ("latent", 1, 2)  # the tab's own controls


def test_compare_two_knowledge_versions_retrieves_each_version(handlers):
    from demo.comparison import CompareHandlers, CompareSlot, parse_version

    compare = CompareHandlers(handlers)
    before = handlers.pipeline.store.version
    handlers.save_entry("test/wood/scratch", "Deep gouge", "A long deep gouge across the grain.", None)
    assert parse_version(compare.version_choices()[1]) == handlers.pipeline.store.version
    slots = [CompareSlot("knowledge", before), CompareSlot("knowledge")]
    (old_name, old), (new_name, new) = compare.compare(solid((200, 10, 10)), "Test / wood", "", "", slots, 1, 1)
    assert old_name == f"knowledge · v{before}" and old.knowledge_version == before
    assert new.knowledge_version == handlers.pipeline.store.version > before
    titles = lambda inspection: {k.title for k in inspection.knowledge}  # noqa: E731
    assert "Scratch" in titles(old) and "Deep gouge" in titles(new) and "Deep gouge" not in titles(old)
    assert handlers.pipeline.store.version == new.knowledge_version  # the view left the store at the latest
    with pytest.raises(UserError, match="does not exist"):
        compare.compare(solid((1, 1, 1)), "Test / wood", "", "", [CompareSlot("knowledge", 999)], 1, 1)


def test_compare_a_second_loaded_model(handlers, tiny_model_dirs):
    from demo.comparison import CompareHandlers, CompareSlot

    compare = CompareHandlers(handlers)
    with pytest.raises(UserError):
        compare.load_model("/no/such/model")
    assert compare.model_names() == [compare.active_name]
    folder = str(tiny_model_dirs["llava"])
    assert compare.load_model(folder).startswith("Loaded")
    assert compare.model_names() == [compare.active_name, folder]
    slots = [CompareSlot("plain"), CompareSlot("plain", model=folder)]
    results = compare.compare(solid((200, 10, 10)), "Test / wood", "", "", slots, 1, 1)
    assert [name for name, _ in results] == ["plain · latest", f"plain · latest · {folder}"]
    assert results[0][1].model != results[1][1].model


def test_import_export_and_version_view_from_the_studio(handlers, tmp_path):
    import json

    from demo.knowledge_panels import TransferHandlers

    transfer = TransferHandlers(handlers)
    first = handlers.pipeline.store.version
    exported = transfer.export_file("mmad", None)
    data = json.loads(open(exported).read())
    data["Test"]["wood"]["knot"] = "<Knot>\nDescription: A dark round knot."
    upload = tmp_path / "dk.json"
    upload.write_text(json.dumps(data))
    summary = transfer.import_file(str(upload), False, None)
    assert "created 1" in summary and "new version" in summary
    assert len(transfer.version_rows(first)) == 6 and len(transfer.version_rows(first + 1)) == 7
    with pytest.raises(UserError, match="upload"):
        transfer.import_file(None, False, None)
    locked = TransferHandlers(StudioHandlers(handlers.pipeline, [], curators={"ana"}))
    with pytest.raises(UserError, match="log in"):
        locked.import_file(str(upload), False, None)


def test_exemplar_panel_adds_and_removes_from_templates_and_memory_bank(handlers, tmp_path):
    from demo.knowledge_panels import ExemplarHandlers
    from reason_iad.config import MemoryConfig
    from reason_iad.memory import open_memory
    from reason_iad.memory.exemplars import ExemplarStore
    from reason_iad.synth import render_sample

    handlers.pipeline.exemplars = ExemplarStore(tmp_path / "db")
    handlers.pipeline.memory = open_memory(
        tmp_path / "db", MemoryConfig(enabled=True), exemplars=handlers.pipeline.exemplars
    )
    panel = ExemplarHandlers(handlers)
    for seed in range(3):
        status = panel.add(render_sample("wood", None, 200 + seed, 128).image, "Test / wood", None)
    assert "3 exemplars" in status and "suspicious from raw score" in status
    gallery, bank = panel.show("Test / wood")
    assert len(gallery) == 3 and "3 exemplars" in bank
    removed = panel.remove(gallery[0][1], "Test / wood", None)
    assert "2 exemplars" in removed and len(panel.show("Test / wood")[0]) == 2
    with pytest.raises(UserError, match="choose a category"):
        panel.add(None, None, None)


def test_annotations_export_in_every_format_with_the_exemplars_as_templates(tmp_path):
    import json as _json

    from demo.annotation import AnnotationHandlers
    from reason_iad.annotations import AnnotationStore
    from reason_iad.exports import EXPORT_FORMATS

    exemplars = ExemplarStore(tmp_path / "kb")
    exemplars.add(solid((90, 60, 30)), "Mine", "gear", author="ana")
    annotations = AnnotationStore(tmp_path / "kb")
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    annotations.add(solid((200, 60, 30)), "defective", "Mine", "gear", "ana", defect="chip", mask=mask)
    pipeline = Pipeline(None, AppConfig(), make_store(tmp_path / "kb"), exemplars, annotations)
    work = AnnotationHandlers(StudioHandlers(pipeline, []))
    names = {}
    for fmt in EXPORT_FORMATS:
        with zipfile.ZipFile(work.export_annotations(fmt)) as archive:
            names[fmt] = archive.namelist()
            if fmt == "mmad":
                record = next(iter(_json.loads(archive.read("mmad.json")).values()))
                assert record["similar_templates"] == ["Mine/gear/train/good/0000.png"]
    assert "Mine/gear/train/good/0000.png" in names["mmad"]
    assert "gear/train/good/000.png" in names["mvtec"] and "gear/ground_truth/chip/000_mask.png" in names["mvtec"]
    assert "annotations.json" in names["coco"]


def test_the_run_card_of_the_last_run_records_its_inputs_and_result(handlers):
    from demo.events import InspectRun
    from reason_iad.runcard import image_sha256, read_run_card
    from reason_iad.types import Inspection

    query = solid((120, 80, 40))
    asked = ("Test / wood", "Is there a hole?", "A. Yes.\nB. No.", None)
    settings = ReasoningSettings(num_latent_tokens=2, num_steps=2)
    *_, inspection = handlers.inspect(query, *asked[:3], settings, auto_template=False)
    assert isinstance(inspection, Inspection)
    with pytest.raises(UserError, match="inspect an image first"):
        handlers.run_card(InspectRun(query, 2, asked=asked))  # not finished yet
    card = read_run_card(handlers.run_card(InspectRun(query, 2, inspection=inspection, asked=asked)))
    assert card.data["input"]["image"]["sha256"] == image_sha256(query)
    assert card.data["input"]["question"] == "Is there a hole?" and card.data["input"]["category"] == "wood"
    assert card.data["input"]["options"] == {"A": "Yes.", "B": "No."}
    assert card.data["result"]["answer"] == inspection.answer
    assert card.data["result"]["option_probs"] == pytest.approx(inspection.option_probs)
