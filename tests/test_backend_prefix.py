"""Prefix-cached suffix forwards equal the model's own full-sequence forward, for every family, images present."""

import pytest
import torch

from backend_helpers import full_sequence_logits, two_image_messages
from reason_iad.backends.tiny import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_plus_suffix_equals_full_sequence(tiny_backends, family):
    backend = tiny_backends[family]
    messages = two_image_messages()
    prefix = backend.prepare(messages)
    assert len(prefix.images) == 2
    header = prefix.assistant_header_ids
    suffix = backend.embed_tokens(header)[None]  # [1, H, D]
    with torch.no_grad():
        out = backend.suffix_forward(prefix, suffix)
    _, full = full_sequence_logits(backend, messages, header)
    assert full.shape[0] == prefix.length + len(header)
    assert torch.allclose(prefix.last_logits, full[prefix.length - 1], atol=1e-4)
    assert (out.logits[0] - full[prefix.length :]).abs().max() <= 1e-4


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
def test_prefix_cache_is_unchanged_after_many_steps(tiny_backends, family):
    backend = tiny_backends[family]
    prefix = backend.prepare(two_image_messages())
    before = [layer.keys.clone() for layer in prefix.cache.layers]
    suffix = backend.embed_tokens(prefix.assistant_header_ids)[None]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first = backend.suffix_forward(prefix, suffix).logits
        for _ in range(19):
            noise = torch.randn((3, *suffix.shape[1:]), generator=generator) * backend.embedding_rms
            backend.suffix_forward(prefix, suffix.expand(3, -1, -1) + noise)
        last = backend.suffix_forward(prefix, suffix).logits
    assert torch.equal(first, last)
    assert all(torch.equal(b, layer.keys) for b, layer in zip(before, prefix.cache.layers, strict=True))
    assert prefix.cache.get_seq_length() == prefix.length


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_suffix_equals_separate_calls(tiny_backends, family):
    """Rows packed into one forward (block-diagonal mask) give exactly what separate calls give."""
    backend = tiny_backends[family]
    prefix = backend.prepare(two_image_messages())
    batch = torch.randn(3, 5, backend.hidden_size, generator=torch.Generator().manual_seed(1)) * backend.embedding_rms
    with torch.no_grad():
        together = backend.suffix_forward(prefix, batch, attention_rows=[0, 2], output_hidden=True)
        apart = [
            backend.suffix_forward(prefix, batch[i : i + 1], attention_rows=[0, 2], output_hidden=True)
            for i in range(3)
        ]
    assert (together.logits - torch.cat([a.logits for a in apart])).abs().max() <= 1e-4
    # probes (hidden states, attention rows) are of row 0 only: the candidate that proposes patches
    assert together.hidden.shape == (5, backend.hidden_size) and together.image_attention.shape[0] == 2
    assert (together.hidden - apart[0].hidden).abs().max() <= 1e-4
    assert (together.image_attention - apart[0].image_attention).abs().max() <= 1e-5
    assert (together.image_attention - apart[1].image_attention).abs().max() > 1e-6  # row 1 differs: not mixed in


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
def test_kept_logit_positions_equal_the_full_logits_there(tiny_backends, family):
    """Logits computed only at chosen (row, position) pairs equal those rows of the all-positions forward."""
    backend = tiny_backends[family]
    prefix = backend.prepare(two_image_messages())
    batch = torch.randn(3, 5, backend.hidden_size, generator=torch.Generator().manual_seed(2)) * backend.embedding_rms
    pairs = [(0, 4), (2, 0), (1, 3), (2, 4)]
    with torch.no_grad():
        every = backend.suffix_forward(prefix, batch).logits  # [B, S, V]
        kept = backend.suffix_forward(prefix, batch, logit_positions=pairs).logits  # [K, V]
    assert kept.shape == (len(pairs), every.shape[-1]) and kept.dtype == torch.float32
    assert (kept - torch.stack([every[b, s] for b, s in pairs])).abs().max() <= 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_decode_from_cache_equals_generate(tiny_backends, family):
    backend = tiny_backends[family]
    messages = two_image_messages()
    prefix = backend.prepare(messages)
    ours = backend.generate(prefix, backend.embed_tokens(prefix.assistant_header_ids)[None], max_new_tokens=10)
    inputs, _ = full_sequence_logits(backend, messages, prefix.assistant_header_ids)
    with torch.no_grad():
        reference = backend.model.generate(**inputs, max_new_tokens=10, do_sample=False)
    new_tokens = reference[0, inputs["input_ids"].shape[1] :].tolist()
    ends = [i for i, t in enumerate(new_tokens) if t in backend.end_token_ids]
    expected = new_tokens[: ends[0]] if ends else new_tokens
    assert list(ours.token_ids) == expected


def test_qwen_positions_are_mrope(tiny_backends):
    backend = tiny_backends["qwen2_5_vl"]
    prefix = backend.prepare(two_image_messages())
    assert prefix.position_ids.shape[0] == 3  # temporal, height, width
    query = prefix.images[-1]
    rows = prefix.position_ids[1, 0, query.start : query.end]
    cols = prefix.position_ids[2, 0, query.start : query.end]
    assert len(set(rows.tolist())) == query.grid[0] and len(set(cols.tolist())) == query.grid[1]
    assert prefix.next_position == int(prefix.position_ids.max()) + 1 < prefix.length


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_rows_equal_eager_attention_of_the_full_sequence(tiny_backends, family):
    """The rows computed beside SDPA equal what eager attention returns over the whole prompt + suffix."""
    backend = tiny_backends[family]
    messages = two_image_messages()
    prefix = backend.prepare(messages)
    header = prefix.assistant_header_ids
    with torch.no_grad():
        ours = backend.suffix_forward(prefix, backend.embed_tokens(header)[None], attention_rows=[0, len(header) - 1])
        inputs, _ = full_sequence_logits(backend, messages, header)
        model = backend.model
        current = model.config.get_text_config()._attn_implementation
        model.set_attn_implementation({"text_config": "eager"})
        try:
            full = model(**inputs, output_attentions=True)
        finally:
            model.set_attn_implementation({"text_config": current})
    query = prefix.images[-1]
    rows = [prefix.length, prefix.length + len(header) - 1]
    eager = torch.stack([a[0][:, rows, query.start : query.end] for a in full.attentions]).mean(dim=(0, 1))
    assert (ours.image_attention - eager).abs().max() <= 1e-5
