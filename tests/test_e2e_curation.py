"""In a real browser, the curator's and the researcher's screens: threshold control, Compare, the three exports.

A studio with a visual memory (a small EfficientNet-Lite0 at 64 px) and two annotations: the Knowledge tab's
threshold panel shows the histogram, previews a proposed line and saves it as a versioned change; the Compare tab
runs two configurations side by side; the Annotate tab exports MMAD, MVTec and COCO zips that hold what each
format requires; an inspection is corrected in Annotate (its image, category and anomaly-map mask pre-filled)
and saved with the model's answer. Screenshots go to test-artifacts/ (e2e-10 ... e2e-13).
"""

import shutil
import zipfile

import pytest
from test_e2e_studio import CHROMIUM_FLAGS

from demo.studio import build_studio, launch_options
from ports import free_port
from reason_iad.annotations import AnnotationStore
from reason_iad.config import AppConfig, MemoryConfig, ReasoningConfig, StudioConfig
from reason_iad.knowledge.embedders import FakeEmbedder
from reason_iad.knowledge.seed import load_seed_entries
from reason_iad.knowledge.store import KnowledgeStore
from reason_iad.memory import open_memory
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.paths import PROJECT_ROOT, SEED_KNOWLEDGE_DIR
from reason_iad.pipeline import Pipeline
from reason_iad.synth import render_sample
from reason_iad.synth.exemplars import rendered_exemplars

pytestmark = pytest.mark.e2e
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
WOOD = "SynthIAD / wood"


@pytest.fixture(scope="module")
def studio(tiny_backends, tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e-curation")
    store = KnowledgeStore(folder, FakeEmbedder(32), None, seed=load_seed_entries(SEED_KNOWLEDGE_DIR))
    exemplars = ExemplarStore(folder, seed=lambda: [e for e in rendered_exemplars(4) if e.category == "wood"])
    memory = open_memory(folder, MemoryConfig(enabled=True, image_size=64), exemplars=exemplars)
    for seed in (5, 6, 7):  # recent inspections for the histogram
        memory.inspect(render_sample("wood", "hole" if seed < 7 else None, seed, 128).image, "SynthIAD", "wood")
    annotations = AnnotationStore(folder)
    hole = render_sample("wood", "hole", 3, 128)
    annotations.add(hole.image, "defective", "SynthIAD", "wood", author="ana", defect="hole", mask=hole.mask)
    annotations.add(render_sample("wood", None, 4, 128).image, "normal", "SynthIAD", "wood", author="ana")
    config = AppConfig(
        reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=3), studio=StudioConfig(port=free_port())
    )
    pipeline = Pipeline(tiny_backends["qwen2_5_vl"], config, store, exemplars, annotations, memory)
    blocks = build_studio(config, pipeline, examples=[])
    blocks.queue().launch(**launch_options(config) | {"prevent_thread_lock": True, "quiet": True})
    yield f"http://127.0.0.1:{config.studio.port}/", pipeline, folder
    blocks.close()


def _browser(playwright):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)


def _choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).click()


def _text_has(page, selector: str, text: str, timeout: int = 60_000) -> None:
    page.wait_for_function(f"() => document.querySelector({selector!r})?.innerText.includes({text!r})", timeout=timeout)


