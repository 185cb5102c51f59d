"""The tiny CLIP retriever's architecture and files: what the knowledge side needs to load it (training writes it)."""

from __future__ import annotations

import json
from pathlib import Path

CLIP_NAME = "tiny-clip-synthiad"
CLIP_CONFIG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 96, "layers": 4, "width": 128, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
}
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def register_config(config_file: Path | None = None) -> str:
    """Register the tiny config with open_clip (from a saved config file, else the built-in one); returns its name.

    open_clip names a config after its file, so the text is written to `<tmp>/reason-iad-clip/<name>.json`.
    """
    import tempfile

    import open_clip

    text = Path(config_file).read_text(encoding="utf-8") if config_file else json.dumps(CLIP_CONFIG, indent=2)
    target = Path(tempfile.gettempdir()) / "reason-iad-clip" / f"{CLIP_NAME}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    open_clip.add_model_config(target)
    return CLIP_NAME
