"""An SDPA attention function that can also return the attention of chosen query rows.

Patch scoring needs the latent rows' attention over the image tokens. Eager attention would materialise every
row of every head for the whole batch; this function runs the fused SDPA kernel for the output and computes
the probabilities of the requested rows only (exactly the same values eager attention would give for them).
It is registered under `ROWS_ATTENTION` with transformers' `AttentionInterface` and used for the language model.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

ROWS_ATTENTION = "reason_iad_sdpa_rows"
_CAPTURE: ContextVar[tuple[torch.Tensor, list] | None] = ContextVar("reason_iad_attention_rows", default=None)


def sdpa_with_rows(module, query, key, value, attention_mask, **kwargs):
    """SDPA output; when capturing, also appends softmax(q_rows k^T) [B, H, R, K] of the requested rows."""
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    capture = _CAPTURE.get()
    if capture is not None:
        rows, sink = capture
        batch, heads, _, dim = query.shape
        kv_heads, length = key.shape[1], key.shape[2]
        scaling = kwargs.get("scaling") or module.scaling
        grouped = query[:, :, rows].float().reshape(batch, kv_heads, heads // kv_heads, len(rows), dim)
        scores = grouped @ key.float()[:, :, None].transpose(-1, -2)  # [B, kv, groups, R, K], no key copies
        scores = scores.reshape(batch, heads, len(rows), length) * scaling
        if attention_mask is not None:
            mask = attention_mask[:, :, rows, :length]
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
        sink.append(torch.softmax(scores, dim=-1))
    return output, None


@contextlib.contextmanager
def capture_rows(rows: torch.Tensor):
    """Collect, per layer, the attention probabilities of query `rows` during the forwards inside the block."""
    sink: list[torch.Tensor] = []
    token = _CAPTURE.set((rows, sink))
    try:
        yield sink
    finally:
        _CAPTURE.reset(token)


AttentionInterface.register(ROWS_ATTENTION, sdpa_with_rows)
ALL_MASK_ATTENTION_FUNCTIONS.register(ROWS_ATTENTION, sdpa_mask)
