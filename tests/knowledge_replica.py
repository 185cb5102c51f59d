"""A knowledge-base replica in its own process, driven by JSON lines on stdin (one reply line per command).

    python tests/knowledge_replica.py URI    # folder or s3:// (AWS_* variables in the environment)

The store is opened once, before any command, like a studio replica that keeps running while others edit.
Commands: get, search, add, update, delete, tag, tags, changes, version, and burst (many updates of one
entry, started at a given wall-clock time so that two replicas write at the same moment).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from knowledge_helpers import entry, make_store  # noqa: E402
from reason_iad.errors import UserError  # noqa: E402
from reason_iad.knowledge.search import search  # noqa: E402


def burst(store, command: dict) -> list:
    """Update one field of one entry once per value; [value, version] when accepted, [value, error] when not."""
    while time.time() < command["start_at"]:
        time.sleep(0.001)
    results = []
    for value in command["values"]:
        try:
            results.append([value, store.update(command["id"], command["author"], **{command["field"]: value})])
        except UserError as err:
            results.append([value, str(err)])
    return results


def run(store, command: dict):
    """One command's reply."""
    op = command["op"]
    if op == "get":
        stored = store.get(command["id"])
        return {"title": stored.entry.title, "text": stored.entry.text, "updated_at": stored.updated_at}
    if op == "search":
        return [hit.entry.id for hit in search(store, command["query"], command.get("mode", "fts"))]
    if op == "add":
        return store.add([entry(command["category"], command["defect"], command["text"])], command["author"])
    if op == "update":
        return store.update(command["id"], command["author"], **command["fields"])
    if op == "delete":
        return store.delete([command["id"]], command["author"])
    if op == "tag":
        return store.tag(command["name"])
    if op == "tags":
        return store.tags()
    if op == "changes":
        return [[c.version, c.author, c.action] for c in store.changes()]
    if op == "version":
        return store.version
    if op == "burst":
        return burst(store, command)
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    store = make_store(sys.argv[1])
    print(json.dumps({"ready": store.version}), flush=True)
    for line in sys.stdin:
        try:
            reply = {"ok": run(store, json.loads(line))}
        except UserError as err:
            reply = {"error": str(err)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
