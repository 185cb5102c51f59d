"""The answers file of a run: one JSON line per answered question, appended atomically, read back for resume.

Each line is written with a single `write` of the complete line, then flushed and `fsync`ed, so a crash leaves
at most a partial last line (no newline). Readers ignore such a tail; `AnswerWriter` cuts it off before it
appends. A lock on the file refuses a second writer.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reason_iad.errors import UserError
from reason_iad.eval.grounding import Grounding

ANSWERS_FILE = "answers.jsonl"
ScoreSource = Literal["readout", "parsed"]
SCORE_SOURCES: tuple[str, ...] = ("readout", "parsed")


@dataclass(frozen=True)
class AnswerRecord:
    """One answered question: what was asked, the model's read-out letter, its reply and the reply's parsed letter."""

    id: str  # `<image key>#<question index>`
    image: str
    dataset: str
    category: str
    subtask: str  # the MMAD `type` tag
    is_normal: bool
    correct_answer: str
    readout_answer: str | None  # the engine's read-out letter (highest probability)
    parsed_answer: str | None  # the letter parsed from the generated reply (None: unparseable)
    readout: str = "letter"  # letter | likelihood
    question_index: int = 0
    question: str = ""
    options: dict[str, str] = field(default_factory=dict)
    reply: str = ""
    option_probs: dict[str, float] = field(default_factory=dict)
    template: str | None = None
    seconds: float = 0.0
    grounding: Grounding | None = None  # against the ground-truth mask (defective images with a mask only)
    rationale: str = ""  # the explanation, in a run decoded with `--rationale continue` or `followup`

    def scored_answer(self, source: ScoreSource) -> str | None:
        """The letter that is scored: the read-out letter or the parsed one."""
        return self.readout_answer if source == "readout" else self.parsed_answer

    def to_line(self) -> bytes:
        """One complete JSONL line (UTF-8, newline-terminated)."""
        return (json.dumps(dataclasses.asdict(self), ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_dict(cls, data: dict) -> AnswerRecord:
        """Build from a parsed line; raises `ValueError` on missing or unknown fields."""
        if not isinstance(data, dict):
            raise ValueError("a line must hold a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        try:
            grounding = data.get("grounding")
            if grounding is not None:
                data = {**data, "grounding": Grounding.from_dict(grounding)}
            return cls(**data)
        except TypeError as err:
            raise ValueError(str(err)) from err


def comparable(records: Iterable[AnswerRecord]) -> dict[str, dict]:
    """Records by id without their timing, to compare two runs' answers."""
    return {r.id: {k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in records}


@dataclass(frozen=True)
class AnswerLog:
    """What an answers file holds: the records (first of each id), and the partial tail that was ignored."""

    records: tuple[AnswerRecord, ...]
    partial_tail_bytes: int = 0
    duplicates: int = 0

    @property
    def ids(self) -> frozenset[str]:
        """The ids of the answered questions."""
        return frozenset(r.id for r in self.records)


def read_answers(path: str | Path) -> AnswerLog:
    """Read an answers file; a missing file is empty, a partial last line is ignored, a bad full line refused."""
    path = Path(path)
    if not path.exists():
        return AnswerLog(records=())
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    records: dict[str, AnswerRecord] = {}
    duplicates = 0
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = AnswerRecord.from_dict(json.loads(line))
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{path}, line {number}, is not an answer record: {err}") from err
        if record.id in records:
            duplicates += 1
            continue
        records[record.id] = record
    return AnswerLog(records=tuple(records.values()), partial_tail_bytes=len(data) - complete, duplicates=duplicates)


class AnswerWriter:
    """Appends records to an answers file, one durable line at a time (use as a context manager)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(self._fd)
            raise UserError(f"another run is writing to {self.path}; wait for it or use another run folder") from err
        self._drop_partial_tail()

    def _drop_partial_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
            return
        position = size
        while position > 0:
            start = max(0, position - 65536)
            chunk = os.pread(self._fd, position - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                os.ftruncate(self._fd, start + newline + 1)
                return
            position = start
        os.ftruncate(self._fd, 0)

    def append(self, record: AnswerRecord) -> None:
        """Write one complete line, then flush it to disk."""
        line = record.to_line()
        written = os.write(self._fd, line)
        while written < len(line):  # a short write (rare) continues where it stopped
            written += os.write(self._fd, line[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock and close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AnswerWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
