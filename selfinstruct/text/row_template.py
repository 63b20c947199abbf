"""A user's prompt template for one row of a table, checked before anything is sent.

The template is ``str.format`` text, as people write it by hand: ``{column}`` is the
row's value in that column, ``{row}`` the whole row as JSON, ``{questions}`` a numbered
list of question templates filled from the same row. Placeholders are checked against
the table's columns when the template is loaded, so a typo stops the run with the file
and line before the first request, not as 300,000 failed rows. A column name is looked
up whole (``{a.b}`` is the column ``a.b``, not an attribute), and a value shows as
text: empty as nothing, lists and objects as JSON.

Pure: the caller reads the files and gives their text.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfinstruct.errors import UserError

#: Placeholders that are not columns.
ROW = "row"
QUESTIONS = "questions"

#: A compiled template: literal text, then a placeholder name or None, repeated.
Pieces = tuple[tuple[str, "str | None"], ...]


@dataclass(frozen=True)
class LineTemplate:
    """One checked template text (a whole prompt, or one question line)."""

    pieces: Pieces

    @property
    def fields(self) -> frozenset[str]:
        """The placeholders it uses."""
        return frozenset(name for _, name in self.pieces if name is not None)

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by ``values[name]``."""
        return "".join(text + (values[name] if name is not None else "")
                       for text, name in self.pieces)


@dataclass(frozen=True)
class RowTemplate:
    """The user template and the question templates, ready to render any row."""

    prompt: LineTemplate
    questions: tuple[LineTemplate, ...] = ()

    def render(self, row: Mapping[str, Any]) -> str:
        """The prompt for ``row``."""
        values = {name: cell_text(row.get(name)) for name in self.prompt.fields
                  if name not in (ROW, QUESTIONS)}
        if ROW in self.prompt.fields:
            values[ROW] = json.dumps(dict(row), ensure_ascii=False)
        if QUESTIONS in self.prompt.fields:
            values[QUESTIONS] = self.render_questions(row)
        return self.prompt.fill(values)

    def render_questions(self, row: Mapping[str, Any]) -> str:
        """The question list for ``row``: ``1. …`` one a line."""
        lines = []
        for number, question in enumerate(self.questions, start=1):
            values = {name: cell_text(row.get(name)) for name in question.fields}
            lines.append(f"{number}. {question.fill(values)}")
        return "\n".join(lines)


def cell_text(value: Any) -> str:
    """How a cell shows in a prompt: text as is, empty as nothing, numbers as written,
    true/false, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def compile_template(text: str, source: str, columns: Sequence[str], input_name: str,
                     *, specials: frozenset[str] = frozenset(), first_line: int = 1
                     ) -> LineTemplate:
    """Check every placeholder of ``text`` against ``columns`` (and ``specials``).

    An unknown one is ``SOURCE:LINE: {name} is not a column of INPUT (columns: …)``; a
    format spec or conversion is refused, since a cell is text and ``{price:.2f}`` would
    fail on every row.
    """
    pieces: list[tuple[str, str | None]] = []
    for offset, line in enumerate(text.splitlines(keepends=True)):
        where = f"{source}:{first_line + offset}"
        for literal, name, spec, conversion in _parse(line, where):
            pieces.append((literal, None))
            if name is None:
                continue
            _check_name(name, where, columns, input_name, specials)
            if spec or conversion:
                raise UserError(f"{where}: {{{name}{'!' + conversion if conversion else ''}"
                                f"{':' + spec if spec else ''}}}: format specs and "
                                "conversions are not supported; write {" + name + "}")
            pieces.append(("", name))
    return LineTemplate(_merge(pieces))


def compile_row_template(text: str, source: str, columns: Sequence[str], input_name: str,
                         questions: Sequence[tuple[int, str]] = (),
                         questions_source: str = "") -> RowTemplate:
    """The user template and the question lines (``(line number, text)``), both checked.

    ``{questions}`` without question lines, or question lines the template never shows,
    is an error too: either way the user's questions would silently not be asked.
    """
    prompt = compile_template(text, source, columns, input_name,
                              specials=frozenset({ROW, QUESTIONS}))
    if QUESTIONS in prompt.fields and not questions:
        raise UserError(f"{source}: the template uses {{{QUESTIONS}}}; give the question "
                        "templates with --questions FILE (one a line)")
    if questions and QUESTIONS not in prompt.fields:
        raise UserError(f"{source}: --questions was given but the template has no "
                        f"{{{QUESTIONS}}} placeholder to put them in")
    compiled = tuple(
        compile_template(line, questions_source, columns, input_name, first_line=number)
        for number, line in questions
    )
    return RowTemplate(prompt, compiled)


def _parse(line: str, where: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(line))
    except ValueError as err:
        raise UserError(f"{where}: bad placeholder syntax ({err}); write {{{{ and }}}} for "
                        "literal braces") from None


def _check_name(name: str, where: str, columns: Sequence[str], input_name: str,
                specials: frozenset[str]) -> None:
    if name in specials or name in columns:
        return
    shown = ", ".join(columns) if len(columns) <= 30 else ", ".join(columns[:30]) + ", …"
    hint = ""
    if not name.strip() or any(char in name for char in "\"':, "):
        hint = "; for literal braces, as in a JSON example, write {{ and }}"
    raise UserError(f"{where}: {{{name}}} is not a column of {input_name} (columns: "
                    f"{shown}){hint}")


def _merge(pieces: list[tuple[str, str | None]]) -> Pieces:
    """Join neighbouring literal texts, so rendering is one join over few pieces."""
    merged: list[tuple[str, str | None]] = []
    for text, name in pieces:
        if merged and merged[-1][1] is None:
            merged[-1] = (merged[-1][0] + text, name)
        else:
            merged.append((text, name))
    return tuple(merged)
