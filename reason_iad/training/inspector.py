"""Training loop of the tiny inspector: a Qwen2.5-VL-class model built from a small config, trained from scratch.

AdamW, linear warmup then cosine decay on *elapsed time* (the budget is minutes, not steps), loss on the answer
tokens only plus an auxiliary per-image-token defect-class loss that gives the vision tower a direct signal
(the head is dropped when saving), deterministic seeds, resumable checkpoints, a tqdm bar and a JSONL loss log.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from reason_iad.backends.tiny import TinySize, _qwen
from reason_iad.training.data import IGNORE, LATENT, DataRecipe, ExampleEncoder, ExampleSampler, collate, defect_classes
from reason_iad.training.data import render_pool as render_training_pool
from reason_iad.training.evidence import pool_evidence

INSPECTOR_SIZE = TinySize(
    hidden=256, layers=4, heads=4, kv_heads=2, vision_width=128, vision_depth=4, patch=14, image_px=112, vocab=0
)
IMAGE_TOKENS = (INSPECTOR_SIZE.image_px // INSPECTOR_SIZE.patch // 2) ** 2


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one run."""

    minutes: float = 25.0
    batch_size: int = 8
    learning_rate: float = 1e-3
    final_lr_fraction: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.05
    aux_weight: float = 0.5
    clip_norm: float = 1.0
    seed: int = 0
    checkpoint_minutes: float = 3.0
    max_steps: int = 0  # 0: until the time budget is spent (tests use a few steps)


def learning_rate(settings: TrainSettings, step: int, elapsed_s: float) -> float:
    """Warmup over the first steps, then cosine from the peak to `final_lr_fraction` over the time budget."""
    peak = settings.learning_rate
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    progress = min(1.0, elapsed_s / (settings.minutes * 60))
    floor = settings.final_lr_fraction
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Inspector(torch.nn.Module):
    """The VLM plus the auxiliary defect head on its merged image tokens (training only)."""

    def __init__(self, model, latent_id: int | None = None, latent_noise: float = 0.0) -> None:
        """Wrap `model` and hook its vision tower to keep the merged image features of each forward.

        `latent_noise` > 0 (with the latent token's id): in training, every example's latent rows get Gaussian
        noise of std drawn in [0, latent_noise] times the token-embedding RMS, as the engine's updates and
        search noise move them at inference, so that moved latents stay inputs the model knows.
        """
        super().__init__()
        self.model, self.latent_id, self.latent_noise = model, latent_id, latent_noise
        self._latent_rows: torch.Tensor | None = None  # [B, S] bool
        hidden = model.config.get_text_config().hidden_size
        self.defect_head = torch.nn.Linear(hidden, len(defect_classes()))
        self._features: list[torch.Tensor] = []
        self._inject: torch.Tensor | None = None  # [n, 3] (row, position written, position copied)
        model.model.visual.register_forward_hook(lambda _m, _i, out: self._features.append(out.pooler_output))
        model.model.language_model.register_forward_pre_hook(self._copy_patches, with_kwargs=True)

    def _copy_patches(self, _module, args, kwargs):
        """Perturb the latent rows (see `__init__`), then copy the injected query-image tokens into their slots.

        The injected tokens' merged features are written into their latent-suffix slots after the noise, so a
        patch row is the image token's exact feature.
        """
        inject, latent = self._inject, self._latent_rows
        has_inject = inject is not None and len(inject) > 0
        if not has_inject and latent is None:
            return None
        embeds = kwargs["inputs_embeds"].clone()  # [B, S, D], vision features already merged in
        if latent is not None:
            rms = self.model.get_input_embeddings().weight.detach().float().pow(2).mean().sqrt()
            scale = torch.rand(embeds.shape[0], 1, 1, device=embeds.device) * self.latent_noise * rms  # [B, 1, 1]
            noise = torch.randn(embeds.shape, device=embeds.device) * scale * latent.to(embeds.device).unsqueeze(-1)
            embeds = embeds + noise.to(embeds.dtype)
        if has_inject:
            rows, written, copied = inject.unbind(1)
            embeds[rows, written] = embeds[rows, copied]
        return args, {**kwargs, "inputs_embeds": embeds}

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(answer-token cross-entropy, auxiliary defect-cell cross-entropy) of one batch."""
        self._features.clear()
        self._inject = batch.get("inject")
        noisy = self.training and self.latent_noise > 0 and self.latent_id is not None
        self._latent_rows = batch["input_ids"] == self.latent_id if noisy else None
        inputs = {
            k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids")
        }
        hidden = self.model.model(**inputs).last_hidden_state  # [B, S, D]
        labels = batch["labels"][:, 1:]  # the token each position predicts
        where = labels != IGNORE
        logits = self.model.lm_head(hidden[:, :-1][where])  # [n, V]
        lm_loss = torch.nn.functional.cross_entropy(logits.float(), labels[where])
        features = self._features[-1]  # [n_image_tokens, D]
        aux_loss = torch.nn.functional.cross_entropy(self.defect_head(features).float(), batch["cells"])
        return lm_loss, aux_loss


def build_model(tokenizer, seed: int):
    """A fresh (model, processor) pair of the inspector's size around `tokenizer` (deterministic for `seed`)."""
    torch.manual_seed(seed)
    size = TinySize(**{**asdict(INSPECTOR_SIZE), "vocab": len(tokenizer)})
    return _qwen("qwen2_5_vl", tokenizer, size)


