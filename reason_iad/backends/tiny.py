"""Tiny random-weight multimodal LLMs of every supported family, built offline from configs.

Used by tests, benchmarks and (until the trained default ships) as a stand-in model. Each is a real
transformers model class with a locally trained byte-level BPE tokenizer and a real processor, saved to a
folder that `load_backend` opens exactly like a downloaded checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reason_iad.mmad import ANOMALY_QUESTION, MMAD_INSTRUCTION

FAMILIES = ("qwen2_5_vl", "qwen2_vl", "llava", "idefics3", "smolvlm")
LATENT_TOKEN = "<|latent|>"
SPECIAL_TOKENS = [
    "<pad>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
    "<end_of_utterance>",
    LATENT_TOKEN,
]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}IMAGE_PLACEHOLDER{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_PLACEHOLDERS = {
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "llava": "<image>",
    "idefics3": "<image>",
    "smolvlm": "<image>",
}


@dataclass(frozen=True)
class TinySize:
    """Width and depth of a tiny model; `test` is sub-million parameters, `bench` about five million."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_width: int = 32
    vision_depth: int = 2
    patch: int = 8
    image_px: int = 64
    vocab: int = 400


TEST_SIZE = TinySize()
BENCH_SIZE = TinySize(hidden=256, layers=4, vision_width=128, patch=14, image_px=112)


def _corpus() -> list[str]:
    words = (
        "defect scratch crack hole stain contamination color bent broken missing fold cut thread oil liquid "
        "normal good object surface texture carpet wood tile grid bottle metal nut pill screw region top bottom "
        "left right center yes no the a is there any in of on with what where which type kind answer option"
    ).split()
    lines = [MMAD_INSTRUCTION, ANOMALY_QUESTION, "Following is the query image:", "A. Yes.\nB. No.", *words]
    lines += [f"{a} {b}" for a in words[:30] for b in words[30:60]]
    return lines * 3


def build_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on a small built-in corpus, wrapped as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<|im_end|>",
        unk_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )


def _text_config(tok, size: TinySize, mrope: bool) -> dict:
    half = size.hidden // size.heads // 2
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if mrope:
        rope["mrope_section"] = [half - 2 * (half // 4), half // 4, half // 4]
    return dict(
        vocab_size=len(tok),
        hidden_size=size.hidden,
        intermediate_size=4 * size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=4096,
        rope_parameters=rope,
        tie_word_embeddings=False,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
    )


def _qwen(family: str, tok, size: TinySize):
    import transformers as tf

    ids = tok.convert_tokens_to_ids
    vision = dict(
        depth=size.vision_depth, num_heads=4, patch_size=size.patch, spatial_merge_size=2, temporal_patch_size=2
    )
    if family == "qwen2_5_vl":
        width = size.vision_width
        vision |= dict(
            hidden_size=width,
            out_hidden_size=size.hidden,
            intermediate_size=2 * width,
            window_size=size.patch * 2 * 8,
            fullatt_block_indexes=[size.vision_depth - 1],
        )
        config_cls, model_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration
        proc_cls = tf.Qwen2_5_VLProcessor
    else:
        vision |= dict(embed_dim=size.vision_width, hidden_size=size.hidden, mlp_ratio=2)
        config_cls, model_cls, proc_cls = tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    config = config_cls(
        text_config=_text_config(tok, size, mrope=True),
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    pixels = size.image_px * size.image_px
    image_processor = tf.Qwen2VLImageProcessorPil(
        patch_size=size.patch,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": (size.patch * 2) ** 2, "longest_edge": pixels},
    )
    video_processor = tf.Qwen2VLVideoProcessor(patch_size=size.patch, merge_size=2, temporal_patch_size=2)
    processor = proc_cls(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", IMAGE_PLACEHOLDERS[family]),
    )
    return model_cls(config), processor


def _llava(tok, size: TinySize):
    import transformers as tf

    vision = tf.CLIPVisionConfig(
        hidden_size=size.vision_width,
        intermediate_size=2 * size.vision_width,
        num_hidden_layers=size.vision_depth,
        num_attention_heads=4,
        image_size=size.image_px,
        patch_size=size.patch,
        projection_dim=size.vision_width,
    )
    config = tf.LlavaConfig(
        vision_config=vision,
        text_config=tf.Qwen2Config(**_text_config(tok, size, mrope=False)),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    image_processor = tf.CLIPImageProcessorPil(
        size={"shortest_edge": size.image_px},
        crop_size={"height": size.image_px, "width": size.image_px},
        do_center_crop=False,
    )
    image_processor.size = {"height": size.image_px, "width": size.image_px}
    processor = tf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=size.patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<image>"),
    )
    return tf.LlavaForConditionalGeneration(config), processor


def _idefics3(tok, size: TinySize, smol: bool = False):
    import transformers as tf

    vision = (tf.SmolVLMVisionConfig if smol else tf.Idefics3VisionConfig)(
        hidden_size=size.vision_width,
        intermediate_size=2 * size.vision_width,
        num_hidden_layers=size.vision_depth,
        num_attention_heads=4,
        image_size=size.image_px,
        patch_size=size.patch,
    )
    text = tf.LlamaConfig(**{k: v for k, v in _text_config(tok, size, mrope=False).items()})
    config = (tf.SmolVLMConfig if smol else tf.Idefics3Config)(
        vision_config=vision, text_config=text, scale_factor=2, image_token_id=tok.convert_tokens_to_ids("<image>")
    )
    image_options = dict(
        do_image_splitting=False, size={"longest_edge": size.image_px}, max_image_size={"longest_edge": size.image_px}
    )
    options = dict(
        tokenizer=tok,
        image_seq_len=(size.image_px // size.patch // 2) ** 2,
        chat_template=CHAT_TEMPLATE.replace("IMAGE_PLACEHOLDER", "<image>"),
    )
    if smol:
        processor = tf.SmolVLMProcessor(
            image_processor=tf.SmolVLMImageProcessorPil(**image_options),
            video_processor=tf.SmolVLMVideoProcessor(),
            **options,
        )
        return tf.SmolVLMForConditionalGeneration(config), processor
    processor = tf.Idefics3Processor(image_processor=tf.Idefics3ImageProcessorPil(**image_options), **options)
    return tf.Idefics3ForConditionalGeneration(config), processor


def build_tiny_model(family: str, size: TinySize = TEST_SIZE, seed: int = 0):
    """A random-weight (model, processor) pair of `family`; deterministic for a seed."""
    import torch

    if family not in FAMILIES:
        raise ValueError(f"unknown tiny family {family!r}; choose one of {FAMILIES}")
    torch.manual_seed(seed)
    tok = build_tokenizer(size.vocab)
    if family == "llava":
        model, processor = _llava(tok, size)
    elif family in ("idefics3", "smolvlm"):
        model, processor = _idefics3(tok, size, smol=family == "smolvlm")
    else:
        model, processor = _qwen(family, tok, size)
    return model.eval(), processor


def save_tiny_model(family: str, folder: str | Path, size: TinySize = TEST_SIZE, seed: int = 0) -> Path:
    """Build a tiny model and save it (weights, config, tokenizer, processor, chat template) to `folder`."""
    model, processor = build_tiny_model(family, size, seed)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
