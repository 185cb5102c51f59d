"""The impact check's answer cache: a LanceDB table beside the knowledge base, one row per answered question.

A row's key hashes everything the answer depends on (model, settings, the knowledge texts put in the prompt, the
image, the template and the question: see `answer_key`), so a cached answer is reused whenever the same
prompt comes again, under any knowledge version. The table is `impact_answers` in the knowledge base's database;
it never touches the knowledge table itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from reason_iad.eval.answers import AnswerRecord
from reason_iad.eval.reader import EvalItem
from reason_iad.filters import one_of
from reason_iad.lance_tables import commit_retrying, create_table_once, open_table_or_none

CACHE_TABLE = "impact_answers"
LOOKUP_CHUNK = 500  # keys per `IN (...)` query
SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("question_id", pa.string()),
        ("knowledge_hash", pa.string()),
        ("record", pa.string()),  # the AnswerRecord as JSON
        ("created_at", pa.string()),
    ]
)


class AnswerCache:
    """Cached `AnswerRecord`s by answer key, in the table `impact_answers` of the database at `uri`."""

    def __init__(self, uri: str) -> None:
        import lancedb

        self.db = lancedb.connect(uri)
        self.table = open_table_or_none(self.db, CACHE_TABLE)

    def get(self, keys: Iterable[str]) -> dict[str, AnswerRecord]:
        """The cached records of the keys that have one (the first row of a key written twice)."""
        keys = sorted(set(keys))
        if self.table is None or not keys:
            return {}
        self.table.checkout_latest()
        found: dict[str, AnswerRecord] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            query = self.table.search().where(one_of("key", chunk)).select(["key", "record"])
            for row in query.limit(None).to_list():
                found.setdefault(row["key"], AnswerRecord.from_dict(json.loads(row["record"])))
        return found

    def put(self, answers: Sequence[tuple[str, str, AnswerRecord]]) -> None:
        """Add (key, knowledge hash, record) rows."""
        if not answers:
            return
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        rows = [
            {
                "key": key,
                "question_id": record.id,
                "knowledge_hash": knowledge_hash,
                "record": record.to_line().decode().rstrip("\n"),
                "created_at": now,
            }
            for key, knowledge_hash, record in answers
        ]
        if self.table is None:
            self.table = open_table_or_none(self.db, CACHE_TABLE)
        if self.table is None:  # created with these rows (a process that lost the race loses them: a cache)
            self.table = create_table_once(self.db, CACHE_TABLE, SCHEMA, lambda: rows)
            return
        commit_retrying(self.table, lambda table: table.add(rows))


# ---------------------------------------------------------------------------------------------- cache keys
def _sha(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def knowledge_hash(texts: Sequence[str]) -> str:
    """The content hash of the knowledge texts put in a prompt, in prompt order (what the model sees)."""
    return _sha(list(texts))


def settings_digest(pipeline, items: Sequence[EvalItem]) -> str:
    """A hash of what decides an answer besides the question and its knowledge.

    That is the model (its name, its files' sizes and modification times), the reasoning settings, and the visual
    memory's bank of each category asked (its evidence may be shown to the model).
    """
    from reason_iad.replay import model_folder

    config = pipeline.config
    name = str(getattr(pipeline.backend, "name", "") or config.backend.model)
    folders = {f for f in (model_folder(config.backend), Path(name) if Path(name).is_dir() else None) if f}
    files = {
        str(p): [p.stat().st_size, p.stat().st_mtime_ns]
        for folder in sorted(folders)
        for p in sorted(Path(folder).iterdir())
        if p.is_file()
    }
    memory = None
    if pipeline.memory is not None:
        pairs = sorted({(i.dataset, i.category) for i in items})
        banks = {f"{d}/{c}": pipeline.memory.bank_info(d, c).version for d, c in pairs}
        memory = {"config": dataclasses.asdict(config.memory), "banks": banks}
    return _sha(
        {
            "model": name,
            "backend": dataclasses.asdict(config.backend),
            "files": files,
            "reasoning": dataclasses.asdict(config.reasoning),
            "memory": memory,
        }
    )


def answer_key(digest: str, item: EvalItem, texts: Sequence[str], fingerprints: dict[Path, str]) -> str:
    """The cache key of one prompt: settings, knowledge texts, image and template contents, question, options."""

    def content(path: Path | None) -> str | None:
        if path is None:
            return None
        if path not in fingerprints:
            fingerprints[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return fingerprints[path]

    return _sha(
        [
            digest,
            knowledge_hash(texts),
            content(item.image_path),
            content(item.template_path),
            item.question.text,
            list(item.question.options),
        ]
    )
