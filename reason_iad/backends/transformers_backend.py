"""The one `Backend` implementation, over any supported transformers multimodal LLM (see `families.py`).

The prefix (everything up to the end of the last user turn's content) runs once; suffix forwards reuse its
KV cache expanded to the batch of candidates (views, never copies of the prefix, never mutated).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from reason_iad.backends import families
from reason_iad.backends.attention import ROWS_ATTENTION, capture_rows
from reason_iad.backends.base import ImageSlots, Message, Prefix, SuffixOutput
from reason_iad.errors import UserError

_SPLIT_MARK = "\u2063REASONIADSPLIT\u2063"
_LATENT_CANDIDATES = ("<|latent|>", "<|endoftext|>", "<|reserved_special_token_0|>")
_END_OF_TURN = ("<|im_end|>", "<end_of_utterance>", "<|eot_id|>")


@dataclass(frozen=True)
class Generation:
    """A greedy continuation."""

    text: str
    token_ids: tuple[int, ...]


class TransformersBackend:
    """A loaded model + processor behind the `Backend` protocol."""

    def __init__(self, model, processor, name: str, quantization: str = "none") -> None:
        if "cache" not in inspect.signature(type(model).forward).parameters:
            import transformers

            raise UserError(
                f"transformers {transformers.__version__} takes past_key_values=, not cache=: the prefix cache "
                "would be ignored; install the pinned transformers==5.24.0"
            )
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.model.set_attn_implementation({"text_config": ROWS_ATTENTION})  # SDPA + chosen attention rows
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name
        self.quantization = quantization
        self.family_spec = families.family_for(model.config.model_type)
        self.family = model.config.model_type
        text_config = model.config.get_text_config()
        self.hidden_size = int(text_config.hidden_size)
        self.max_context = int(getattr(text_config, "max_position_embeddings", 32768))
        table = model.get_input_embeddings().weight
        self.device, self.dtype = table.device, table.dtype
        self.embedding_rms = embedding_rms(table)
        self.latent_token_id = self._first_known_token(_LATENT_CANDIDATES, fallback=self.tokenizer.pad_token_id)
        ends = [self.tokenizer.convert_tokens_to_ids(t) for t in _END_OF_TURN] + [self.tokenizer.eos_token_id]
        self.end_token_ids = {i for i in ends if i is not None and i != self.tokenizer.unk_token_id}

    def _first_known_token(self, candidates: Sequence[str], fallback: int) -> int:
        vocab = self.tokenizer.get_vocab()
        return next((vocab[t] for t in candidates if t in vocab), fallback)

    # ---------------------------------------------------------------- prompt rendering
    def render(self, messages: Sequence[Message]) -> tuple[str, str, list[Image.Image]]:
        """Chat-template text split at the end of the last user turn's content: (prefix, header, images)."""
        if not messages or messages[-1].role != "user":
            raise ValueError("the last message must be the user's turn")
        chat, images = [], []
        for i, message in enumerate(messages):
            content = []
            for part in message.parts:
                if isinstance(part, Image.Image):
                    content.append({"type": "image"})
                    images.append(part)
                else:
                    content.append({"type": "text", "text": part})
            if i == len(messages) - 1:
                content.append({"type": "text", "text": _SPLIT_MARK})
            chat.append({"role": message.role, "content": content})
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        prefix_text, header_text = text.split(_SPLIT_MARK)
        return prefix_text, header_text, images

    def followup_ids(self, answer: str, question: str) -> list[int]:
        """Tokens after the latent slots for a follow-up: header, the answer turn, a user turn, a new header."""
        chat = [
            {"role": "user", "content": [{"type": "text", "text": "." + _SPLIT_MARK}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {"role": "user", "content": [{"type": "text", "text": question}]},
        ]
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return self.encode_text(text.split(_SPLIT_MARK, 1)[1])

    def encode_text(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def first_token_ids(self, texts: Sequence[str]) -> list[int]:
        """First token of each text as the assistant would begin it (e.g. option letters)."""
        return [self.encode_text(t)[0] for t in texts]

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids [...] -> embeddings [..., D] in fp32."""
        return self.model.get_input_embeddings()(token_ids.to(self.device)).float()

    # ---------------------------------------------------------------- prefix
    def processor_inputs(self, text: str, images: list[Image.Image]) -> dict:
        """Processor outputs for one sequence, on the model's device."""
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt")
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    @torch.no_grad()
    def prepare(self, messages: Sequence[Message], reserve: int = 0) -> Prefix:
        """Merge vision features into the prefix embeddings, compute positions and run the prefix once.

        `reserve` positions are needed after the prefix and the assistant header (latents, patches, the answer):
        a prompt that cannot fit them in the model's context is refused before any forward is spent.
        """
        prefix_text, header_text, images = self.render(messages)
        inputs = self.processor_inputs(prefix_text, images)
        input_ids = inputs["input_ids"]  # [1, P]
        header = torch.tensor(self.encode_text(header_text), device=self.device)
        needed = input_ids.shape[1] + header.shape[0] + reserve
        if needed > self.max_context:
            raise UserError(
                f"the prompt needs {needed} positions (prefix {input_ids.shape[1]}) but the model supports "
                f"{self.max_context}: shorten the question, the options or the knowledge"
            )
        embeds = self.model.get_input_embeddings()(input_ids)  # [1, P, D]
        image_mask = input_ids[0] == self.model.config.image_token_id  # [P]
        features = []
        if images:
            merged = families.image_features(self.family_spec, self.model, inputs)  # [n_all, D]
            embeds = embeds.masked_scatter(image_mask[None, :, None].expand_as(embeds), merged.to(embeds.dtype))
            features = self._split_per_image(image_mask, merged, len(images))
        positions, next_position = families.position_ids(self.family_spec, self.model, inputs)
        out = self.model(
            inputs_embeds=embeds,
            position_ids=positions,
            attention_mask=torch.ones_like(input_ids),
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits are read: never [P, V]
        )
        slots = self._image_slots(inputs, image_mask, features, images)
        return Prefix(input_ids, embeds, positions, out.cache, slots, next_position, header, out.logits[0, -1].float())

    @staticmethod
    def _split_per_image(image_mask: torch.Tensor, merged: torch.Tensor, num_images: int) -> list[torch.Tensor]:
        """Split all image features by the contiguous runs of image tokens (one run per image)."""
        flags = image_mask.long().tolist()
        runs = [i for i in range(len(flags)) if flags[i] and (i == 0 or not flags[i - 1])]
        if len(runs) != num_images:
            raise ValueError(
                f"{num_images} images but {len(runs)} runs of image tokens: image tiling is not supported, "
                "disable it in the processor (e.g. do_image_splitting=False)"
            )
        lengths = [next((j for j in range(start, len(flags)) if not flags[j]), len(flags)) - start for start in runs]
        return list(torch.split(merged, lengths))

    def _image_slots(self, inputs, image_mask, features, images) -> tuple[ImageSlots, ...]:
        where = torch.nonzero(image_mask).flatten().tolist()
        slots, offset = [], 0
        crop = getattr(self.processor.image_processor, "crop_size", None)
        center_crop = (
            (crop["width"], crop["height"])
            if crop and getattr(self.processor.image_processor, "do_center_crop", False)
            else None
        )
        for index, (feature, image) in enumerate(zip(features, images, strict=True)):
            n = feature.shape[0]
            start, end = where[offset], where[offset + n - 1] + 1
            if end - start != n:
                raise ValueError(f"image {index}'s tokens are not contiguous in the prompt")
            grid = families.token_grid(self.family_spec, self.model, inputs, index, n)
            canvas = families.processed_region(self.family_spec, self.processor, inputs, index)
            boxes = families.pixel_boxes(grid, canvas, image.size, center_crop)
            slots.append(ImageSlots(start, end, feature.detach().float(), boxes, grid, image.size))
            offset += n
        return tuple(slots)

    # ---------------------------------------------------------------- suffix
    def expanded_cache(self, prefix: Prefix, batch: int) -> DynamicCache:
        """A fresh cache whose layers view the prefix keys/values expanded to `batch` (no copy, no mutation)."""
        cache = DynamicCache(config=self.model.config)
        for layer, source in zip(cache.layers, prefix.cache.layers, strict=True):
            keys = source.keys.expand(batch, -1, -1, -1)
            values = source.values.expand(batch, -1, -1, -1)
            if type(layer) is DynamicLayer:
                layer.device, layer.keys, layer.values, layer.is_initialized = keys.device, keys, values, True
            else:
                layer.update(keys, values)
        return cache

    def suffix_forward(
        self,
        prefix: Prefix,
        suffix_embeds: torch.Tensor,
        logit_positions: Sequence[tuple[int, int]] | None = None,
        attention_rows: Sequence[int] | None = None,
        image_index: int = -1,
        output_hidden: bool = False,
    ) -> SuffixOutput:
        """Run suffix embeddings [B, S, D] after the prefix; logits only where read, probes of row 0 only.

        The B rows are packed into one sequence after a single view of the prefix cache, with a block-diagonal
        causal mask (each row sees the prefix and itself) and every row's positions restarting after the prefix:
        identical to B separate calls, without materialising B copies of the prefix keys and values.
        `logit_positions` lists the (row, position) pairs whose logits are computed ([K, V] in that order; None:
        all, [B, S, V]). `attention_rows` (positions of row 0) and `output_hidden` probe row 0 only: the candidate
        that proposes patches.
        """
        batch, length, _ = suffix_embeds.shape
        want_attention = attention_rows is not None and bool(prefix.images)
        rows = torch.tensor(list(attention_rows or ()), dtype=torch.long, device=self.device)
        keep = 0  # all positions
        if logit_positions is not None:
            keep = torch.tensor([b * length + s for b, s in logit_positions], dtype=torch.long, device=self.device)
        with capture_rows(rows) if want_attention else contextlib.nullcontext() as layers:
            out = self.model(
                inputs_embeds=suffix_embeds.reshape(1, batch * length, -1).to(self.device, self.dtype),
                position_ids=families.suffix_positions(prefix.position_ids, prefix.next_position, 1, length).repeat(
                    *([1] * (prefix.position_ids.dim() - 1)), batch
                ),
                attention_mask=self._packed_mask(prefix.length, batch, length),
                cache=self.expanded_cache(prefix, 1),
                use_cache=True,
                output_hidden_states=output_hidden,
                logits_to_keep=keep,
            )
        attention = None
        if want_attention:
            slots = prefix.images[image_index]
            stacked = torch.stack([a[0, :, :, slots.start : slots.end] for a in layers])  # [layers, H, R, n]
            attention = stacked.float().mean(dim=(0, 1))  # [R, n]
        hidden = out.hidden_states[-1][0, :length].float() if output_hidden else None  # [S, D] of row 0
        logits = out.logits[0].float()  # [K, V] (or [B*S, V])
        if logit_positions is None:
            logits = logits.reshape(batch, length, -1)
        return SuffixOutput(logits, hidden, attention)

    def _packed_mask(self, prefix_length: int, batch: int, length: int) -> torch.Tensor:
        """Additive mask [1, 1, B*S, P + B*S]: the whole prefix, then a causal block per row."""
        block = torch.tril(torch.ones(length, length, dtype=torch.bool, device=self.device))
        allowed = torch.cat(
            [
                torch.ones(batch * length, prefix_length, dtype=torch.bool, device=self.device),
                torch.block_diag(*[block] * batch),
            ],
            dim=1,
        )
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        return torch.where(allowed, zero, torch.finfo(self.dtype).min)[None, None]

    @torch.no_grad()
    def generate(
        self, prefix: Prefix, suffix_embeds: torch.Tensor, max_new_tokens: int = 64, min_new_tokens: int = 0
    ) -> Generation:
        """Greedy decoding from the prefix cache after suffix [1, S, D]; stops at an end-of-turn token.

        End-of-turn tokens are masked until `min_new_tokens` tokens were produced (as `transformers` does).
        """
        cache = self.expanded_cache(prefix, 1)
        position, seen, step_input = prefix.next_position, prefix.length, suffix_embeds.to(self.device, self.dtype)
        tokens: list[int] = []
        for _ in range(max_new_tokens):
            length = step_input.shape[1]
            out = self.model(
                inputs_embeds=step_input,
                position_ids=families.suffix_positions(prefix.position_ids, position, 1, length),
                attention_mask=torch.ones(1, seen + length, dtype=torch.long, device=self.device),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            position, seen = position + length, seen + length
            next_logits = out.logits[0, -1]
            if len(tokens) < min_new_tokens:
                next_logits = next_logits.clone()
                next_logits[list(self.end_token_ids)] = -torch.inf
            token = int(next_logits.argmax())
            if token in self.end_token_ids:
                break
            tokens.append(token)
            step_input = self.model.get_input_embeddings()(torch.tensor([[token]], device=self.device))
        return Generation(self.tokenizer.decode(tokens, skip_special_tokens=True), tuple(tokens))


def embedding_rms(table: torch.Tensor, chunk_rows: int = 2048) -> float:
    """RMS of an embedding table [V, D], accumulated in fp64 over row chunks: never an fp32 copy of the table."""
    total = torch.zeros((), dtype=torch.float64, device=table.device)
    with torch.no_grad():
        for start in range(0, table.shape[0], chunk_rows):
            total += table[start : start + chunk_rows].double().pow(2).sum()
    return float((total / table.numel()).sqrt())
