"""A deterministic, millisecond-fast `Backend` whose reward landscape the test controls.

The "model" is linear and causal: the hidden state at a suffix position is the running sum of the suffix
embeddings up to it, and the logits are that sum times a fixed token matrix. Option A's logit is
`bias + <target, h>` and option B's is 0, so with the answer reward alone the reward rises as the latents move
along `target` (while A leads). Each query-image token's embedding is `gain_i * target / |target|^2` plus noise
orthogonal to `target`, so injecting token i changes the answer logit by exactly `gain_i`: the test decides which
patches help. Attention rows over image `i` are a fixed softmax over `attention_scores[i]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from reason_iad.backends.base import ImageSlots, Prefix, SuffixOutput

LETTERS = {"A": 1, "B": 2, "C": 4, "D": 5, "E": 6}
END = 3
HEADER = (7, 8)


@dataclass(frozen=True)
class Generation:
    text: str
    token_ids: tuple[int, ...]


@dataclass
class FakeBackend:
    """Linear causal fake with a controllable answer landscape, patch gains and attention."""

    dim: int = 8
    vocab: int = 16
    rms: float = 1.0
    bias: float = 0.5  # option A's logit at the origin: A leads, so moving along target raises the reward
    gains: tuple[float, ...] = (0.0,) * 16  # answer-logit change per query token when injected
    attention_scores: dict[int, tuple[float, ...]] = field(default_factory=dict)  # image index -> per token
    template_tokens: int = 16  # as many as the query: scoring the wrong image cannot fail by shape alone
    name: str = "fake"
    family: str = "fake"
    max_context: int = 4096
    latent_token_id: int = 9
    device: torch.device = torch.device("cpu")
    calls: list[dict] = field(default_factory=list)
    generated: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        table = torch.randn(self.vocab, self.dim, generator=generator)
        table[:, 0] = 0.0  # tokens carry nothing along the target direction: the origin is clean
        self.table = table * (self.rms / table.pow(2).mean().sqrt())
        self.embedding_rms = float(self.table.pow(2).mean().sqrt())
        self.hidden_size = self.dim
        self.end_token_ids = {END}
        target = torch.zeros(self.dim)
        target[0] = 1.0 / self.rms  # one unit of target direction per rms of movement
        self.target = target
        self.readout = torch.randn(self.vocab, self.dim, generator=generator) * 0.01
        self.readout[LETTERS["A"]] = target
        self.readout[LETTERS["B"]] = 0.0

    # ------------------------------------------------------------------ prompt side
    def encode_text(self, text: str) -> list[int]:
        return [10 + (ord(c) % (self.vocab - 10)) for c in text] or [10]

    def followup_ids(self, answer: str, question: str) -> list[int]:
        return [*HEADER, *self.encode_text(answer), END, *self.encode_text(question), *HEADER]

    def first_token_ids(self, texts) -> list[int]:
        return [LETTERS.get(t.strip()[:1], 10) for t in texts]

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.table[token_ids.to(torch.long).cpu()].float()

    def _image_slots(self, start: int, n: int, size, query: bool) -> ImageSlots:
        generator = torch.Generator().manual_seed(100 + n)
        noise = torch.randn(n, self.dim, generator=generator) * 0.3 * self.rms
        noise[:, 0] = 0.0  # orthogonal to the target direction
        embeddings = noise
        if query:
            gains = torch.tensor(self.gains[:n], dtype=torch.float32)
            embeddings = noise + gains[:, None] * self.target / self.target.pow(2).sum()
        side = int(n**0.5)
        cell_w, cell_h = size[0] / side, size[1] / side
        boxes = torch.tensor(
            [[c * cell_w, r * cell_h, (c + 1) * cell_w, (r + 1) * cell_h] for r in range(side) for c in range(side)]
        )
        return ImageSlots(start, start + n, embeddings, boxes, (side, side), size)

    def prepare(self, messages, reserve: int = 0) -> Prefix:
        images = [p for m in messages for p in m.parts if isinstance(p, Image.Image)]
        slots, position = [], 5
        for index, image in enumerate(images):
            query = index == len(images) - 1
            n = len(self.gains) if query else self.template_tokens
            slots.append(self._image_slots(position, n, image.size, query))
            position += n + 3
        length = position + 5
        return Prefix(
            input_ids=torch.zeros(1, length, dtype=torch.long),
            embeds=torch.zeros(1, length, self.dim),
            position_ids=torch.arange(length)[None],
            cache=None,
            images=tuple(slots),
            next_position=length,
            assistant_header_ids=torch.tensor(HEADER),
            last_logits=torch.zeros(self.vocab),
        )

    # ------------------------------------------------------------------ suffix side
    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = hidden @ self.readout.T  # [..., V]
        logits[..., LETTERS["A"]] += self.bias
        return logits

    def suffix_forward(
        self, prefix, suffix_embeds, logit_positions=None, attention_rows=None, image_index=-1, output_hidden=False
    ) -> SuffixOutput:
        self.calls.append({"image_index": image_index, "batch": suffix_embeds.shape[0]})
        hidden = suffix_embeds.float().cumsum(dim=1)  # [B, S, D], causal
        logits = self._logits(hidden)
        if logit_positions is not None:
            logits = torch.stack([logits[b, s] for b, s in logit_positions])
        attention = None
        if attention_rows is not None:
            slots = prefix.images[image_index]
            scores = torch.tensor(
                self.attention_scores.get(image_index % len(prefix.images), (0.0,) * slots.num_tokens)
            )
            attention = torch.softmax(scores, -1).expand(len(attention_rows), -1)
        return SuffixOutput(logits, hidden[0] if output_hidden else None, attention)

    def generate(self, prefix, suffix_embeds, max_new_tokens=64, min_new_tokens=0) -> Generation:
        self.generated.append(suffix_embeds.detach().clone())
        return Generation("a fake rationale", (11,))
