"""A judge's rubric: the dimensions a record is rated on, and the scale of the ratings.

A rubric file is plain text, one dimension a line (``name: what a high score means``),
so a user writing data for summaries can swap accuracy/completeness for coverage,
concision and fluency without touching code. The names become the keys of ``scores``
in ``scores.jsonl`` and of the JSON answer the judge is asked for, so they are checked
here, once, before any request is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Keys of a verdict that are not dimensions.
RESERVED = frozenset({"overall", "reason", "scores"})

_NAME = re.compile(r"[^\W\d]\w*")
_SCALE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


class RubricError(ValueError):
    """A rubric or scale the user wrote is malformed; ``line`` is 1-based (0: no line)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Dimension:
    """One thing the judge rates: a key for the JSON answer and what it means."""

    name: str
    description: str


@dataclass(frozen=True)
class Scale:
    """Scores are numbers from ``low`` to ``high`` (inclusive); 1-5 unless told."""

    low: int = 1
    high: int = 5

    def __post_init__(self) -> None:
        if self.low >= self.high:
            raise RubricError(f"the scale {self} is empty; write LOW-HIGH with LOW < HIGH")

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` is a score on this scale."""
        return self.low <= value <= self.high

    @classmethod
    def parse(cls, text: str) -> Scale:
        """``"1-5"`` → ``Scale(1, 5)``; anything else is a :class:`RubricError`."""
        match = _SCALE.fullmatch(text)
        if match is None:
            raise RubricError(f"--scale {text!r}: expected LOW-HIGH, e.g. 1-5 or 1-10")
        return cls(int(match[1]), int(match[2]))


def parse_rubric(text: str) -> tuple[Dimension, ...]:
    """The dimensions of a rubric file's text; blank lines and ``#`` notes are skipped."""
    dimensions: list[Dimension] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, description = line.partition(":")
        if not colon:
            name, colon, description = line.partition("：")
        name = name.strip().lstrip("-* ").strip()
        if not colon or not description.strip():
            raise RubricError("expected 'name: what a high score means'", number)
        if not _NAME.fullmatch(name):
            raise RubricError(f"{name!r} is not a usable name (letters, digits and _, "
                              "starting with a letter)", number)
        if name.lower() in RESERVED:
            raise RubricError(f"{name!r} is reserved for the verdict itself", number)
        if any(d.name.lower() == name.lower() for d in dimensions):
            raise RubricError(f"{name!r} is listed twice", number)
        dimensions.append(Dimension(name, description.strip()))
    if not dimensions:
        raise RubricError("no dimensions (one 'name: description' a line)")
    return tuple(dimensions)


def describe(dimensions: tuple[Dimension, ...]) -> str:
    """The dimensions as the judge's prompt lists them."""
    return "\n".join(f"- {d.name}: {d.description}" for d in dimensions)


def answer_format(dimensions: tuple[Dimension, ...], scale: Scale) -> str:
    """The one-line JSON shape the judge is asked to answer with (also what the schema
    enforces where the backend supports structured output)."""
    slot = f"<{scale.low}-{scale.high}>"
    fields = [f'"{d.name}": {slot}' for d in dimensions]
    fields += [f'"overall": {slot}', '"reason": "<one sentence>"']
    return "{" + ", ".join(fields) + "}"
