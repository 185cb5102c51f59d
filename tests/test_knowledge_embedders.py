import json

import numpy as np
import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.knowledge.embedders import FakeEmbedder, ThumbnailEmbedder, make_embedder

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def test_open_clip_loads_local_weights_offline(tmp_path):
    import open_clip
    import torch
    from safetensors.torch import save_file

    (tmp_path / "Tiny-Test-CLIP.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(tmp_path)
    model = open_clip.create_model("Tiny-Test-CLIP", pretrained=None)
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    embedder = make_embedder(f"open_clip:Tiny-Test-CLIP:{weights}")
    images = embedder.embed_images([Image.new("RGB", (40, 30), (200, 0, 0)), Image.new("RGB", (40, 30), (0, 0, 200))])
    texts = embedder.embed_texts(["a red stain", "a blue crack"])
    assert images.shape == texts.shape == (2, 32)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    with torch.no_grad():
        expected = model.eval().encode_text(open_clip.get_tokenizer("Tiny-Test-CLIP")(["a red stain"]))[0].numpy()
    assert np.allclose(texts[0], expected / np.linalg.norm(expected), atol=1e-5)


def test_pretrained_tag_while_offline_fails_fast_with_a_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load open_clip"):
        make_embedder("open_clip:ViT-B-32:laion2b_s34b_b79k")


def test_fake_and_thumbnail_are_deterministic_and_normalised():
    fake = FakeEmbedder(16)
    assert np.array_equal(fake.embed_texts(["O'Brien x"]), FakeEmbedder(16).embed_texts(["O'Brien x"]))
    thumbs = ThumbnailEmbedder().embed_images([Image.new("RGB", (64, 64), (10, 200, 30))])
    assert thumbs.shape == (1, 768) and abs(np.linalg.norm(thumbs) - 1) < 1e-5
    with pytest.raises(UserError, match="unknown embedder"):
        make_embedder("word2vec")
