"""How well image -> knowledge retrieval finds the right defect entry, on an MMAD-layout dataset.

For every defective test image (`<dataset>/<category>/test/<defect>/...`) whose defect has an entry in the
dataset's `domain_knowledge.json`, rank the entries by the image embedder exactly as the pipeline does (optionally
looking at a crop around the visual memory's most anomalous region, `focus`) and record whether the true entry
is among the top k: over all defect entries of all categories (the category unknown) and within the category.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reason_iad.errors import UserError
from reason_iad.eval.reader import read_eval_set


@dataclass(frozen=True)
class RetrievalReport:
    """Hit rates in percent over `images` defective images."""

    images: int
    k: int
    top_k_all: float  # the true entry among the top k of every defect entry (no category given)
    top_k_category: float  # among the top k of its category's defect entries
    top1_category: float  # ranked first within its category
    focused: float  # share of images retrieved through the memory's focus crop
    retriever: str

    def markdown(self) -> str:
        """A small table for reports and the model card."""
        head = f"| retriever | defective images | top-{self.k} (all entries) | top-{self.k} (in category) "
        return "\n".join(
            [
                head + "| top-1 (in category) | anomaly crop used |",
                "| --- | --- | --- | --- | --- | --- |",
                f"| {self.retriever} | {self.images} | {self.top_k_all:.1f} | {self.top_k_category:.1f} | "
                f"{self.top1_category:.1f} | {self.focused:.1f} |",
            ]
        )


def evaluate_retrieval(
    data: str | Path,
    retriever: str = "tiny_clip",
    k: int = 3,
    focus: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RetrievalReport:
    """Measure retrieval on the defective images of the dataset at `data` (see the module docstring).

    Raises:
        UserError: A bad dataset, no defective images with knowledge entries, or an unknown retriever.
    """
    from PIL import Image

    from reason_iad.eval.aids import build_memory, build_store
    from reason_iad.knowledge.search import query_vector, search_by_vector
    from reason_iad.pipeline import focus_of

    if not 1 <= k <= 100:
        raise UserError(f"k must be between 1 and 100, not {k}")
    eval_set = read_eval_set(data, shots=0, knowledge="none")
    with tempfile.TemporaryDirectory(prefix="reason-iad-retrieval-") as folder:
        store = build_store(Path(folder) / "knowledge", eval_set, retriever)
        known = {(s.entry.dataset, s.entry.category, s.entry.defect) for s in store.list()}
        memory = build_memory(Path(folder) / "memory", eval_set, progress) if focus else None
        images = sorted({(item.image, item.dataset, item.category) for item in eval_set.items if not item.is_normal})
        hits_all, hits_category, top1, focused = [], [], [], []
        for key, dataset, category in images:
            defect = PurePosixPath(key).parts[3] if len(PurePosixPath(key).parts) > 4 else ""
            if (dataset, category, defect) not in known:
                continue
            image = Image.open(eval_set.root / key).convert("RGB")
            box = focus_of(memory.inspect(image, dataset, category)) if memory is not None else None
            vector = query_vector(store.image_embedder, image, box)  # one embedding for both rankings
            every = [(h.entry.category, h.entry.defect) for h in search_by_vector(store, vector, k, dataset)]
            own = [h.entry.defect for h in search_by_vector(store, vector, k, dataset, category)]
            hits_all.append((category, defect) in every)
            hits_category.append(defect in own)
            top1.append(bool(own) and own[0] == defect)
            focused.append(box is not None)
    if not hits_all:
        raise UserError(f"no defective images with a matching entry in {eval_set.root}/domain_knowledge.json")
    percent = lambda values: round(100.0 * sum(values) / len(values), 1)  # noqa: E731
    return RetrievalReport(
        len(hits_all), k, percent(hits_all), percent(hits_category), percent(top1), percent(focused), retriever
    )
