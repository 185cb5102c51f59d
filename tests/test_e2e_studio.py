"""End to end in a real browser (Debian chromium + Playwright): inspect, stream, edit knowledge, see it used.

Screenshots go to test-artifacts/. `.ci/run` installs chromium; the test is marked `e2e` and CI runs it.
"""

import re
import shutil
from pathlib import Path

import pytest

from demo.gallery import load_gallery
from demo.studio import build_studio, launch_options
from ports import free_port
from reason_iad.config import AppConfig, ReasoningConfig, StudioConfig
from reason_iad.knowledge.embedders import FakeEmbedder
from reason_iad.knowledge.seed import load_seed_entries
from reason_iad.knowledge.store import KnowledgeStore
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.paths import EXAMPLES_DIR, PROJECT_ROOT, SEED_KNOWLEDGE_DIR
from reason_iad.pipeline import Pipeline
from reason_iad.synth.exemplars import gallery_exemplars

pytestmark = pytest.mark.e2e
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def studio_url(tiny_backends, tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e-kb")
    store = KnowledgeStore(folder, FakeEmbedder(32), None, seed=load_seed_entries(SEED_KNOWLEDGE_DIR))
    exemplars = ExemplarStore(folder, seed=gallery_exemplars)
    config = AppConfig(
        reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=4), studio=StudioConfig(port=free_port())
    )
    studio = build_studio(
        config, Pipeline(tiny_backends["qwen2_5_vl"], config, store, exemplars), examples=load_gallery(EXAMPLES_DIR)
    )
    studio.queue().launch(**launch_options(config) | {"prevent_thread_lock": True, "quiet": True})
    yield f"http://127.0.0.1:{config.studio.port}/"
    studio.close()


def _answer_text(page) -> str:
    return page.locator("#answer").inner_text()


def test_inspect_stream_edit_knowledge_and_see_the_new_version(studio_url):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    image = sorted(p for p in (EXAMPLES_DIR / "wood").glob("*.png") if "_mask" not in p.name)[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(studio_url, wait_until="load")
        page.wait_for_selector("#run", timeout=60_000)
        page.set_input_files("#query-image input[type=file]", str(image))
        page.wait_for_function(  # the preview consults the visual memory (a first use seeds its bank)
            "() => document.querySelector('#knowledge-pins')?.innerText.includes('synthiad/wood')", timeout=120_000
        )
        page.click("#run")
        page.wait_for_selector("#reasoning-plot .js-plotly-plot", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelector('#answer')?.innerText.includes('Answer:')", timeout=120_000
        )
        first = _answer_text(page)
        assert "knowledge version" in first
        page.screenshot(path=str(ARTIFACTS / "e2e-1-inspect.png"), full_page=True)
        version = int(first.split("knowledge version ")[1].split()[0])

        page.get_by_role("tab", name="Knowledge").click()
        page.fill("#kb-query textarea", "wood scratch")
        page.click("#kb-search")
        page.wait_for_function("() => document.querySelector('#search-results')?.innerText.includes('synthiad/wood')")
        page.locator("#search-results").get_by_text("synthiad/wood/", exact=False).first.click()
        page.wait_for_function("() => document.querySelector('#edit-id textarea, #edit-id input')?.value")
        page.fill("#edit-text textarea", "Edited in the browser: a long thin dark line across the grain.")
        page.click("#save-entry")
        page.wait_for_function("() => document.querySelector('#kb-status')?.innerText.includes('Saved')")
        page.screenshot(path=str(ARTIFACTS / "e2e-2-knowledge.png"), full_page=True)

        page.get_by_role("tab", name="Inspect").click()
        page.click("#run")
        page.wait_for_function(
            f"() => document.querySelector('#answer')?.innerText.includes('knowledge version {version + 1}')",
            timeout=120_000,
        )
        page.screenshot(path=str(ARTIFACTS / "e2e-3-new-version.png"), full_page=True)
        browser.close()
    assert Path(ARTIFACTS / "e2e-3-new-version.png").stat().st_size > 10_000


def test_a_gallery_example_shows_its_cited_evidence_and_patches_on_the_defect(studio_url):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    index = next(i for i, item in enumerate(load_gallery(EXAMPLES_DIR)) if item.mask is not None)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(studio_url, wait_until="load")
        page.wait_for_selector("#run", timeout=60_000)
        page.locator("#example-gallery button.thumbnail-item").nth(index).click()
        page.wait_for_function(
            "() => document.querySelector('#knowledge-pins')?.innerText.includes('/')", timeout=120_000
        )
        page.get_by_text("Reasoning settings").click()
        page.get_by_role("radio", name="full", exact=True).first.check()
        page.get_by_text("Reasoning settings").click()  # folded again: the run is watched on one screen
        page.click("#run")
        page.wait_for_function("() => document.querySelector('#answer')?.innerText.includes('Step ')", timeout=120_000)
        page.evaluate("window.scrollTo(0, 0)")  # as a visitor sees it: the top of the page
        page.wait_for_timeout(300)
        for part in ("#query-image", "#explanation", "#reasoning-plot", "#answer", "#answer-plot", "#evidence"):
            box = page.locator(part).bounding_box()  # all on the 1440x900 screen while the run streams
            assert box is not None and box["y"] + min(box["height"], 120) <= 900, (part, box)
        page.screenshot(path=str(ARTIFACTS / "e2e-4-streaming.png"))
        page.wait_for_function(
            "() => document.querySelector('#answer')?.innerText.includes('Answer:')", timeout=120_000
        )
        grounding = page.locator("#grounding").inner_text()
        assert re.search(r"\d+ of \d+ kept patches on the defect", grounding), grounding
        evidence = page.locator("#evidence")
        assert evidence.is_visible() and evidence.get_by_text("knowledge 1", exact=True).filter(visible=True).count()
        table = evidence.inner_text()
        assert "on defect" in table and re.search(r"^knowledge \S+/\S+ ", table, re.M)  # cited entries
        kept = int(re.search(r"of (\d+) kept", grounding).group(1))
        assert len(re.findall(r"^patch \d+$", table, re.M)) == kept  # one row per kept patch
        page.screenshot(path=str(ARTIFACTS / "e2e-5-evidence.png"))
        source = "() => document.querySelector('#explanation img')?.src"
        if kept:  # a click on a cited patch re-renders the explanation with that patch emphasised
            before = page.evaluate(source)
            evidence.get_by_text("patch 1", exact=True).filter(visible=True).first.click()
            page.wait_for_function(f"() => ({source})() !== {before!r}")
        before = page.evaluate(source)
        page.locator("#layers").get_by_text("attention", exact=True).click()  # a layer on: the view is redrawn
        page.wait_for_function(f"() => ({source})() !== {before!r}")
        page.screenshot(path=str(ARTIFACTS / "e2e-6-attention-layer.png"))
        page.click("#run-card-button")  # the finished run as a downloadable JSON card
        page.get_by_text("run-card-", exact=False).first.wait_for(timeout=60_000)
        page.get_by_role("tab", name="Annotate").click()  # the correction loop starts from this inspection
        page.get_by_text("kept patches", exact=True).filter(visible=True).first.click()
        page.click("#open-last")
        page.wait_for_function(
            "() => document.querySelector('#annotation-editor canvas, #annotation-editor img') !== null"
        )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "e2e-7-correction.png"))
        browser.close()