def test_threshold_compare_and_three_exports_in_a_browser(studio, tmp_path):
    from playwright.sync_api import sync_playwright

    url, pipeline, _ = studio
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        page.goto(url, wait_until="load")
        page.wait_for_selector("#run", timeout=60_000)

        page.get_by_role("tab", name="Knowledge").click()
        page.get_by_text("Anomaly threshold (visual memory)").click()
        _choose(page, "#threshold-category", WOOD)
        _text_has(page, "#threshold-summary", "Fitted:")
        assert "3 recent" not in page.locator("#threshold-summary").inner_text()  # no proposal yet
        page.locator("#threshold-plot .js-plotly-plot").wait_for(timeout=30_000)
        names = page.evaluate("() => document.querySelector('#threshold-plot .js-plotly-plot').data.map(t => t.name)")
        assert names[:2] == ["normal exemplars (leave-one-out)", "recent inspections"], names
        number = page.locator("#threshold-slider input[type=number]")
        number.fill("0.95")
        number.press("Enter")
        _text_has(page, "#threshold-summary", "of 3 recent inspections would change verdict")
        page.screenshot(path=str(ARTIFACTS / "e2e-10-threshold.png"), full_page=True)
        page.locator("#threshold-note textarea").fill("wood grain varies more than the exemplars show")
        page.click("#threshold-save")
        _text_has(page, "#threshold-history", "wood grain varies")
        assert pipeline.memory.threshold_view("SynthIAD", "wood").curated  # written, versioned, with its note
        assert pipeline.memory.thresholds.history("SynthIAD", "wood")[-1].note.startswith("wood grain")

        page.get_by_role("tab", name="Compare").click()
        query = tmp_path / "query.png"
        render_sample("wood", "hole", 11, 128).image.save(query)
        page.set_input_files("#compare-image input[type=file]", str(query))
        page.wait_for_timeout(1500)
        page.click("#compare-run")
        _text_has(page, "#compare-table", "full", timeout=180_000)
        page.locator("#compare-curves .js-plotly-plot").wait_for(timeout=30_000)
        assert _rows(page, "#compare-table") == 2  # one row per configuration
        traces = "() => document.querySelector('#compare-curves .js-plotly-plot').data.length"
        assert page.evaluate(traces) >= 2  # a curve per configuration
        page.screenshot(path=str(ARTIFACTS / "e2e-11-compare.png"), full_page=True)

        page.get_by_role("tab", name="Annotate").click()
        _text_has(page, "#annotations-table", "hole")
        assert _rows(page, "#annotations-table") == 2  # listed from the page's first load

        page.get_by_role("tab", name="Inspect").click()  # inspect, then correct its mask in Annotate
        page.set_input_files("#query-image input[type=file]", str(query))
        page.wait_for_timeout(1500)
        page.click("#run")
        _text_has(page, "#answer", "Answer:", timeout=180_000)
        page.get_by_role("tab", name="Annotate").click()
        page.click("#open-last")
        page.wait_for_function(
            "() => document.querySelector('#annotate-category textarea, #annotate-category input')?.value === 'wood'"
        )  # the inspection's category comes along with its image and pre-filled mask
        page.locator("#annotate-defect textarea, #annotate-defect input").first.fill("hole")
        page.click("#annotate-save")
        _text_has(page, "#annotate-status", "Saved annotation")
        page.screenshot(path=str(ARTIFACTS / "e2e-12-corrected.png"), full_page=True)
        saved = pipeline.annotations.list()[-1]
        assert saved.label == "defective" and saved.mask is not None and saved.mask.getbbox() is not None
        assert saved.model_answer  # the model's answer is stored beside the correction
        wanted = {"mmad": "mmad.json", "mvtec": "wood/train/good/", "coco": "annotations.json"}
        for name, member in wanted.items():
            page.locator("#export-format").get_by_text(_format_label(name), exact=True).click()
            page.click("#export-zip")
            link = page.locator(f"#export-download a[href*='annotations-{name}']")
            link.wait_for(timeout=60_000)
            with page.expect_download() as download:
                link.click()
            saved = tmp_path / f"{name}.zip"
            download.value.save_as(saved)
            names = zipfile.ZipFile(saved).namelist()
            assert any(member in n for n in names), (name, names[:10])
        page.screenshot(path=str(ARTIFACTS / "e2e-13-exports.png"), full_page=True)
        browser.close()


def _rows(page, table: str) -> int:
    """Data rows of a Gradio dataframe (its grid's row count, header excluded; rows render only when in view)."""
    return int(page.locator(f"{table} [role=grid]").get_attribute("aria-rowcount")) - 1


def _format_label(name: str) -> str:
    from reason_iad.exports import EXPORT_FORMATS

    return EXPORT_FORMATS[name].label
