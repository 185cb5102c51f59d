"""The import graph of `reason_iad/` and `demo/`, read from the source: no cycles, no upward imports.

The layers are the README's architecture section, bottom to top. A module may import modules of its own layer
or below; `*.command` modules (the CLI's subcommands) belong to the entry-point layer wherever they live. Every
import counts, at module level or inside a function: a lazy import hides a cycle from Python, not from a reader.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = (
    (
        "foundation",
        ("errors", "paths", "mmad", "types", "filters", "images", "lance_tables", "library_logs"),
    ),
    ("configuration", ("config",)),
    ("models and memory", ("backends", "memory")),
    ("knowledge and data", ("knowledge", "synth", "annotations")),
    ("reasoning", ("reasoning",)),
    ("orchestration", ("pipeline",)),
    ("applications", ("eval", "training", "bench", "runcard", "replay", "exports", "categories")),
    ("entry points", ("cli", "cli_options", "commands")),  # cli_options: the flags commands share -> config
    ("studio", ("demo",)),
)
_RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    found = {}
    for top in ("reason_iad", "demo"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(node: ast.AST, package: str, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    else:
        return []
    resolved = []
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target:
            resolved.append(target)
    return resolved


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            edges.update(t for t in _imported(node, package, known) if t != name)
        graph[name] = edges
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[-1] == "command":
        return _RANK["commands"]
    key = "demo" if parts[0] == "demo" else (parts[1] if len(parts) > 1 else "reason_iad")
    if key == "reason_iad":  # the package's own __init__: the public facade, nothing below imports it
        return _RANK["cli"]
    assert key in _RANK, f"{module}: no layer for {key!r}; add it to LAYERS and to the README's architecture"
    return _RANK[key]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_are_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The rules themselves: a planted cycle is found, and config importing memory counts as upward."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("reason_iad.memory.detector") > layer_of("reason_iad.config")
    assert layer_of("reason_iad.knowledge.command") > layer_of("reason_iad.pipeline")
