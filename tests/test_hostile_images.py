"""Hostile and odd images through every entry point: the loader, `reason-iad infer` and the studio's `/inspect`.

A refused file gives one clear line (the CLI exits with 2, the studio shows the message), no traceback anywhere,
and nothing written; the studio keeps answering. Odd-but-valid images are answered. The files are crafted in
tmp at test time (`hostile_images.py`); nothing binary is committed.
"""

import dataclasses
import logging
import re

import gradio as gr
import pytest

from demo.handlers import StudioHandlers, uploaded_image
from demo.studio import build_studio
from hostile_images import HostileImage, answered_payloads, hostile_images, photo_12mp, refused_payloads
from knowledge_helpers import make_store
from reason_iad.cli import main
from reason_iad.config import AppConfig
from reason_iad.errors import UserError
from reason_iad.images import MAX_SIDE, MIN_SIDE, load_image, read_image
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline

REFUSED = [name for name, *_ in refused_payloads()]
ANSWERED = [name for name, *_ in answered_payloads()]
FAST_INFER = ["--mode", "plain", "--steps", "1", "--latents", "1"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, HostileImage]:
    return {case.name: case for case in hostile_images(tmp_path_factory.mktemp("hostile"))}


def test_there_are_at_least_thirty_cases_of_every_kind_asked_for(cases):
    kinds = {case.kind for case in cases.values()}
    assert len(cases) >= 30 and len(REFUSED) >= 20 and len(ANSWERED) >= 15
    assert {
        "truncated",
        "header only",
        "garbage",
        "wrong format",
        "corrupt",
        "decompression bomb",
        "too small",
        "extreme aspect",
        "odd mode",
        "odd format",
    } <= kinds


# ---------------------------------------------------------------------------------------------- the loader
@pytest.mark.parametrize("name", REFUSED)
def test_the_loader_refuses_in_one_clear_line(cases, name):
    case = cases[name]
    for loader in (load_image, read_image):
        with pytest.raises(UserError) as refused:
            loader(case.path, "image")
        message = str(refused.value)
        assert re.search(case.refusal, message) and "\n" not in message
    with pytest.raises(UserError, match=case.refusal):
        load_image(case.path.read_bytes(), "upload")


@pytest.mark.parametrize("name", ANSWERED)
def test_the_loader_answers_odd_but_valid_images_as_rgb(cases, name):
    image = load_image(cases[name].path)
    assert image.mode == "RGB" and MIN_SIDE <= min(image.size) and max(image.size) <= MAX_SIDE
    assert load_image(image).size == image.size  # a normalised image passes again (the studio checks twice)


def test_odd_images_are_normalised_the_way_they_look():
    folder_cases = {name: payload for name, _, _, payload in answered_payloads()}
    assert load_image(folder_cases["exif-rotated-jpeg"]).size == (32, 64)  # stored 64x32, displayed rotated
    palette = load_image(folder_cases["palette-transparent"])
    assert palette.getpixel((0, 0)) == (255, 255, 255) and palette.getpixel((20, 20)) == (0, 0, 255)  # on white
    assert load_image(folder_cases["strip-100-to-1"]).size == (MAX_SIDE, MAX_SIDE // 100)  # downscaled, kept
    assert read_image(folder_cases["rgba-png"]).mode == "RGBA"  # paint layers keep their alpha


def test_a_folder_or_missing_file_is_not_an_image(tmp_path):
    for path in (tmp_path, tmp_path / "missing.png"):
        with pytest.raises(UserError, match="not found"):
            load_image(path, "image")


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def no_model(monkeypatch):
    def refuse_to_load(*args, **kwargs):
        pytest.fail("a hostile image must be refused before the model is loaded")

    monkeypatch.setattr(Pipeline, "load", classmethod(refuse_to_load))


@pytest.mark.parametrize("name", REFUSED)
def test_infer_refuses_in_one_line_with_exit_code_2_and_writes_nothing(cases, name, no_model, tmp_path, capsys):
    case = cases[name]
    for argv in (["infer", str(case.path)], ["infer", str(cases["rgb-png"].path), "--template", str(case.path)]):
        assert main([*argv, *FAST_INFER, "--db", str(tmp_path / "kb")]) == 2
        out, err = capsys.readouterr()
        assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert err.startswith("reason-iad: error: ") and re.search(case.refusal, err)
    assert list(tmp_path.iterdir()) == []  # no knowledge base, no output file


@pytest.fixture(scope="module")
def load_once(tmp_path_factory):
    """`Pipeline.load` loads each model once for the whole module (the images, not the loading, are under test)."""
    cache = {}
    original = Pipeline.load.__func__

    def load(cls, config, with_knowledge=True):
        key = (config.backend, config.knowledge.db_uri, with_knowledge)
        if key not in cache:
            cache[key] = original(cls, config, with_knowledge)
        return dataclasses.replace(cache[key], config=config)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "load", classmethod(load))
        yield


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    from reason_iad.backends.tiny import save_tiny_model

    return str(save_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "qwen2_5_vl"))


