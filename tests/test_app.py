import pytest

import app
from reason_iad.config import AppConfig, StudioConfig


def test_flags_map_onto_config(tmp_path):
    saved = tmp_path / "config.json"
    saved.write_text(AppConfig(studio=StudioConfig(port=9001)).to_json())
    args = app.parse_args(["--config", str(saved), "--port", "7000", "--model", "/m", "--quantization", "4bit"])
    config = app.config_from_args(args)
    assert config.studio.port == 7000
    assert config.backend.model == "/m"
    assert config.backend.quantization == "4bit"


def test_environment_provides_defaults(monkeypatch):
    monkeypatch.setenv("REASON_IAD_MODEL", "Qwen/Qwen2.5-VL-7B-Instruct")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    config = app.config_from_args(app.parse_args([]))
    assert config.backend.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert config.studio.port == 7999


def test_clip_flag_chooses_the_retriever_and_the_embedded_default_uses_the_tiny_clip(monkeypatch):
    assert app.config_from_args(app.parse_args([])).knowledge.image_embedder == "tiny_clip"
    args = app.parse_args(["--model", "/m", "--clip", "open_clip:ViT-B-32:/w/clip.bin"])
    assert app.config_from_args(args).knowledge.image_embedder == "open_clip:ViT-B-32:/w/clip.bin"
    monkeypatch.setenv("REASON_IAD_CLIP", "open_clip:RN50")
    assert app.config_from_args(app.parse_args(["--model", "/m"])).knowledge.image_embedder == "open_clip:RN50"


@pytest.mark.parametrize("argv", [["--port", "0"], ["--config", "/nonexistent/config.json"]])
def test_bad_flags_give_one_line_and_exit_2(argv, capsys):
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("app.py: error:")
    assert "Traceback" not in err
