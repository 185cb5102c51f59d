"""The studio on 127.0.0.1, driven through its public API with gradio_client (no browser)."""

import re

import pytest
from gradio_client import Client, handle_file

from demo.gallery import load_gallery
from demo.render import EVIDENCE_HEADERS
from demo.studio import build_studio, launch_options
from knowledge_helpers import make_store
from ports import free_port
from reason_iad.config import AppConfig, ReasoningConfig, StudioConfig
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.pipeline import Pipeline
from reason_iad.synth.exemplars import gallery_exemplars


@pytest.fixture(scope="module")
def studio_url(tiny_backends, tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio-kb")
    exemplars = ExemplarStore(folder, seed=gallery_exemplars)
    config = AppConfig(
        reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=2), studio=StudioConfig(port=free_port())
    )
    pipeline = Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(folder), exemplars)
    studio = build_studio(config, pipeline, examples=load_gallery(EXAMPLES_DIR))
    studio.queue().launch(**launch_options(config) | {"prevent_thread_lock": True, "quiet": True})
    yield f"http://127.0.0.1:{config.studio.port}/"
    studio.close()


def test_public_endpoints_are_exactly_the_documented_ones(studio_url):
    api = Client(studio_url, verbose=False).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/inspect", "/search_knowledge", "/add_knowledge"}


INSPECT_PARAMETERS = [
    "image",
    "category",
    "question",
    "options",
    "template",
    "auto_template",
    "mode",
    "num_latent_tokens",
    "num_steps",
    "patches_per_step",
    "answer_reward_weight",
    "latent_reward_weight",
    "confidence_reward_weight",
    "readout",
    "evidence",
    "injection_prior",
    "pinned",
]


def _answer(outputs) -> str:
    return next(v for v in outputs if isinstance(v, str) and v.startswith("### Answer:"))


def _evidence(outputs) -> list[list]:
    return next(v["data"] for v in outputs if isinstance(v, dict) and v.get("headers") == EVIDENCE_HEADERS)


def test_inspect_takes_named_parameters_with_the_form_defaults(studio_url):
    api = Client(studio_url, verbose=False).view_api(return_format="dict", print_info=False)
    parameters = api["named_endpoints"]["/inspect"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == INSPECT_PARAMETERS
    optional = {p["parameter_name"]: p["parameter_default"] for p in parameters if p["parameter_has_default"]}
    assert optional["mode"] == "full" and optional["num_steps"] == 2 and "image" not in optional  # config defaults


def test_inspect_streams_steps_and_returns_the_answer(studio_url):
    client = Client(studio_url, verbose=False)
    image = sorted(p for p in (EXAMPLES_DIR / "wood").glob("*.png") if "_mask" not in p.name)[0]
    job = client.submit(
        image=handle_file(str(image)),
        category="Test / wood",
        mode="full",
        num_latent_tokens=2,
        num_steps=2,
        api_name="/inspect",
    )
    outputs = [update for update in job]
    final = job.outputs()[-1]
    assert len(outputs) >= 1
    answer_markdown = _answer(final)
    assert "### Answer:" in answer_markdown and "knowledge version" in answer_markdown
    knowledge = [citation for key, citation, _ in _evidence(final) if key.startswith("knowledge")]
    assert knowledge[-1].startswith("knowledge test/wood/good ")  # the normal entry joins the retrieved ones
    kept = sum(key.startswith("patch ") for key, _, _ in _evidence(final))  # each kept patch is cited
    grounding = next(v for v in final if isinstance(v, str) and "kept patches on the defect" in v)  # gallery: a mask
    assert re.search(rf"\*\*\d+ of {kept} kept patches on the defect\*\*", grounding)


def test_search_and_add_knowledge_through_the_api(studio_url):
    client = Client(studio_url, verbose=False)
    status = client.predict(
        "Mine", "gear", "chip", "Chipped tooth", "A tooth with a missing corner.", api_name="/add_knowledge"
    )
    assert status.startswith("Added mine/gear/chip as version")
    results = client.predict("missing corner tooth", "fts", "", api_name="/search_knowledge")
    assert results["data"][0][1] == "mine/gear/chip"
    with pytest.raises(Exception, match="text"):
        client.predict("Mine", "gear", "blank", "Blank", "   ", api_name="/add_knowledge")
