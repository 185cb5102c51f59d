"""Small knowledge bases for tests: deterministic fake embedders, LanceDB in tmp_path."""

import numpy as np
from PIL import Image

from reason_iad.knowledge.embedders import FakeEmbedder
from reason_iad.knowledge.entry import KnowledgeEntry, entry_id
from reason_iad.knowledge.store import KnowledgeStore


class ColourWords(FakeEmbedder):
    """Images embed as the words of their dominant colour, in the same space as texts (a stand-in for CLIP)."""

    def __init__(self):
        super().__init__(32)
        self.name = "colour-words"

    def embed_images(self, images):
        names = []
        for image in images:
            r, g, b = np.asarray(image.convert("RGB"), np.float32).reshape(-1, 3).mean(0)
            names.append("red" if r > max(g, b) else "green" if g > b else "blue")
        return self.embed_texts(names)


def entry(category="wood", defect="scratch", text="A thin dark line.", dataset="Test", title=None, **extra):
    return KnowledgeEntry(
        id=entry_id(dataset, category, defect),
        dataset=dataset,
        category=category,
        defect=defect,
        title=title or defect.replace("_", " ").capitalize(),
        text=text,
        **extra,
    )


SEED = [
    entry("wood", "good", "Even brown grain, no marks."),
    entry("wood", "scratch", "A thin dark line across the grain."),
    entry("wood", "stain", "A red blotch, a liquid stain of red colour."),
    entry("wood", "hole", "A round green-edged hole in the board."),
    entry("tile", "good", "Grey tile with a uniform texture."),
    entry("tile", "crack", "A blue crack running through the tile."),
]


def make_store(path, seed=SEED, image=True):
    return KnowledgeStore(path, FakeEmbedder(32), ColourWords() if image else None, seed=seed)


def solid(colour):
    return Image.new("RGB", (32, 32), colour)