def test_bring_your_own_product_then_inspect_one_of_its_defects(studio_url, tmp_path):
    """Five real photographs (scikit-image's brick, greyscale) become a category; a damaged one is inspected."""
    import skimage.data
    from PIL import Image, ImageDraw

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    brick = skimage.data.brick()  # 512x512 greyscale photograph, CC0
    paths = []
    for n, (y, x) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256), (128, 128), (64, 300)]):
        path = tmp_path / f"brick-{n}.png"
        Image.fromarray(brick[y : y + 160, x : x + 160]).save(path)
        paths.append(str(path))
    damaged = Image.open(paths[-1]).convert("RGB")
    ImageDraw.Draw(damaged).ellipse((50, 60, 90, 100), fill=(250, 250, 250))
    damaged.save(tmp_path / "damaged.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(studio_url, wait_until="load")
        page.wait_for_selector("#run", timeout=60_000)
        page.get_by_text("Bring your own product").click()
        page.set_input_files("#byop-files input[type=file]", paths[:-1])
        page.fill("#byop-category textarea, #byop-category input", "brick")
        page.wait_for_timeout(1500)  # the upload settles
        page.click("#byop-create")
        page.wait_for_function(
            "() => document.querySelector('#byop-status')?.innerText.includes('Created')", timeout=120_000
        )
        status = page.locator("#byop-status").inner_text()
        assert "Created Mine / brick from 5 normal images" in status, status
        page.screenshot(path=str(ARTIFACTS / "e2e-8-new-category.png"), full_page=True)
        page.set_input_files("#query-image input[type=file]", str(tmp_path / "damaged.png"))
        page.wait_for_timeout(1500)
        page.click("#run")
        page.wait_for_function(
            "() => document.querySelector('#answer')?.innerText.includes('Answer:')", timeout=120_000
        )
        assert "synthiad" not in page.locator("#answer").inner_text().lower()  # its own category, not a gallery one
        assert page.locator("#explanation img").get_attribute("src")
        page.screenshot(path=str(ARTIFACTS / "e2e-9-inspect-new-category.png"))
        browser.close()
