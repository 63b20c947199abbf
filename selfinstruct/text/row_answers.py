"""Turn a teacher model's answer to one row into fields, or say why it cannot be.

Three ways to read an answer, chosen by the user:

* ``text``: the answer after any ``</think>`` is the ``answer`` field;
* ``json``: a JSON object or list, fenced (```` ```json … ``` ````) or bare, possibly
  after prose; an object is one item, a list one item per element, and ``--map
  instruction=q`` renames the key ``q`` to ``instruction``. The JSON is read by the
  lenient reader every stage shares (:mod:`selfinstruct.text.lenient_json`): a trailing
  comma, Python quoting, comments and an unclosed fence are read as meant;
* ``separator``: ``answer`` before the separator (``####``), ``rationale`` after it, the
  "conclusion #### reasoning" order that lets a stop word skip the reasoning.

Whatever the mode, an empty answer is ``empty``. An answer cut by the length limit is
``truncated``, except a JSON list, which keeps its complete items: the item the answer
stopped in is ``truncated_item`` (with its raw text). An answer with no JSON is
``unparseable``, one whose JSON cannot be read whole ``unreadable_json`` (never a part
of it kept), a list item without a mapped key ``missing_key``, an answer without the
separator ``no_separator``. The user's own checks: ``--items N`` rejects a list of
another length whole (``wrong_item_count``), ``--labels`` an item whose label is not
listed (``label_not_allowed``; :func:`label_field` says which field is the label).
Nothing is dropped silently: the stage records each rejection with the raw answer.

Pure: no I/O, never raises on model output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.text.lenient_json import JsonRead, NotRead
from selfinstruct.text.lenient_json import find_json as read_json
from selfinstruct.text.thinking import split_thinking

ParseMode = Literal["text", "json", "separator"]


@dataclass(frozen=True)
class AnswerFormat:
    """How to read answers: the mode, the key renames (new name ← JSON key), the
    separator, the stop strings sent (a separator that is also a stop string never
    shows in the answer: the model stopped there), and the user's checks: the labels
    allowed (empty: any) and the number of items a JSON answer must hold (None: any)."""

    mode: ParseMode = "text"
    renames: Mapping[str, str] = field(default_factory=dict)
    separator: str = "####"
    stop: Sequence[str] = ()
    labels: Sequence[str] = ()
    items: int | None = None


@dataclass(frozen=True)
class Rejection:
    """Why an answer, or one item of it (``item`` not None), was not kept; ``text`` is
    the item's own raw text where only part of the answer is rejected (a cut item)."""

    filter: str
    detail: str
    item: int | None = None
    text: str | None = None


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
    cut = finish_reason == "length"
    if cut and (answer_format.mode != "json" or not thought.answer):
        return _rejected(reasoning, "truncated",
                         "the answer was cut by the token limit (raise --max-tokens)")
    if not thought.answer:
        return _rejected(reasoning, "empty", "no answer after the reasoning"
                         if thought.reasoning is not None else "the answer is empty")
    if answer_format.mode == "text":
        parsed = ParsedAnswer([(None, {"answer": thought.answer})], [], reasoning)
    elif answer_format.mode == "separator":
        parsed = _by_separator(thought.answer, reasoning, answer_format)
    else:
        parsed = _by_json(thought.answer, reasoning, answer_format, cut)
    return _labels_checked(parsed, answer_format)


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