@pytest.mark.parametrize("name", ANSWERED)
def test_infer_answers_odd_but_valid_images(cases, name, tiny_qwen, load_once, capsys):
    assert main(["infer", str(cases[name].path), "--model", tiny_qwen, *FAST_INFER]) == 0
    out, err = capsys.readouterr()
    assert "\nanswer " in out and "Traceback" not in out + err


def test_infer_answers_a_12_megapixel_photo(tmp_path, tiny_qwen, load_once, capsys):
    photo = photo_12mp(tmp_path)
    assert main(["infer", str(photo.path), "--model", tiny_qwen, *FAST_INFER, "--json"]) == 0
    out, err = capsys.readouterr()
    assert '"answer"' in out and "Traceback" not in out + err


# ---------------------------------------------------------------------------------------------- the studio
@pytest.fixture(scope="module")
def bare_studio(tmp_path_factory):
    """The studio over a small store without a model (building it never runs one)."""
    folder = tmp_path_factory.mktemp("studio") / "kb"
    pipeline = Pipeline(None, AppConfig(), make_store(folder), ExemplarStore(folder))
    return build_studio(AppConfig(), pipeline, examples=[]), pipeline


def test_gradio_never_decodes_an_uploaded_image_itself(bare_studio):
    """Every event taking a `gr.Image` runs with preprocess=False: our loader checks the size before decoding."""
    blocks, _ = bare_studio
    with_images = [fn for fn in blocks.fns.values() if any(isinstance(b, gr.Image) for b in fn.inputs)]
    assert len(with_images) >= 4  # inspect, the knowledge preview (twice), the comparison, adding an exemplar
    assert [fn.name for fn in with_images if fn.preprocess] == []


@pytest.mark.parametrize("name", REFUSED)
def test_studio_handlers_refuse_an_upload_naming_the_users_file(cases, bare_studio, name):
    _, pipeline = bare_studio
    case = cases[name]
    upload = {"path": str(case.path), "orig_name": f"my-{case.path.name}", "meta": {"_type": "gradio.FileData"}}
    with pytest.raises(UserError, match=case.refusal) as refused:
        uploaded_image(upload, "query image")
    assert f"'my-{case.path.name}'" in str(refused.value) and str(case.path.parent) not in str(refused.value)
    with pytest.raises(UserError, match=case.refusal):
        StudioHandlers(pipeline, []).preview_knowledge(upload, "Test / wood")
    version, exemplars = pipeline.store.version, len(pipeline.exemplars.list())
    from demo.knowledge_panels import ExemplarHandlers

    with pytest.raises(UserError, match=case.refusal):
        ExemplarHandlers(StudioHandlers(pipeline, [])).add(upload, "Test / wood", "ana")
    assert (pipeline.store.version, len(pipeline.exemplars.list())) == (version, exemplars)


@pytest.mark.slow
def test_the_launched_studio_refuses_hostile_uploads_without_a_traceback(cases, tiny_qwen, tmp_path, capfd, caplog):
    from gradio_client import Client, handle_file

    from demo.studio import launch_options
    from ports import free_port
    from reason_iad.backends.loading import load_backend
    from reason_iad.config import BackendConfig, ReasoningConfig, StudioConfig

    caplog.set_level(logging.INFO)
    config = AppConfig(
        reasoning=ReasoningConfig(mode="plain", num_latent_tokens=1, num_steps=1), studio=StudioConfig(port=free_port())
    )
    backend = load_backend(BackendConfig(model=tiny_qwen, device="cpu"))
    pipeline = Pipeline(backend, config, make_store(tmp_path / "kb"), ExemplarStore(tmp_path / "kb"))
    studio = build_studio(config, pipeline, examples=[])
    studio.queue().launch(**launch_options(config) | {"prevent_thread_lock": True, "quiet": True})
    try:
        client = Client(f"http://127.0.0.1:{config.studio.port}/", verbose=False)
        version = pipeline.store.version

        def inspect(path):
            return client.predict(
                image=handle_file(str(path)),
                category="Test / wood",
                auto_template=False,
                mode="plain",
                num_latent_tokens=1,
                num_steps=1,
                patches_per_step=1,
                api_name="/inspect",
            )

        for name in REFUSED:
            case = cases[name]
            with pytest.raises(Exception) as refused:
                inspect(case.path)
            message = str(refused.value)
            assert re.search(case.refusal, message) and "\n" not in message, name
        for name in ANSWERED:
            assert any(str(v).startswith("### Answer:") for v in inspect(cases[name].path)), name
        assert pipeline.store.version == version
    finally:
        studio.close()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "DecompressionBomb" not in out + err
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
