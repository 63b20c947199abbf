"""Where a JSON-like value in a model's answer ends, and the value in strict JSON.

A scan of the text from an opening bracket, without decoding it: it knows strings
(``"``, and Python's ``'`` where a value or key may start), comments (``//``, ``/* */``,
``#``) and brackets. It tells where the value ends, or that the text ends first (the
answer was cut off); the root's commas and whether each stretch between them holds
something; a closing bracket that does not match. And it writes the value over in
strict JSON, changing only what has one meaning: ``'`` strings double-quoted (and
Python's ``\\x`` and ``\\'`` escapes written as JSON's), comments and trailing commas
dropped, ``True`` / ``False`` / ``None`` as ``true`` / ``false`` / ``null`` (outside
strings). Done here, where every string's end is known, rather than by a repairing
parser, which has to guess (for one, a comma inside ``'Paris, France'``).

Pure: no I/O, never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOSERS = {"{": "}", "[": "]"}
#: Characters after which a ``'`` opens a string; elsewhere it is an apostrophe.
_VALUE_POSITION = frozenset("[{,:")
_PYTHON_LITERAL = re.compile(r"(True|False|None)\b")
_JSON_LITERAL = {"True": "true", "False": "false", "None": "null"}
_HEX = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class Shape:
    """What a scan found: where the root closes (``end``, just after its bracket; None
    when the text ends first), the root's own commas, whether each stretch between
    them holds anything, where a closing bracket that does not match stands (None: all
    matched), for a value cut off whether its last stretch is a complete value, and the
    text scanned written as strict JSON (the whole value, when ``end`` is set)."""

    end: int | None
    commas: tuple[int, ...]
    filled: tuple[bool, ...]
    mismatch: int | None
    tail_complete: bool
    as_json: str

    def items_written(self) -> int | None:
        """How many items (or members) the root holds by its commas; a trailing comma
        adds none; None when one between two commas is empty."""
        filled = list(self.filled)
        if filled and not filled[-1]:
            filled.pop()
        return len(filled) if all(filled) else None


def scan(body: str) -> Shape:
    """The shape of the value ``body`` starts with (``body[0]`` is ``{`` or ``[``)."""
    return _Scanner(body).run()


class _Scanner:
    """One scan's state: open brackets, the root's commas, the JSON written so far."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.closers: list[str] = []
        self.commas: list[int] = []
        self.filled: list[bool] = []
        self.holds = False  # whether the stretch since the root's last comma holds anything
        self.out: list[str] = []
        self.last = ""  # the last significant character outside strings and comments
        self.last_comma = 0  # where in ``out`` the last comma stands

    def run(self) -> Shape:
        index = 0
        while index < len(self.body):
            char = self.body[index]
            if char == '"' or (char == "'" and self.last in _VALUE_POSITION):
                end = _string_end(self.body, index)
                if end is None:
                    return self._shape(None, None, complete=False)
                self._string(index, end)
                index = end + 1
                continue
            skip = _comment_end(self.body, index)
            if skip is not None:
                self.out.append(" ")
                index = skip
                continue
            if char in "}]":
                shape = self._close(index)
                if shape is not None:
                    return shape
            else:
                index = self._token(index)
                continue
            index += 1
        complete = len(self.closers) == 1 and self.last in ("}", "]", '"', "'")
        return self._shape(None, None, complete=complete)

    def _string(self, opening: int, closing: int) -> None:
        self.out.append(f'"{_json_escaped(self.body[opening + 1:closing])}"')
        self.holds, self.last = True, self.body[opening]

    def _close(self, index: int) -> Shape | None:
        """A closing bracket: the root's end, a mismatch (both end the scan), or nested."""
        char = self.body[index]
        if not self.closers or self.closers.pop() != char:
            return self._shape(None, index, complete=False)
        if self.last == ",":
            self.out[self.last_comma] = ""  # a trailing comma
        self.out.append(char)
        self.last = char
        if not self.closers:
            return self._shape(index + 1, None, complete=False)
        self.holds = True
        return None

    def _token(self, index: int) -> int:
        """Anything but a string, a comment or a closing bracket; where the next starts."""
        char = self.body[index]
        literal = _PYTHON_LITERAL.match(self.body, index) if char in "TFN" else None
        if literal is not None:
            self.out.append(_JSON_LITERAL[literal.group()])
            self.holds, self.last = True, literal.group()[-1]
            return literal.end()
        if char.isspace():
            self.out.append(char)
            return index + 1
        if char == "," and len(self.closers) == 1:
            self.commas.append(index)
            self.filled.append(self.holds)
            self.holds = False
        elif self.closers:
            self.holds = True
        if char == ",":
            self.last_comma = len(self.out)
        elif char in _CLOSERS:
            self.closers.append(_CLOSERS[char])
        self.out.append(char)
        self.last = char
        return index + 1

    def _shape(self, end: int | None, mismatch: int | None, *, complete: bool) -> Shape:
        filled = self.filled if mismatch is not None else [*self.filled, self.holds]
        return Shape(end, tuple(self.commas), tuple(filled), mismatch, complete,
                     "".join(self.out))


def _string_end(body: str, opening: int) -> int | None:
    """Where the string opening at ``opening`` closes (None: the text ends first)."""
    quote = body[opening]
    index = opening + 1
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            return index
        index += 1
    return None


def _comment_end(body: str, index: int) -> int | None:
    """Where the comment starting at ``index`` ends (None: no comment starts there)."""
    if body.startswith(("//", "#"), index):
        newline = body.find("\n", index)
        return len(body) if newline < 0 else newline
    if body.startswith("/*", index):
        close = body.find("*/", index + 2)
        return len(body) if close < 0 else close + 2
    return None


def _json_escaped(inner: str) -> str:
    """The inside of a string, in either quote, as the inside of a JSON string: ``"``
    escaped, and Python's escapes that JSON lacks written as JSON's (``\\'`` is a plain
    quote, ``\\xNN`` is ``\\u00NN``); the others (``\\n``, ``\\\\``, ``\\uNNNN`` …)
    are the same in both."""
    out: list[str] = []
    index = 0
    while index < len(inner):
        char = inner[index]
        if char != "\\":
            out.append('\\"' if char == '"' else char)
            index += 1
            continue
        following = inner[index + 1:index + 2]
        if following == "'":
            out.append("'")
            index += 2
        elif following == "x" and _HEX.fullmatch(inner[index + 2:index + 4]):
            out.append("\\u00" + inner[index + 2:index + 4])
            index += 4
        else:
            out.append(char + following)
            index += 2
    return "".join(out)
