"""Quality checks of the embedded models on a held-out SynthIAD split (MMAD format, e.g. `reason-iad synth --seed 7`).

`evaluate_inspector` asks every question one-shot through the engine (`Reasoner`) with the option-likelihood
read-out, optionally with an evidence line per image; `evaluate_retriever` measures image -> knowledge top-k hits.
Evidence here is drawn from the ground-truth mask with the training noise model (`training.evidence`), a stand-in
for the visual memory's line until the memory is wired into evaluation; the report says so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from reason_iad.config import ReasoningConfig
from reason_iad.mmad import load_mmad
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question
from reason_iad.synth.shapes import region_of
from reason_iad.training.evidence import simulated_evidence


def _region(root: Path, mask_path: str) -> str | None:
    if not mask_path:
        return None
    return region_of(np.asarray(Image.open(root / mask_path).convert("L")) > 127)


def _knowledge(root: Path) -> dict[str, tuple[str, ...]]:
    data = json.loads((root / "domain_knowledge.json").read_text(encoding="utf-8"))
    return {category: tuple(entries.values()) for dataset in data.values() for category, entries in dataset.items()}


def score_answers(rows: list[dict]) -> dict[str, float]:
    """Accuracy per subtask (Anomaly Detection: balanced accuracy) and their mean, in percent."""
    by_type: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_type[row["type"]].append(row)
    scores = {}
    for subtask, items in sorted(by_type.items()):
        if subtask == "Anomaly Detection":
            recalls = [np.mean([r["correct"] for r in items if r["truth_text"] == t])
                       for t in ("Yes.", "No.") if any(r["truth_text"] == t for r in items)]  # fmt: skip
            scores[subtask] = 100 * float(np.mean(recalls))
        else:
            scores[subtask] = 100 * float(np.mean([r["correct"] for r in items]))
    scores["Average"] = float(np.mean(list(scores.values())))
    return {k: round(v, 1) for k, v in scores.items()}


def evaluate_inspector(backend, root: Path, mode: str, evidence: bool, seed: int = 7, limit: int = 0) -> dict:
    """Answer every question of the split at `root` one-shot; returns scores and the per-question rows."""
    root = Path(root)
    config = ReasoningConfig(mode=mode, readout="likelihood", max_new_tokens=1, seed=42)
    knowledge = _knowledge(root) if config.uses_knowledge else {}
    rng = np.random.default_rng([seed, 11])
    rows = []
    for path, record in load_mmad(root / "mmad.json").items():
        category = Path(path).parts[1]
        image = Image.open(root / path).convert("RGB")
        template = Image.open(root / record.random_templates[0]).convert("RGB") if record.random_templates else None
        line = simulated_evidence(rng, _region(root, record.mask_path)) if evidence else ""
        for item in record.conversation:
            question = Question(item.question, tuple(sorted(item.options.items())))
            request = InspectionRequest(image, question, template, category, knowledge.get(category, ()), line)
            answer = Reasoner(backend, config).run(request).answer
            rows.append({"image": path, "type": item.type, "answer": answer, "truth": item.answer,
                         "truth_text": item.options[item.answer], "correct": answer == item.answer})  # fmt: skip
            if limit and len(rows) >= limit:
                return {"scores": score_answers(rows), "rows": rows}
    return {"scores": score_answers(rows), "rows": rows}


def evaluate_retriever(embedder, root: Path, k: int = 3) -> dict[str, float]:
    """Top-k hit rate of the correct defect entry for defective images: over all entries and within the category."""
    from reason_iad.training.clip import knowledge_bodies

    root = Path(root)
    bodies, index = knowledge_bodies()
    keys = list(index)
    text = embedder.embed_texts(bodies)
    hits_all, hits_category, top1_category = [], [], []
    for path in load_mmad(root / "mmad.json"):
        _, category, _, defect, *_ = Path(path).parts
        if (category, defect) not in index or defect == "good":
            continue
        scores = text @ embedder.embed_images([Image.open(root / path).convert("RGB")])[0]
        order = [keys[i] for i in np.argsort(-scores)]
        hits_all.append((category, defect) in order[:k])
        own = [key for key in order if key[0] == category and key[1] != "good"]
        hits_category.append((category, defect) in own[:k])
        top1_category.append(own[0] == (category, defect))
    return {f"top{k}_all_entries": round(100 * float(np.mean(hits_all)), 1),
            f"top{k}_within_category": round(100 * float(np.mean(hits_category)), 1),
            "top1_within_category": round(100 * float(np.mean(top1_category)), 1), "images": len(hits_all)}  # fmt: skip
