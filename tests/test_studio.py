import json
import urllib.request

import gradio as gr
import numpy as np
from PIL import Image

from demo.gallery import GalleryItem, load_gallery, mask_annotations, questions_markdown
from demo.studio import build_studio, launch_options, model_banner
from ports import free_port
from reason_iad.config import AppConfig, BackendConfig, StudioConfig
from reason_iad.paths import EXAMPLES_DIR


def _write_example(folder):
    Image.new("RGB", (32, 32), (120, 90, 60)).save(folder / "a.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[4:10, 6:12] = 255
    Image.fromarray(mask).save(folder / "a_mask.png")
    question = {
        "Question": "Is there any defect in the object?",
        "Options": {"A": "Yes.", "B": "No."},
        "Answer": "A",
        "type": "Anomaly Detection",
    }
    index = [
        {
            "image": "a.png",
            "dataset": "SynthIAD",
            "category": "wood",
            "defect": "hole",
            "mask": "a_mask.png",
            "questions": [question],
        }
    ]
    (folder / "index.json").write_text(json.dumps(index))


def test_gallery_reads_index_and_renders_mask_and_questions(tmp_path):
    _write_example(tmp_path)
    [item] = load_gallery(tmp_path)
    assert item.caption == "wood · hole"
    [(mask, label)] = mask_annotations(item)
    assert label == "hole"
    assert mask.shape == (32, 32) and mask.max() == 1.0 and mask.sum() == 36
    text = questions_markdown(item)
    assert "**A. Yes.** ✓" in text and "B. No." in text


def test_missing_index_gives_empty_gallery(tmp_path):
    assert load_gallery(tmp_path) == []


def test_normal_example_has_no_annotation(tmp_path):
    item = GalleryItem(image=tmp_path / "x.png", dataset="d", category="c", defect="good", mask=None, questions=())
    assert mask_annotations(item) == []


def test_committed_gallery_has_every_file():
    items = load_gallery(EXAMPLES_DIR)
    assert len(items) >= 24, "examples/ should hold at least 3 images for each of 8 categories"
    for item in items:
        assert item.image.is_file()
        assert (item.mask is None) == (item.defect == "good")
        if item.mask is not None:
            assert item.mask.is_file()


def test_banner_names_the_active_model():
    banner = model_banner(AppConfig())
    assert "demonstration model trained on synthetic data" in banner and banner.count("embedded") == 1
    real = AppConfig(backend=BackendConfig(model="Qwen/Qwen2.5-VL-7B-Instruct", quantization="4bit"))
    assert "Qwen/Qwen2.5-VL-7B-Instruct" in model_banner(real) and "4bit" in model_banner(real)


def test_studio_serves_the_gallery_page(tmp_path):
    _write_example(tmp_path)
    config = AppConfig(studio=StudioConfig(port=free_port()))
    studio = build_studio(config, examples=load_gallery(tmp_path))
    assert isinstance(studio, gr.Blocks)
    options = launch_options(config) | {"prevent_thread_lock": True, "quiet": True, "allowed_paths": [str(tmp_path)]}
    studio.launch(**options)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{config.studio.port}/config", timeout=10) as response:
            page_config = json.loads(response.read())
        labels = [c.get("props", {}).get("label") for c in page_config["components"]]
        assert "Example gallery (1 images)" in labels
    finally:
        studio.close()
