"""The explanation decoded after the answer: what follows the latents, and the clean-up of the decoded text.

MMAD's protocol is kept: the answer is read out from the option distribution first. The explanation is then
decoded from the same prefix cache, with the best latents and the kept patches in place, after the answer:
- `followup` (instruction-tuned models): the assistant's answer turn ("B. No."), then a user turn asking for the
  evidence ("In one sentence, what in the image supports this answer?"), then a new assistant header. A model told
  to "answer with the option's letter directly" would otherwise explain nothing;
- `continue` (the embedded model, trained to follow its answer phrase with a sentence): the answer phrase and a
  newline are forced, so the explanation starts from the answer that was read out and cannot open with another;
- `reply` (the evaluation harness): the model's own free reply to the question, straight after the assistant
  header, kept as it is: MMAD's protocol parses the answer letter out of it (`eval --score parsed`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch


def rationale_tail(backend, header_ids: torch.Tensor, style: str, letter: str, text: str, prompt: str) -> torch.Tensor:
    """Token ids [T] that follow the latent slots before the explanation is generated (on the header's device)."""
    if style == "reply":
        return header_ids
    if style == "followup":
        return torch.tensor(backend.followup_ids(f"{letter}. {text.strip()}", prompt), device=header_ids.device)
    forced = torch.tensor(backend.encode_text(text.strip() + "\n"), device=header_ids.device)
    return torch.cat([header_ids, forced])


def strip_option_echo(text: str, options: Sequence[tuple[str, str]], answer: str) -> str:
    """The explanation without a leading restatement of the answer ("B.", "B. No.", "No.")."""
    text = text.strip()
    chosen = dict(options)[answer].strip().rstrip(".")
    patterns = [rf"{re.escape(answer)}[.):]\s*(?:{re.escape(chosen)}\.?)?", rf"{re.escape(chosen)}\.?"]
    for pattern in patterns:
        match = re.match(pattern + r"(?=\s|$)", text, flags=re.IGNORECASE)
        if match:
            return text[match.end() :].lstrip(" \n\t-:,.")
    return text
