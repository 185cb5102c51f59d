"""The inspector's tokenizer: trained on the project's own corpus, round-trips every text it will see."""

import pytest
from PIL import Image

from reason_iad.backends.tiny import LATENT_TOKEN
from reason_iad.memory.evidence import evidence_line
from reason_iad.reasoning.prompt import Question, build_messages
from reason_iad.training.tokenizer import corpus, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def test_round_trip_of_corpus_and_unseen_text(tokenizer):
    unseen = ["Ünïcode 漢字 and 12.5% odd text\twith tabs", evidence_line("suspicious", "top", 0.5)]
    texts = list(dict.fromkeys(corpus()))[:200] + unseen
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_special_tokens_stay_single_tokens(tokenizer):
    for token in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", LATENT_TOKEN):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1


def test_corpus_words_compress_well(tokenizer):
    question = Question("What type of defect is it?", (("A", "Crack"), ("B", "Hole")))
    text = build_messages(question, Image.new("RGB", (8, 8)))[0].parts[0]
    assert len(tokenizer.encode(text, add_special_tokens=False)) < len(text) / 3  # about a token per word


def test_shipped_tokenizer_reads_todays_corpus_compactly():
    # fine-tunes inherit the tokenizer of the weights they start from, so the shipped one may predate corpus edits
    from reason_iad.backends.embedded import INSPECTOR_DIR, inspector_available

    if not inspector_available():
        pytest.skip("trained inspector assets are not present")
    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(INSPECTOR_DIR, local_files_only=True)
    texts = list(dict.fromkeys(corpus()))
    for text in texts:
        assert shipped.decode(shipped.encode(text, add_special_tokens=False)) == text
    tokens = sum(len(shipped.encode(text, add_special_tokens=False)) for text in texts)
    assert tokens < sum(len(text) for text in texts) / 3.5
