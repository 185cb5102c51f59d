"""The swap test: does the model read its knowledge? Exchange two defect entries' titles and see the answers follow.

In a scratch copy of the category's knowledge (the knowledge base itself is never written), the titles of two
defect entries are exchanged in one version, and the set's Defect Classification questions about images of those
two defect types are answered before and after (`check_impact`, knowledge in the prompt). An answer *follows*
the swap when it names the title now on the entry of the image's true defect (the other defect's old title). Then
the version before the swap is restored, and every answer must come back. A model that ignores its knowledge
follows on about none of them; one that reads it, on most.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from reason_iad.errors import UserError
from reason_iad.eval.impact import Progress, check_impact
from reason_iad.eval.reader import EvalItem, EvalSet

SWAP_AUTHOR = "swap-test"


@dataclass(frozen=True)
class SwapResult:
    """What exchanging two entries' titles did to the answers about those two defect types."""

    category: str
    defects: tuple[str, str]
    titles: tuple[str, str]  # the entries' titles before the swap, in `defects` order
    questions: int  # Defect Classification questions offering both titles, on images of the two defects
    followed: int  # answers that named the swapped-in title after the swap
    right_before: int  # answers that named the true defect's title before the swap
    restored: int  # answers identical to the ones before the swap after restoring the version

    @property
    def followed_share(self) -> float:
        """Share of the questions whose answer followed the renamed entry."""
        return self.followed / self.questions if self.questions else 0.0

    def line(self) -> str:
        """The one-line report."""
        a, b = self.defects
        return (
            f"swap {self.category}: {a} <-> {b} titles; {self.followed} of {self.questions} Defect Classification "
            f"answers followed the renamed entry ({self.followed_share:.0%}); {self.right_before} right before; "
            f"{self.restored} of {self.questions} back after restoring the version"
        )


def defect_of(item: EvalItem) -> str | None:
    """The defect type of a question's image from MMAD's layout (`.../test/<defect>/<file>`); None for normal."""
    parts = PurePosixPath(item.image).parts
    return None if item.is_normal or len(parts) < 2 else parts[-2]


def swap_items(eval_set: EvalSet, defects: Sequence[str], titles: Sequence[str]) -> EvalSet:
    """The set's Defect Classification questions about images of `defects` whose options offer both `titles`."""
    items = tuple(
        item
        for item in eval_set.items
        if item.subtask == "Defect Classification"
        and defect_of(item) in defects
        and set(titles) <= set(dict(item.question.options).values())
    )
    if not items:
        raise UserError(
            f"the set has no Defect Classification question about {' or '.join(defects)} images that offers both "
            f"{' and '.join(repr(t) for t in titles)}"
        )
    return dataclasses.replace(eval_set, items=items)


def scratch_store(store, dataset: str, category: str, folder: str):
    """A new knowledge base in `folder` holding the category's entries, with the store's embedders."""
    from reason_iad.knowledge.store import KnowledgeStore

    entries = [s.entry for s in store.list(category=category, dataset=dataset)]
    if not entries:
        raise UserError(f"the knowledge base has no entries for {dataset}/{category}")
    return KnowledgeStore(folder, store.text_embedder, store.image_embedder, seed=entries)


def swap_check(
    pipeline, eval_set: EvalSet, dataset: str, category: str, defects: Sequence[str], progress: Progress | None = None
) -> SwapResult:
    """Exchange the titles of the two defect entries in a scratch copy, answer, restore, answer (see the module doc)."""
    from reason_iad.knowledge.entry import entry_id

    if len(defects) != 2 or defects[0] == defects[1]:
        raise UserError("a swap takes two different defect types, e.g. --defects hole,scratch")
    if pipeline.store is None:
        raise UserError("no knowledge base is loaded")
    with tempfile.TemporaryDirectory(prefix="reason-iad-swap-") as folder:
        store = scratch_store(pipeline.store, dataset, category, folder)
        ids = [entry_id(dataset, category, d) for d in defects]
        found = store.get_many(ids)
        if len(found) != 2:
            missing = [d for d, i in zip(defects, ids, strict=True) if i not in found]
            raise UserError(f"{dataset}/{category} has no knowledge entry for {', '.join(missing)}")
        a, b = (found[i].entry for i in ids)
        subset = swap_items(eval_set, defects, (a.title, b.title))
        before = store.version
        swapped = [a.model_copy(update={"title": b.title}), b.model_copy(update={"title": a.title})]
        after = store.upsert(swapped, SWAP_AUTHOR, f"swap test: {a.title} <-> {b.title}", action="update")
        scratch = dataclasses.replace(pipeline, store=store)
        report = check_impact(scratch, subset, before, after, progress=progress)
        restored_version = store.restore(before, SWAP_AUTHOR)
        restored = check_impact(scratch, subset, before, restored_version, progress=progress)
    new_title = {defects[0]: b.title, defects[1]: a.title}
    old_title = {defects[0]: a.title, defects[1]: b.title}
    items = {item.id: item for item in subset.items}
    followed = right = 0
    for q in report.questions:
        defect, options = defect_of(items[q.id]), dict(items[q.id].question.options)
        followed += options.get(q.after or "") == new_title[defect]
        right += options.get(q.before or "") == old_title[defect]
    back = sum(not q.flipped for q in restored.questions)
    return SwapResult(category, (defects[0], defects[1]), (a.title, b.title), len(subset.items), followed, right, back)
