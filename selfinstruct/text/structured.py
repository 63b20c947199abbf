"""Read the answers a model wrote in the JSON shapes of :mod:`selfinstruct.text.schemas`.

With structured output on, a constrained backend writes exactly the schema's JSON, but
not every backend constrains (a server that refused the schema, a model that ignores
it), and an answer cut off by the length limit is JSON with its end missing. So every
reader here is lenient in the same way the text parsers are, and says "not JSON of
this shape" by returning None, so the stage falls back to its text parser:

* the JSON may sit in a fence (```json … ```), with blank lines around it, its
  strings may hold raw line breaks, and a trailing comma, Python quoting (``'x'``,
  ``True``, ``None``) or a comment is read as meant (:mod:`selfinstruct.text.lenient_json`);
* an answer cut short is closed (an open string ended, open lists and objects closed,
  or cut back to the last complete item), so every complete item still counts and the
  filters drop the cut one as ``truncated``, as they do for text;
* the list may be the root itself or sit under another single key (a server in plain
  JSON mode picks its own names); numbers and nested JSON in a value become text.

Pure: no I/O, never raises on model output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from selfinstruct.text.instances import Example, clean_label, parse_yes_no
from selfinstruct.text.lenient_json import load_json
from selfinstruct.text.tasks import Candidate, clean_no_input

__all__ = [
    "load_json_answer",
    "read_alpaca_tasks",
    "read_input_first",
    "read_output_first",
    "read_task_list",
    "read_yes_no",
]

# "Task 9:", "任务9：", "9." in front of an instruction: a model that saw the prompt's
# numbered list numbers its JSON strings too. Not "3.5 is…": no digit after the point.
_TASK_MARKER = re.compile(
    r"^\W{0,3}(?:(?:task|任务|任務)[ \t]*[#＃]?[ \t]*[0-9０-９]{1,3}|[0-9０-９]{1,3})"
    r"[ \t]*(?:[:：)）、]|[.．](?![0-9]))[ \t]*(?:\*{1,3}[ \t]*)?",
    re.IGNORECASE,
)


def load_json_answer(text: str) -> Any | None:
    """The JSON value an answer holds, or None when it holds none.

    The answer must be JSON from its first character (after whitespace), or hold a
    fenced block that is; prose that merely contains braces is text, not JSON. Text
    after a complete value is ignored; a value cut short is closed, and a trailing
    comma, Python quoting or a comment is repaired (:func:`lenient_json.load_json`, the
    reader every stage shares).
    """
    return load_json(text)


def _items(value: Any, key: str) -> list[Any] | None:
    """The list under ``key``, the root list, or an object's only list; else None."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    if isinstance(value.get(key), list):
        return list(value[key])
    lists = [item for item in value.values() if isinstance(item, list)]
    return lists[0] if len(lists) == 1 else None


def _text(value: Any) -> str:
    """A field as text: strings stripped, numbers and nested JSON written out, null ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _field(item: dict[str, Any], names: Sequence[str]) -> str:
    """The first of ``names`` that ``item`` has, as text ("" when it has none)."""
    for name in names:
        if name in item:
            return _text(item[name])
    return ""


def read_task_list(text: str) -> list[str] | None:
    """Self-Instruct: the instructions of ``{"tasks": [...]}``, in order, each on one
    line and without a ``Task 9:`` number in front."""
    items = _items(load_json_answer(text), "tasks")
    if items is None:
        return None
    tasks = []
    for item in items:
        if isinstance(item, dict):
            instruction = _field(item, ("instruction", "task"))
        else:
            instruction = _text(item)
        instruction = _TASK_MARKER.sub("", " ".join(instruction.split()), count=1)
        if instruction:
            tasks.append(instruction)
    return tasks


def read_alpaca_tasks(text: str) -> list[Candidate] | None:
    """Alpaca: the tasks of ``{"tasks": [{"instruction", "input", "output"}]}``.

    Inputs such as ``<noinput>`` or ``N/A`` become "", as in the text parser.
    """
    items = _items(load_json_answer(text), "tasks")
    if items is None:
        return None
    tasks = []
    for item in items:
        if not isinstance(item, dict):
            continue
        instruction = " ".join(_field(item, ("instruction",)).split())
        if instruction:
            tasks.append(Candidate(instruction, clean_no_input(_field(item, ("input",))),
                                   _field(item, ("output",))))
    return tasks


def read_yes_no(text: str) -> bool | None:
    """Classify: True for ``{"answer": "Yes"}`` (or 是, or true), False for No / 否."""
    value = load_json_answer(text)
    if not isinstance(value, dict) or "answer" not in value:
        return None
    answer = value["answer"]
    if isinstance(answer, bool):
        return answer
    return parse_yes_no(answer) if isinstance(answer, str) else None


def read_input_first(text: str) -> list[Example] | None:
    """Input-first: the examples of ``{"examples": [{"input", "output"}]}``."""
    items = _items(load_json_answer(text), "examples")
    if items is None:
        return None
    examples = []
    for item in items:
        if isinstance(item, dict):
            example = Example(clean_no_input(_field(item, ("input",))),
                              _field(item, ("output",)))
            if example.input or example.output:
                examples.append(example)
    return examples


def read_output_first(text: str) -> tuple[list[str], list[Example]] | None:
    """Output-first: the listed labels and the ``{"label", "input"}`` examples, each
    example's output being its label (as :func:`parse_output_first` gives them)."""
    value = load_json_answer(text)
    items = _items(value, "examples")
    if items is None:
        return None
    listed = value.get("labels") if isinstance(value, dict) else None
    labels = [clean_label(_text(label)) for label in listed or ()]
    examples = []
    for item in items:
        if isinstance(item, dict):
            example = Example(clean_no_input(_field(item, ("input",))),
                              clean_label(_field(item, ("label", "output"))))
            if example.input or example.output:
                examples.append(example)
    return list(dict.fromkeys(label for label in labels if label)), examples
