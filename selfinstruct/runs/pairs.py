"""Read finished examples (a prompt and its answer) from a dataset file, to be judged.

``score`` and ``review`` work on data people already have as well as on run
directories: Alpaca JSON/JSONL (``instruction`` / ``input`` / ``output``), ShareGPT
(``conversations``: the first human turn and the answer after it), OpenAI ``messages``,
and flat JSONL whose answer is in ``output``, ``answer`` or ``response``. Every example
gets a stable id (its ``id``, else its position), so a resumed ``score`` knows what is
done and a review sheet can name what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import check_unique_ids, iter_objects, json_type

ANSWER_FIELDS = ("output", "answer", "response")
_HUMAN = ("human", "user")
_ASSISTANT = ("gpt", "assistant")


@dataclass(frozen=True)
class Answered:
    """One example to judge: what was asked and what was answered."""

    id: str
    instruction: str
    input: str
    output: str


def load_answered(path: Path, *, field: str = "instruction") -> list[Answered]:
    """Every example in ``path``; a record without a prompt or an answer is an error
    naming file and line (a judge cannot rate half an example)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    examples = [_example(path, line, value, field, f"row{index}")
                for index, (line, value) in enumerate(iter_objects(path))]
    if not examples:
        raise UserError(f"{path}: no examples found")
    check_unique_ids(path, (example.id for example in examples),
                     "scores and reviews can name their example")
    return examples


def _example(path: Path, line: int, value: Any, field: str, fallback: str) -> Answered:
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    key = str(value.get("id", fallback))
    for turns in ("conversations", "messages"):
        if field not in value and isinstance(value.get(turns), list):
            return _conversation(path, line, key, value[turns], turns)
    text = value.get(field)
    answer = next((value[name] for name in ANSWER_FIELDS if isinstance(value.get(name), str)),
                  None)
    if not isinstance(text, str) or not text.strip() or answer is None:
        fields = ", ".join(sorted(value)) or "none"
        raise UserError(f"{path}:{line}: expected a prompt in {field!r} and an answer in "
                        f"{' / '.join(ANSWER_FIELDS)} (fields: {fields})")
    extra = value.get("input", "")
    return Answered(key, text.strip(), extra.strip() if isinstance(extra, str) else "",
                    answer.strip())


def _conversation(path: Path, line: int, key: str, turns: list[Any], name: str) -> Answered:
    """The first human turn and the assistant turn right after it."""
    texts = [(str(t.get("from") or t.get("role")), t.get("value", t.get("content")))
             for t in turns if isinstance(t, dict)]
    for position, (role, text) in enumerate(texts[:-1]):
        reply_role, reply = texts[position + 1]
        if (role in _HUMAN and reply_role in _ASSISTANT and isinstance(text, str)
                and isinstance(reply, str) and text.strip()):
            return Answered(key, text.strip(), "", reply.strip())
    raise UserError(f"{path}:{line}: no human/user turn followed by an answer in {name!r}")
