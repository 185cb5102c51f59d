r"""The tiny retriever: an open_clip model from a registered custom config, trained contrastively on SynthIAD.

Every training image is matched against *all* knowledge bodies of the SynthIAD seed (the exact strings the
knowledge store embeds: `title\\ntext`), so the objective is the retrieval the pipeline runs: image -> entry of
its category and defect (normal images -> the category's "good" entry). Besides whole images it sees *focus
crops* (`memory.evidence.focus_crop`) around the defect (jittered, as the visual memory's box would be) and around
random places of normal images: at inference the pipeline embeds the crop around the memory's most anomalous
region, where a small defect fills the 96-pixel input instead of a few of its pixels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reason_iad.knowledge.seed import load_seed_file
from reason_iad.knowledge.tiny_clip import CLIP_CONFIG, CONFIG_FILE, WEIGHTS_FILE, register_config
from reason_iad.synth.catalog import CATEGORIES, NORMAL
from reason_iad.synth.render import render_sample, sample_rng
from reason_iad.synth.writer import KNOWLEDGE_FILE


@dataclass(frozen=True)
class ClipSettings:
    """One retriever training run."""

    minutes: float = 8.0
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.1
    seed: int = 0
    data_seed: int = 1000
    normals_per_category: int = 60
    defects_per_category: int = 180
    image_size: int = 224
    max_steps: int = 0
    crops_per_image: int = 1  # focus crops added per training image (besides the whole image)


def knowledge_bodies() -> tuple[list[str], dict[tuple[str, str], int]]:
    """The bodies the knowledge store embeds for SynthIAD, and (category, defect) -> body index."""
    entries = load_seed_file(KNOWLEDGE_FILE)
    bodies = [f"{e.title}\n{e.text}" for e in entries]
    return bodies, {(e.category, e.defect): i for i, e in enumerate(entries)}


def render_images(seed: int, normals: int, defects: int, size: int) -> list[tuple[object, str, str, tuple | None]]:
    """(image, category, defect or "good", defect box or None) for a split, deterministic for `seed`."""
    from reason_iad.memory.evidence import mask_box

    out = []
    for category in CATEGORIES.values():
        names = category.defect_names
        for i in range(normals):
            sample = render_sample(category.name, None, sample_rng(seed, category.name, i, "normal"), size)
            out.append((sample.image, category.name, NORMAL, None))
        for i in range(defects):
            defect = names[i % len(names)]
            sample = render_sample(category.name, defect, sample_rng(seed, category.name, i, "defect"), size)
            out.append((sample.image, category.name, defect, mask_box(np.asarray(sample.mask) > 127)))
    return out


def jittered_crop(image, box: tuple | None, rng: np.random.Generator):
    """A focus crop like the pipeline's: around the defect box, shifted by up to a quarter of its size.

    Normal images (`box` None) get a crop around a random small box.
    """
    from reason_iad.memory.evidence import focus_crop

    width, height = image.size
    if box is None:
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        box = (x - 8, y - 8, x + 8, y + 8)
    w, h = box[2] - box[0], box[3] - box[1]
    dx, dy = rng.uniform(-0.25, 0.25) * max(w, 8), rng.uniform(-0.25, 0.25) * max(h, 8)
    return focus_crop(image, (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy), margin=rng.uniform(1.1, 1.6))


def _training_tensors(settings: ClipSettings, preprocess, tokenizer) -> tuple[torch.Tensor, ...]:
    """Preprocessed images and focus crops [N, 3, H, W], their knowledge-entry targets [N], the bodies [E, 77]."""
    bodies, index = knowledge_bodies()
    samples = render_images(
        settings.data_seed, settings.normals_per_category, settings.defects_per_category, settings.image_size
    )
    rng = np.random.default_rng([settings.data_seed, 5])
    views, targets = [], []
    for image, category, defect, box in samples:
        crops = [jittered_crop(image, box, rng) for _ in range(settings.crops_per_image)]
        views += [preprocess(view) for view in (image, *crops)]
        targets += [index[(category, defect)]] * (1 + len(crops))
    return torch.stack(views), torch.tensor(targets), tokenizer(bodies)


def train_clip(out: Path, settings: ClipSettings, log=print) -> dict:
    """Train the tiny CLIP for `settings.minutes` and save config + fp16 safetensors into `out/model`."""
    import open_clip
    from tqdm import tqdm

    from reason_iad.training.inspector import TrainSettings, learning_rate

    torch.manual_seed(settings.seed)
    name = register_config()
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    started = time.perf_counter()
    pixels, targets, text_tokens = _training_tensors(settings, preprocess, tokenizer)
    log(f"rendered {len(pixels)} retriever images in {time.perf_counter() - started:.0f}s")
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = TrainSettings(minutes=settings.minutes, learning_rate=settings.learning_rate, warmup_steps=50)
    rng = np.random.default_rng(settings.seed)
    budget, step, started = settings.minutes * 60, 0, time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=int(budget), unit="s", desc="clip", mininterval=10)
    with open(out / "loss.jsonl", "w", encoding="utf-8") as losses:
        while time.perf_counter() - started < budget and not (settings.max_steps and step >= settings.max_steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(schedule, step, time.perf_counter() - started)
            batch = torch.from_numpy(rng.choice(len(pixels), min(settings.batch_size, len(pixels)), replace=False))
            image = torch.nn.functional.normalize(model.encode_image(pixels[batch]), dim=-1)
            text = torch.nn.functional.normalize(model.encode_text(text_tokens), dim=-1)
            logits = model.logit_scale.exp() * image @ text.T  # [B, entries]
            loss = torch.nn.functional.cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.write(json.dumps({"step": step, "loss": round(loss.item(), 4)}) + "\n")
            bar.update(int(time.perf_counter() - started) - bar.n)
            bar.set_postfix(step=step, loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    folder = save_clip(model, out / "model")
    summary = {
        "steps": step,
        "minutes": round((time.perf_counter() - started) / 60, 2),
        "folder": str(folder),
        "final_loss": round(loss.item(), 4),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def save_clip(model, folder: Path) -> Path:
    """Write the open_clip config and fp16 safetensors weights into `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(CLIP_CONFIG, indent=2), encoding="utf-8")
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / WEIGHTS_FILE)
    return folder
