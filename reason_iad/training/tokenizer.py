"""The inspector's byte-level BPE tokenizer, trained on the project's own corpus.

The corpus is everything the model reads or writes: the MMAD instruction and prompt headers, every question and
option the SynthIAD generator can ask, the knowledge texts, the evidence lines and the rationales.
"""

from __future__ import annotations

from collections.abc import Iterator

from reason_iad.backends.tiny import SPECIAL_TOKENS
from reason_iad.memory.evidence import evidence_line
from reason_iad.mmad import ANOMALY_QUESTION, MMAD_INSTRUCTION
from reason_iad.reasoning import prompt
from reason_iad.reasoning.prompt import EVIDENCE_HEADER
from reason_iad.synth.catalog import CATEGORIES
from reason_iad.synth.questions import DETAIL_QUESTIONS, QUESTIONS, STRUCTURE_QUESTIONS
from reason_iad.synth.shapes import REGIONS

DEFAULT_VOCAB = 3000


def corpus() -> Iterator[str]:
    """Every text the inspector sees or produces (each yielded a few times so frequent phrases merge)."""
    from reason_iad.training.data import knowledge_texts

    fixed = [
        MMAD_INSTRUCTION,
        ANOMALY_QUESTION,
        prompt.KNOWLEDGE_HEADER,
        prompt.TEMPLATE_HEADER,
        prompt.QUERY_HEADER,
        "Following is the question list:",
        EVIDENCE_HEADER,
        "Yes.",
        "No.",
        *QUESTIONS.values(),
        *STRUCTURE_QUESTIONS.values(),
        *DETAIL_QUESTIONS.values(),
    ]
    for _ in range(4):
        yield from fixed
        for category in CATEGORIES.values():
            yield category.title
            yield f"The {category.title.lower()} looks normal, no defect is visible."
            yield from (v.text for v in category.structures + category.details)
            for defect in category.defects:
                yield defect.title
                yield defect.analysis
                yield from (text for _, text in defect.looks)
                yield from (f"{defect.title} at the {r} of the {category.title.lower()}." for r in REGIONS)
        for region in REGIONS:
            yield region.capitalize()
            for verdict in ("normal", "suspicious", "anomalous"):
                yield from (evidence_line(verdict, region, s / 100) for s in range(0, 101, 7))
        for pairs in knowledge_texts().values():
            yield from (text for _, text in pairs)


def train_tokenizer(vocab_size: int = DEFAULT_VOCAB):
    """Train the byte-level BPE on `corpus()` and wrap it as a fast Hugging Face tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        unk_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