def prepare_pool(
    recipe: DataRecipe, processor, log, evidence_cache: Path | None = None
) -> tuple[object, dict[str, int]]:
    """Render the training pool, pre-compute pixel values (fp16) and the visual memory's evidence once.

    `evidence_cache`: a JSON file keeping the evidence lines of this pool (same recipe seed and sizes), written
    after the memory ran and read instead of running it again (the memory takes minutes on 2 CPU cores).

    Returns:
        (the pool, the memory's verdict and region counts on it).
    """
    started = time.perf_counter()
    pool = render_training_pool(recipe)
    images = pool.images + [t for ts in pool.templates.values() for t in ts]
    for item in images:
        item.pixels = processor.image_processor(images=[item.image], return_tensors="pt")["pixel_values"].half()
    log(f"rendered and processed {len(images)} training images in {time.perf_counter() - started:.0f}s")
    key = [recipe.seed, recipe.normals_per_category, recipe.defects_per_category, recipe.templates_per_category]
    key.append(recipe.image_size)
    if evidence_cache is not None and evidence_cache.is_file():
        cached = json.loads(evidence_cache.read_text(encoding="utf-8"))
        if cached.get("key") == key and len(cached["lines"]) == len(pool.images):
            for item, line in zip(pool.images, cached["lines"], strict=True):
                item.evidence = line
            log(f"visual memory evidence read from {evidence_cache}")
            return pool, cached["counts"]
    counts = pool_evidence(pool, log)
    if evidence_cache is not None:
        lines = [item.evidence for item in pool.images]
        evidence_cache.write_text(json.dumps({"key": key, "lines": lines, "counts": counts}), encoding="utf-8")
    return pool, counts


def _save_checkpoint(path: Path, module: Inspector, optimizer, step: int, elapsed: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"module": module.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "elapsed": elapsed}, tmp
    )
    tmp.replace(path)


def _optimizer(module: Inspector, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on embeddings, norms or biases)."""
    decayed = [p for n, p in module.named_parameters() if p.dim() >= 2 and "embed" not in n]
    other = [p for n, p in module.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    groups = [{"params": decayed, "weight_decay": settings.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.learning_rate, betas=(0.9, 0.98))


def _restore(checkpoint: Path, module: Inspector, optimizer, log) -> tuple[int, float]:
    """Load a checkpoint into the module and optimizer; returns (step, elapsed seconds)."""
    state = torch.load(checkpoint, weights_only=False)
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    log(f"resumed at step {state['step']} after {state['elapsed'] / 60:.1f} min")
    return state["step"], state["elapsed"]


def _train_step(module: Inspector, optimizer, batch: dict, settings: TrainSettings, lr: float) -> dict:
    """One optimisation step; returns the logged values."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    lm_loss, aux_loss = module(batch)
    optimizer.zero_grad(set_to_none=True)
    (lm_loss + settings.aux_weight * aux_loss).backward()
    torch.nn.utils.clip_grad_norm_(module.parameters(), settings.clip_norm)
    optimizer.step()
    return {"loss": round(lm_loss.item(), 4), "aux": round(aux_loss.item(), 4), "lr": lr}


