"""Turn a teacher model's answer to one row into fields, or say why it cannot be.

Three ways to read an answer, chosen by the user:

* ``text``: the answer after any ``</think>`` is the ``answer`` field;
* ``json``: a JSON object or list, fenced (```` ```json … ``` ````) or bare, possibly
  after prose; an object is one item, a list one item per element, and ``--map
  instruction=q`` renames the key ``q`` to ``instruction``;
* ``separator``: ``answer`` before the separator (``####``), ``rationale`` after it, the
  "conclusion #### reasoning" order that lets a stop word skip the reasoning.

Whatever the mode, an answer cut by the length limit is ``truncated`` and an empty one
``empty``; an answer with no JSON is ``unparseable``, a list item without a mapped key
``missing_key``, an answer without the separator ``no_separator``. Nothing is dropped
silently: the stage records each rejection with the raw answer.

Pure: no I/O, never raises on model output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.text.thinking import split_thinking

ParseMode = Literal["text", "json", "separator"]

#: Fenced blocks, ```json or bare ```; the first one holding JSON wins.
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\r?\n(.*?)```", re.DOTALL)
#: Where bare JSON may start; the first few candidates are tried, not every brace.
_JSON_START = re.compile(r"[\[{]")
_MAX_STARTS = 20
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class AnswerFormat:
    """How to read answers: the mode, the key renames (new name ← JSON key), the
    separator, and the stop strings sent (a separator that is also a stop string never
    shows in the answer: the model stopped there)."""

    mode: ParseMode = "text"
    renames: Mapping[str, str] = field(default_factory=dict)
    separator: str = "####"
    stop: Sequence[str] = ()


@dataclass(frozen=True)
class Rejection:
    """Why an answer, or one item of it (``item`` not None), was not kept."""

    filter: str
    detail: str
    item: int | None = None


@dataclass(frozen=True)
class ParsedAnswer:
    """The fields of each kept item (``item`` is its position in a JSON list, None for a
    single answer), the rejections, and the reasoning trace (empty when there was none)."""

    items: list[tuple[int | None, dict[str, Any]]]
    rejections: list[Rejection]
    reasoning: str


def parse_answer(text: str, reasoning_field: str | None, finish_reason: str | None,
                 answer_format: AnswerFormat) -> ParsedAnswer:
    """Read one answer as ``answer_format`` says."""
    thought = split_thinking(text, reasoning_field)
    reasoning = thought.reasoning or ""
    if finish_reason == "length":
        return _rejected(reasoning, "truncated",
                         "the answer was cut by the token limit (raise --max-tokens)")
    if not thought.answer:
        return _rejected(reasoning, "empty", "no answer after the reasoning"
                         if thought.reasoning is not None else "the answer is empty")
    if answer_format.mode == "text":
        return ParsedAnswer([(None, {"answer": thought.answer})], [], reasoning)
    if answer_format.mode == "separator":
        return _by_separator(thought.answer, reasoning, answer_format)
    return _by_json(thought.answer, reasoning, answer_format.renames)


def _rejected(reasoning: str, name: str, detail: str) -> ParsedAnswer:
    return ParsedAnswer([], [Rejection(name, detail)], reasoning)


def _by_separator(answer: str, reasoning: str, answer_format: AnswerFormat) -> ParsedAnswer:
    separator = answer_format.separator
    if separator in answer:
        before, after = answer.split(separator, 1)
        fields = {"answer": before.strip(), "rationale": after.strip()}
    elif separator in answer_format.stop:
        fields = {"answer": answer, "rationale": ""}
    else:
        return _rejected(reasoning, "no_separator", f"no {separator!r} in the answer")
    if not fields["answer"]:
        return _rejected(reasoning, "empty", f"nothing before {separator!r}")
    return ParsedAnswer([(None, fields)], [], reasoning)


def _by_json(answer: str, reasoning: str, renames: Mapping[str, str]) -> ParsedAnswer:
    value = find_json(answer)
    if value is None:
        return _rejected(reasoning, "unparseable", "no JSON object or list in the answer")
    if isinstance(value, dict):
        return _mapped([(None, value)], reasoning, renames)
    if not value:
        return _rejected(reasoning, "empty", "the JSON list is empty")
    return _mapped(list(enumerate(value)), reasoning, renames)


def _mapped(values: list[tuple[int | None, Any]], reasoning: str,
            renames: Mapping[str, str]) -> ParsedAnswer:
    """Each item with its keys renamed; an item that lacks a mapped key is rejected alone,
    so one bad element of a list does not cost the others."""
    items: list[tuple[int | None, dict[str, Any]]] = []
    rejections: list[Rejection] = []
    for index, value in values:
        if not isinstance(value, dict):
            if renames:
                rejections.append(Rejection("missing_key", f"the item is {_kind(value)}, "
                                            "not an object with the mapped keys", index))
            else:
                items.append((index, {"answer": value}))
            continue
        missing = [key for key in renames.values() if key not in value]
        if missing:
            keys = ", ".join(map(repr, value)) or "none"
            rejections.append(Rejection("missing_key", f"no {', '.join(map(repr, missing))} "
                                        f"in the item (keys: {keys})", index))
            continue
        items.append((index, rename(value, renames)))
    return ParsedAnswer(items, rejections, reasoning)


def rename(value: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """``value`` with each mapped key under its new name; unmapped keys stay as they are."""
    taken = set(renames.values())
    fields = {new: value[old] for new, old in renames.items()}
    fields.update((key, item) for key, item in value.items()
                  if key not in taken and key not in fields)
    return fields


def find_json(text: str) -> dict[str, Any] | list[Any] | None:
    """The first JSON object or list in ``text``: a fenced block's, else one that starts
    the text, else one after some prose; None when there is none."""
    for block in _FENCE.findall(text):
        value = _decode(block.strip())
        if value is not None:
            return value
    for number, match in enumerate(_JSON_START.finditer(text)):
        if number == _MAX_STARTS:
            break
        value = _decode(text[match.start():])
        if value is not None:
            return value
    return None


def _decode(text: str) -> dict[str, Any] | list[Any] | None:
    """The object or list that ``text`` starts with (anything may follow it)."""
    try:
        value, _ = _DECODER.raw_decode(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a number" if isinstance(value, (int, float)) else "null"


def parse_renames(pairs: Sequence[str]) -> dict[str, str]:
    """``--map NEW=KEY`` flags as ``{new: key}``."""
    renames: dict[str, str] = {}
    for pair in pairs:
        new, sep, old = pair.partition("=")
        if not sep or not new.strip() or not old.strip():
            raise UserError(f"--map {pair!r}: write NEW=KEY, e.g. --map instruction=q")
        if new.strip() in renames:
            raise UserError(f"--map {pair!r}: {new.strip()!r} is mapped twice")
        renames[new.strip()] = old.strip()
    return renames
