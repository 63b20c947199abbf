"""Read what conversations should be about: a topics file, or the prompts of a dataset.

``dialogue`` takes a plain text file (one topic a line), JSON Lines / a JSON array of
``{"topic", "persona"?, "system"?, "id"?}`` objects, or anything ``reason`` reads its
prompts from (a run directory, Alpaca, ShareGPT, CSV, any JSONL with ``--field``),
whose instructions become the opening topics. Every topic has a stable id (its own, else
its position), so a resumed run knows which conversations are done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.inputs import load_prompts
from selfinstruct.runs.readers import check_unique_ids, iter_objects, json_type, read_text

#: Files read as records (objects with ``topic``, or a dataset); anything else is text.
_RECORD_SUFFIXES = (".json", ".jsonl", ".csv")


@dataclass(frozen=True)
class Topic:
    """One thing to talk about, and optionally who asks and the assistant's system prompt."""

    id: str
    topic: str
    persona: str | None = None
    system: str | None = None


def load_topics(source: Path, *, field: str = "instruction") -> list[Topic]:
    """The topics of ``source`` (see the module); a bad line is an error naming it."""
    if not source.exists():
        raise UserError(f"{source}: no such topics file or run directory")
    if source.is_file() and source.suffix.lower() not in _RECORD_SUFFIXES:
        topics = _text_topics(source)
    elif source.is_file() and source.suffix.lower() != ".csv" and _has_topics(source):
        topics = [_record_topic(source, line, value, f"t{index}")
                  for index, (line, value) in enumerate(iter_objects(source))]
    else:
        topics = [Topic(p.id, f"{p.instruction}\n{p.input}".strip())
                  for p in load_prompts(source, field=field)]
    if not topics:
        raise UserError(f"{source}: no topics (one a line, or JSONL with a 'topic' field)")
    check_unique_ids(source, (topic.id for topic in topics),
                     "a resumed run knows which conversations are done")
    return topics


def _text_topics(path: Path) -> list[Topic]:
    topics = [line.strip() for line in read_text(path, "SOURCE").splitlines() if line.strip()]
    return [Topic(f"t{index}", text) for index, text in enumerate(topics)]


def _has_topics(path: Path) -> bool:
    """Whether a JSON file is a topics file (its first record has ``topic``) rather than
    a dataset whose ``--field`` is the topic."""
    for _, value in iter_objects(path):
        return isinstance(value, dict) and "topic" in value
    return False


def _record_topic(path: Path, line: int, value: Any, fallback: str) -> Topic:
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    topic = value.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        raise UserError(f"{path}:{line}: no text in 'topic' (every line of a topics file "
                        "needs one)")
    return Topic(str(value.get("id", fallback)), topic.strip(),
                 _optional(path, line, value, "persona"), _optional(path, line, value, "system"))


def _optional(path: Path, line: int, value: dict[str, Any], name: str) -> str | None:
    text = value.get(name)
    if text is None:
        return None
    if not isinstance(text, str):
        raise UserError(f"{path}:{line}: {name!r} must be text, got {json_type(text)}")
    return text.strip() or None


def load_personas(path: Path) -> list[str]:
    """The personas of a file, one a line (blank lines and ``#`` notes skipped)."""
    personas = [line.strip() for line in read_text(path, "--personas").splitlines()
                if line.strip() and not line.startswith("#")]
    if not personas:
        raise UserError(f"{path}: no personas (one a line)")
    return personas
