"""Read the JSON in a model's answer whole, or say why it cannot be read.

Models write JSON that a strict decoder refuses, and answers are paid for, so the shapes
they really write are read here, by every stage that reads JSON:

* a trailing comma (``{…},\\n]``), Python's quoting (``[{'q': 'x', 'ok': True}]``),
  ``//``, ``/* */`` and ``#`` comments: written over as strict JSON by the scan that
  finds the value's end (:mod:`selfinstruct.text.json_scan`), which has one reading of
  each; what is still not JSON goes to the json-repair library, whose answer is taken
  only when it reports no repair (a missing comma between two items, say);
* a fence that is never closed, prose before and after: the value is looked for in
  fenced blocks first, then where a ``{`` or ``[`` in the text starts something that
  looks like JSON;
* an answer cut off by the token limit: see :func:`find_json` (a list keeps its complete
  items and names the cut one) and :func:`load_json` (the cut value is closed).

What is never done is read *part* of an answer silently: a value is read from its
opening bracket to its end or not at all (no object nested in a list that failed is
taken for the answer), and a repair that changed what was written (a string's quote
guessed, a key dropped) is refused. Strict JSON is always tried first, so a well-formed
answer reads exactly as the standard decoder reads it.

Pure: no I/O, never raises on model output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import json_repair

from selfinstruct.text.json_scan import Shape, scan

__all__ = ["JsonRead", "NotRead", "find_json", "json_values", "load_json"]

#: Fenced blocks, ```json or bare ```; the closing fence is missing when the answer was
#: cut short or the model forgot it.
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\r?\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
_START = re.compile(r"[\[{]")
#: How many ``{`` / ``[`` of the prose are looked at: a degenerate answer should not
#: cost thousands of scans.
_MAX_STARTS = 20
#: How many cut points closing a cut value tries, last first.
_MAX_CLOSINGS = 50
#: What may follow an opening bracket for the text to count as JSON rather than prose
#: such as ``{your name}`` or ``[see above]``: a string, a nested value, a number, a
#: literal (Python's too), a comment, or the closing bracket.
_LOOKS_LIKE_JSON = {
    "{": re.compile(r"\{\s*(?:[\"'}]|//|/\*|#)"),
    "[": re.compile(r"\[\s*(?:[\"'{\[\]\-0-9]|//|/\*|#"
                    r"|(?:true|false|null|True|False|None)\b)"),
}
#: Not strict: a raw line break inside a string is kept (llama.cpp's grammar lets a model
#: write one, and the text is still wanted).
_DECODER = json.JSONDecoder(strict=False)
_CLOSERS = {"{": "}", "[": "]"}


@dataclass(frozen=True)
class JsonRead:
    """A JSON object or list read from an answer.

    ``cut_item`` is the raw text of a list's last item when the answer stopped inside
    it: the item is not in ``value`` (the complete items before it are).
    """

    value: dict[str, Any] | list[Any]
    cut_item: str | None = None
    #: Whether the answer stopped before the value's end (its closing bracket is missing).
    cut: bool = False


@dataclass(frozen=True)
class NotRead:
    """The answer holds JSON that cannot be read whole: ``cut`` when it stops before a
    single complete item, else unreadable; ``detail`` says what is wrong."""

    cut: bool
    detail: str


def find_json(text: str) -> JsonRead | NotRead | None:
    """The first JSON object or list in ``text``, for an answer that may put prose around
    it: fenced blocks first, then values in the text; None when nothing looks like JSON.

    Every candidate is first tried as strict JSON, and only then repaired, so valid JSON
    later in the answer wins over an earlier fragment that only a repair would read.

    A list cut off (no closing bracket) keeps its complete items; the item the answer
    stopped in is left out and returned as ``cut_item``. A cut object, or a list cut in
    its first item, is ``NotRead(cut=True)``.
    """
    candidates = _candidates(text)
    for body, _ in candidates:
        value = _strict(body)
        if value is not None:
            return JsonRead(value)
    failure: NotRead | None = None
    for body, shape in candidates:
        found = _lenient(body, shape)
        if isinstance(found, JsonRead):
            return found
        failure = failure or found
    return failure


def json_values(text: str) -> Iterator[dict[str, Any] | list[Any]]:
    """Every JSON object or list in ``text`` that reads whole (strictly or by a harmless
    repair), fenced blocks first: for readers that pick the value they recognise."""
    for body, shape in _candidates(text):
        value = _strict(body)
        if value is not None:
            yield value
            continue
        found = _lenient(body, shape)
        if isinstance(found, JsonRead) and not found.cut:
            yield found.value


def load_json(text: str) -> Any | None:
    """The JSON value that starts ``text`` (after blanks) or its first fenced block, for
    answers asked for as JSON; prose that merely contains braces is not JSON (None).

    A value cut short is closed where it stops (an open string ended, open lists and
    objects closed, or cut back to the last comma), so the cut item stays in the value
    and the caller's filters can name it; text after a complete value is ignored.
    """
    body = text.strip()
    if not body.startswith(("{", "[")):
        fenced = _FENCE.search(body)
        if fenced is None:
            return None
        body = fenced.group("body").strip()
        if not body.startswith(("{", "[")):
            return None
    value = _strict(body)
    if value is not None:
        return value
    shape = scan(body)
    if shape.mismatch is not None:
        return None
    if shape.end is None:
        return _closed(body)
    found = _repaired(shape)
    return found.value if isinstance(found, JsonRead) else None


def _candidates(text: str) -> list[tuple[str, Shape]]:
    """Each fenced block that opens with a bracket, then each value in the text that
    looks like JSON and is not inside an earlier one, with its shape."""
    found: list[tuple[str, Shape]] = []
    for match in _FENCE.finditer(text):
        body = match.group("body").strip()
        if body[:1] in ("{", "[") and _looks_like_json(body, 0):
            found.append((body, scan(body)))
    position = 0
    for _ in range(_MAX_STARTS):
        start = _START.search(text, position)
        if start is None:
            break
        if not _looks_like_json(text, start.start()):
            position = start.start() + 1
            continue
        body = text[start.start():]
        shape = scan(body)
        found.append((body, shape))
        if shape.end is not None:
            position = start.start() + shape.end
        elif shape.mismatch is not None:
            position = start.start() + shape.mismatch + 1
        else:
            break  # a value cut off runs to the end of the text
    return found


def _looks_like_json(text: str, start: int) -> bool:
    return _LOOKS_LIKE_JSON[text[start]].match(text, start) is not None


def _strict(body: str) -> dict[str, Any] | list[Any] | None:
    """The object or list ``body`` starts with, as the standard decoder reads it."""
    try:
        value, _ = _DECODER.raw_decode(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _lenient(body: str, shape: Shape) -> JsonRead | NotRead:
    """``body`` as the scan rewrote it, or repaired without a guess; a list cut off keeps
    its complete items."""
    if shape.mismatch is not None:
        return NotRead(False, f"a {body[shape.mismatch]!r} closes a bracket it does not "
                       "match")
    if shape.end is not None:
        return _repaired(shape)
    if body.startswith("{"):
        return NotRead(True, "the answer stops inside its JSON object")
    if shape.tail_complete:
        whole = body.rstrip() + "\n]"  # on a line of its own: after a // comment too
        found = _read_closed(whole)
        return JsonRead(found.value, None, True) if isinstance(found, JsonRead) else found
    if not shape.commas:
        return NotRead(True, "the answer stops inside the first item of its JSON list")
    last = shape.commas[-1]
    found = _read_closed(body[:last] + "]")
    if not isinstance(found, JsonRead):
        return found
    return JsonRead(found.value, body[last + 1:].strip() or None, True)


def _read_closed(span: str) -> JsonRead | NotRead:
    value = _strict(span)
    return JsonRead(value) if value is not None else _repaired(scan(span))


def _repaired(shape: Shape) -> JsonRead | NotRead:
    """The whole value ``shape`` was scanned from: as the scan wrote it in strict JSON,
    else as json-repair reads it when it reports no repair (what it fixes silently, such
    as a missing comma between two items, has one reading; what it reports, it guessed);
    and only when no item between the root's commas went missing."""
    value = _strict(shape.as_json)
    if value is None:
        try:
            result = json_repair.loads(shape.as_json, logging=True)
        except Exception:  # a third party's parser on any text: failing means unreadable
            return NotRead(False, "not JSON, and the repair failed")
        repaired, log = result if isinstance(result, tuple) else (result, [])
        if log:
            return NotRead(False, "not JSON, and reading it would mean guessing "
                           f"({log[0].get('text', 'a repair')})")
        if not isinstance(repaired, (dict, list)):
            return NotRead(False, "not a JSON object or list")
        value = repaired
    items = shape.items_written()
    if items is None:
        return NotRead(False, "an empty item between two commas")
    if isinstance(value, list) and len(value) < items:
        return NotRead(False, f"{items} items written, {len(value)} read")
    return JsonRead(value)


def _closed(body: str) -> Any | None:
    """A strict-JSON value cut short, closed: the open string (if any) and every open
    bracket closed where the text stops; when that is not valid JSON (the cut fell in a
    key, after a colon, inside ``true``), cut back to the last comma or opening bracket
    instead. None when no closing makes it valid."""
    closers: list[str] = []
    cuts: list[tuple[int, str]] = []
    in_string = escaped = False
    for index, char in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _CLOSERS:
            closers.append(_CLOSERS[char])
            cuts.append((index + 1, "".join(reversed(closers))))
        elif char in "}]":
            if not closers or closers.pop() != char:
                return None
        elif char == ",":
            cuts.append((index, "".join(reversed(closers))))
    tail = body
    if in_string:
        tail = (body[:-1] if escaped else body) + '"'
    attempts = [tail + "".join(reversed(closers))]
    attempts += [body[:cut] + close for cut, close in reversed(cuts[-_MAX_CLOSINGS:])]
    for attempt in attempts:
        try:
            return _DECODER.decode(attempt)
        except (ValueError, RecursionError):
            continue
    return None