def _by_json(answer: str, reasoning: str, answer_format: AnswerFormat,
             cut: bool) -> ParsedAnswer:
    """The items of the answer's JSON, read whole; a list that the answer stops in keeps
    its complete items and rejects the cut one alone (``truncated_item``)."""
    found = read_json(answer)
    if found is None:
        return _rejected(reasoning, "truncated" if cut else "unparseable",
                         "no JSON object or list in the answer")
    if isinstance(found, NotRead):
        return _rejected(reasoning, "truncated" if found.cut else "unreadable_json",
                         f"the JSON cannot be read whole: {found.detail}")
    if isinstance(found.value, dict):
        values: list[tuple[int | None, Any]] = [(None, found.value)]
    elif not found.value:
        return _rejected(reasoning, "empty", "the JSON list is empty")
    else:
        values = list(enumerate(found.value))
    miscount = _miscount(found, len(values), answer_format.items)
    if miscount:
        return _rejected(reasoning, "wrong_item_count", miscount)
    parsed = _mapped(values, reasoning, answer_format.renames)
    if found.cut_item is not None:
        parsed.rejections.append(Rejection(
            "truncated_item", "the answer stops inside this item (cut by the token limit: "
            "raise --max-tokens); the complete items before it are kept",
            len(values), found.cut_item))
    return parsed


def _miscount(found: JsonRead, complete: int, expected: int | None) -> str | None:
    """Why the answer holds the wrong number of items (None: it holds the right one, or
    none was asked for). A list cut off may hold fewer, since its end is missing, but
    not more: the complete items and the cut one count."""
    if expected is None:
        return None
    written = complete + (found.cut_item is not None)
    if written == expected or (found.cut and written < expected):
        return None
    shape = "the answer has one JSON object" if isinstance(found.value, dict) else (
        f"the JSON list has {written} item{'s' * (written != 1)}")
    return f"{shape}; --items asks for {expected}"


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


def label_field(answer_format: AnswerFormat) -> str:
    """The field ``--labels`` checks: ``answer`` with ``--parse text`` or ``separator``;
    with ``--parse json``, ``label`` unless ``--map`` names other fields only, then
    ``output`` if mapped, else the first mapped one. (A list of bare values has each
    value as its ``answer``, which is checked then.)"""
    if answer_format.mode != "json":
        return "answer"
    names = list(answer_format.renames)
    if not names or "label" in names:
        return "label"
    return "output" if "output" in names else names[0]


def _labels_checked(parsed: ParsedAnswer, answer_format: AnswerFormat) -> ParsedAnswer:
    """``parsed`` with each item whose label is not one of ``--labels`` rejected."""
    if not answer_format.labels:
        return parsed
    name = label_field(answer_format)
    allowed = set(answer_format.labels)
    kept: list[tuple[int | None, dict[str, Any]]] = []
    rejections: list[Rejection] = []
    for index, fields in parsed.items:
        checked = _checked_field(fields, name)
        if checked not in fields:
            rejections.append(Rejection("label_not_allowed", f"no {name!r} field to check "
                                        "against --labels", index))
        elif _label_text(fields[checked]) not in allowed:
            rejections.append(Rejection(
                "label_not_allowed", f"{checked} {_label_text(fields[checked])!r} is not one "
                f"of --labels {','.join(answer_format.labels)}", index))
        else:
            kept.append((index, fields))
    return ParsedAnswer(kept, [*parsed.rejections, *rejections], parsed.reasoning)


def _checked_field(fields: Mapping[str, Any], name: str) -> str:
    """The field ``--labels`` checks in one item: ``name``, or ``answer`` for a bare value
    of a JSON list, whose only field that is."""
    return "answer" if name not in fields and set(fields) == {"answer"} else name


def _label_text(value: Any) -> str:
    """A label as the user lists it: text stripped, numbers and booleans as JSON."""
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def rename(value: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """``value`` with each mapped key under its new name; unmapped keys stay as they are."""
    taken = set(renames.values())
    fields = {new: value[old] for new, old in renames.items()}
    fields.update((key, item) for key, item in value.items()
                  if key not in taken and key not in fields)
    return fields


def find_json(text: str) -> dict[str, Any] | list[Any] | None:
    """The first JSON object or list in ``text`` (its complete items, when the text stops
    inside it); None when there is none or it cannot be read whole."""
    found = read_json(text)
    return found.value if isinstance(found, JsonRead) else None


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