def train_inspector(
    out: Path,
    settings: TrainSettings,
    recipe: DataRecipe,
    resume: bool = False,
    log=print,
    warm_start: Path | None = None,
    evidence_cache: Path | None = None,
) -> dict:
    """Train the inspector into `out` (checkpoint, loss log, final model folder); returns a summary.

    `resume` continues `out`'s own checkpoint (same schedule); `warm_start` starts a new schedule from the weights
    of another run's checkpoint or of a saved model folder (e.g. the shipped `reason_iad/assets/inspector`), a
    second, shorter phase. `evidence_cache`: see `prepare_pool`.
    """
    from tqdm import tqdm

    from reason_iad.training.tokenizer import train_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    base = Path(warm_start) if warm_start is not None and Path(warm_start).is_dir() else None
    tokenizer = _run_tokenizer(out, base, warm_start, resume) or train_tokenizer()
    tokenizer.save_pretrained(out / "tokenizer")  # a later resume or warm start from the checkpoint reads it
    model, processor = build_model(tokenizer, settings.seed)
    if base:
        model = _load_folder(model, base, log)
    latent_id = tokenizer.convert_tokens_to_ids(LATENT)
    module = Inspector(model, latent_id, recipe.latent_noise).train()
    optimizer = _optimizer(module, settings)
    checkpoint, step, spent = out / "checkpoint.pt", 0, 0.0
    if resume and checkpoint.exists():
        step, spent = _restore(checkpoint, module, optimizer, log)
    elif warm_start is not None and base is None:  # another run's checkpoint
        module.load_state_dict(torch.load(warm_start, weights_only=False)["module"])
    pool, memory_counts = prepare_pool(recipe, processor, log, evidence_cache)
    sampler = ExampleSampler(pool, ExampleEncoder(processor, recipe, IMAGE_TOKENS), recipe)
    pad, image_id, budget = tokenizer.pad_token_id, model.config.image_token_id, settings.minutes * 60
    started, last_save = time.perf_counter() - spent, time.perf_counter()
    bar = tqdm(total=int(budget), initial=int(spent), unit="s", desc="inspector", mininterval=10)
    with open(out / "loss.jsonl", "a", encoding="utf-8") as losses:
        while (elapsed := time.perf_counter() - started) < budget and not (0 < settings.max_steps <= step):
            batch = collate(sampler.batch(step, settings.batch_size), pad, image_id)
            logged = _train_step(module, optimizer, batch, settings, learning_rate(settings, step, elapsed))
            step += 1
            losses.write(json.dumps({"step": step, "elapsed_s": round(elapsed, 1)} | logged) + "\n")
            bar.update(int(time.perf_counter() - started) - bar.n)
            bar.set_postfix(step=step, loss=logged["loss"], aux=logged["aux"], refresh=False)
            if time.perf_counter() - last_save > settings.checkpoint_minutes * 60:
                losses.flush()
                _save_checkpoint(checkpoint, module, optimizer, step, time.perf_counter() - started)
                last_save = time.perf_counter()
    bar.close()
    _save_checkpoint(checkpoint, module, optimizer, step, time.perf_counter() - started)
    save_inspector(module.model, processor, out / "model")
    summary = {
        "steps": step,
        "minutes": round((time.perf_counter() - started) / 60, 2),
        "folder": str(out / "model"),
        "final_loss": _recent_loss(out / "loss.jsonl"),
        "memory_evidence": memory_counts,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _run_tokenizer(out: Path, base: Path | None, warm_start: Path | None, resume: bool):
    """The tokenizer the starting weights were trained with (None: a run from scratch trains one).

    A model folder carries its own; a checkpoint's run folder keeps its run's (`<run>/tokenizer`), as does `out`
    when resuming it.
    """
    if base is not None:
        return _folder_tokenizer(base)
    checkpoint = Path(warm_start) if warm_start is not None else out / "checkpoint.pt" if resume else None
    if checkpoint is not None and (checkpoint.parent / "tokenizer").is_dir():
        return _folder_tokenizer(checkpoint.parent / "tokenizer")
    return None


def _folder_tokenizer(folder: Path):
    """The tokenizer of a saved inspector folder.

    A fine-tune keeps its base model's tokens, even when the corpus (e.g. the seed knowledge) changed since.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _load_folder(model, folder: Path, log):
    """The weights of a saved inspector folder in fp32 (the auxiliary head starts new)."""
    loaded = type(model).from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    log(f"warm start from the weights in {folder}")
    return loaded


def _recent_loss(path: Path, last: int = 100) -> float:
    lines = path.read_text(encoding="utf-8").splitlines()[-last:]
    values = [json.loads(line)["loss"] for line in lines]
    return round(sum(values) / max(len(values), 1), 4)


def save_inspector(model, processor, folder: Path) -> Path:
    """Save weights (fp16 safetensors), config, tokenizer, processor and chat template to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(folder)
    model.to(torch.float32)
    processor.save_pretrained(folder)
    return folder
