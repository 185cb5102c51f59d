"""A writer process for the crash-safety tests: it reports where it is, so the test can SIGKILL it there.

    python tests/crash_writer.py KIND URI PAUSE_AT

It sets up, prints `ready`, waits for a line on stdin, then runs the write of KIND. At each named point it prints
`at <point>`; at PAUSE_AT it then blocks (until the test kills it). `-` pauses nowhere. The last line is `done`.

Kinds and their points:
    kb-create          first open of an empty URI with a large seed: rows, meta, created, indexes
    kb-import          a large import into an existing knowledge base: rows, history
    memory-add         two exemplars added to a built category: exemplars, bank, calibration
    memory-rebuild     a category's bank rebuilt: bank, calibration
    annotation-export  an export over an existing one (force): staged, renamed, removed
    annotation-add     annotations added one by one: added
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

IMPORT_SIZE = 1200  # more ids than one nested OR filter survives (see filters.one_of)
ANNOTATION_SIZE = (96, 72)
MEMORY_SIZE = 64


def point(name: str) -> None:
    """Report reaching `name`; block there when it is the pause point."""
    print(f"at {name}", flush=True)
    if name == sys.argv[3]:
        sys.stdin.readline()  # the test kills this process now


def after(owner, attribute: str, name: str) -> None:
    """Report `name` each time `owner.attribute(...)` has returned."""
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        point(name)
        return result

    setattr(owner, attribute, wrapper)


def before(owner, attribute: str, name: str) -> None:
    """Report `name` each time just before `owner.attribute(...)` runs."""
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        point(name)
        return original(*args, **kwargs)

    setattr(owner, attribute, wrapper)


def bulk_entries(tag: str):
    """`IMPORT_SIZE` valid entries of one category."""
    from knowledge_helpers import entry

    return [
        entry("bulk", f"{tag}-{i}", f"Defect {i} of the bulk import, a long enough text. " * 8)
        for i in range(IMPORT_SIZE)
    ]


def memory_texture(seed: int):
    """A normal texture image for the memory tests."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    values = 120 + 25 * rng.standard_normal((MEMORY_SIZE, MEMORY_SIZE, 3))
    return Image.fromarray(values.clip(0, 255).astype(np.uint8))


def open_memory(uri: str):
    """The visual memory the memory tests use (small images, two views, a coreset)."""
    from reason_iad.config import MemoryConfig
    from reason_iad.memory.backbone import EfficientNetLiteBackbone
    from reason_iad.memory.detector import VisualMemory

    config = MemoryConfig(image_size=MEMORY_SIZE, views_per_exemplar=2, coreset_min_patches=100, coreset_ratio=0.5)
    return VisualMemory(uri, config, EfficientNetLiteBackbone(image_size=MEMORY_SIZE))


def annotation_image(index: int):
    """A distinct small RGB image."""
    from PIL import Image

    return Image.new("RGB", ANNOTATION_SIZE, (index * 37 % 256, index * 11 % 256, 90))


def knowledge_write(kind: str, uri: str):
    """Set up a knowledge write; the callable that does it."""
    from knowledge_helpers import make_store
    from reason_iad.knowledge import store as store_module
    from reason_iad.knowledge.transfer import import_entries

    after(store_module.KnowledgeStore, "rows", "rows")
    if kind == "kb-create":
        after(store_module, "write_meta", "meta")
        before(store_module.KnowledgeStore, "_finish_setup", "created")
        before(store_module, "create_search_indexes", "indexes")
        return lambda: make_store(uri, seed=bulk_entries("seed"))
    store, entries = make_store(uri), bulk_entries("import")
    before(store.history, "add", "history")
    return lambda: import_entries(store, entries, [], author="crash")


def memory_write(kind: str, uri: str):
    """Set up a memory write; the callable that does it."""
    memory = open_memory(uri)
    after(memory.exemplar_store, "add_many", "exemplars")
    after(memory.store, "append_bank", "bank")
    after(memory.store, "replace_bank", "bank")
    after(memory.store, "write_calibration", "calibration")
    if kind == "memory-add":
        return lambda: memory.add_exemplars("Crash", "tile", [memory_texture(10), memory_texture(11)])
    return lambda: memory.rebuild("Crash", "tile")


def annotation_write(kind: str, uri: str):
    """Set up an annotation write; the callable that does it."""
    from reason_iad import exports as module
    from reason_iad.annotations import AnnotationStore

    store = AnnotationStore(uri)
    if kind == "annotation-add":
        after(store.table, "add", "added")
        return lambda: [store.add(annotation_image(i), "normal", "Crash", "gear", author="crash") for i in range(50)]
    after(module, "_write_mmad", "staged")
    after(Path, "rename", "renamed")
    after(module.shutil, "rmtree", "removed")
    out = Path(sys.argv[4])
    return lambda: module.export_mmad(store.list(), out, force=True)


def main() -> None:
    kind, uri = sys.argv[1], sys.argv[2]
    setup = {"kb": knowledge_write, "memory": memory_write, "annotation": annotation_write}[kind.split("-")[0]]
    write = setup(kind, uri)
    print("ready", flush=True)
    sys.stdin.readline()
    write()
    print("done", flush=True)


if __name__ == "__main__":
    main()
