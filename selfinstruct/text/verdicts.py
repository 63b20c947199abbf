"""Read a judge's verdict: per-dimension scores, an overall score and a reason.

Where the backend supports structured output the answer follows :func:`verdict_schema`;
everywhere else the judge writes text, and judges answer in many shapes: a JSON object,
the same inside a fenced code block, after a ``<think>`` trace, or plain prose with
``Accuracy: 4`` / ``Overall: 4`` lines. All of them are read here. An answer with no
overall score on the scale is :class:`Unreadable`, never a score of 0: a judge that
failed to answer says nothing about the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from selfinstruct.text.lenient_json import json_values
from selfinstruct.text.rubric import Dimension, Scale
from selfinstruct.text.thinking import split_thinking

#: Keys judges use for the overall score and the reason (compared lower-cased, with
#: spaces and hyphens as underscores).
OVERALL_KEYS = ("overall", "overall_score", "overall_rating", "总分", "总体评分", "综合评分")
REASON_KEYS = ("reason", "reasoning", "rationale", "explanation", "理由", "原因")

_NUMBER = r"(\d+(?:\.\d+)?)(?:\s*/\s*\d+)?"
_SEPARATOR = r"\s*(?:score|rating|分数|评分)?\s*[*_]*\s*(?:[:：=]|\bis\b)\s*[*_]*\s*"


@dataclass(frozen=True)
class Verdict:
    """What the judge said about one record."""

    scores: dict[str, float]
    overall: float
    reason: str


@dataclass(frozen=True)
class Unreadable:
    """An answer with no usable verdict, and why (recorded as ``unparseable_verdict``)."""

    detail: str


def verdict_schema(dimensions: tuple[Dimension, ...], scale: Scale) -> dict[str, Any]:
    """The JSON schema a structured-output backend holds the judge's answer to."""
    score = {"type": "integer", "minimum": scale.low, "maximum": scale.high}
    properties: dict[str, Any] = {d.name: score for d in dimensions}
    properties["overall"] = score
    properties["reason"] = {"type": "string"}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def read_verdict(
    text: str, dimensions: tuple[Dimension, ...], scale: Scale
) -> Verdict | Unreadable:
    """The verdict in a judge's answer: JSON (bare, fenced or embedded) first, then prose."""
    answer = split_thinking(text).answer or text
    found: Verdict | Unreadable | None = None
    for obj in _json_objects(answer):
        found = _from_mapping(obj, dimensions, scale)
        if isinstance(found, Verdict):
            return found
    prose = _from_prose(answer, dimensions, scale)
    if isinstance(prose, Verdict) or found is None:
        return prose
    return found


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``text`` that reads whole, fenced blocks first; a trailing
    comma, Python quoting or a comment is read as meant (the shared lenient reader)."""
    for value in json_values(text):
        if isinstance(value, dict):
            yield value


def _from_mapping(
    obj: Mapping[str, Any], dimensions: tuple[Dimension, ...], scale: Scale
) -> Verdict | Unreadable:
    flat = {_key(k): v for k, v in obj.items()}
    nested = flat.get("scores")
    if isinstance(nested, Mapping):
        flat = {**{_key(k): v for k, v in nested.items()}, **flat}
    overall = next((flat[k] for k in OVERALL_KEYS if k in flat), None)
    if overall is None:
        return Unreadable("the JSON answer has no overall score")
    scores: dict[str, Any] = {d.name: flat[_key(d.name)] for d in dimensions
                              if _key(d.name) in flat}
    reason = next((flat[k] for k in REASON_KEYS if isinstance(flat.get(k), str)), "")
    return _checked(scores, overall, reason, scale)


def _from_prose(
    text: str, dimensions: tuple[Dimension, ...], scale: Scale
) -> Verdict | Unreadable:
    """``Accuracy: 4`` … ``Overall: 4`` … ``Reason: …`` lines; the last of each wins."""
    overall = _last_number(text, OVERALL_KEYS)
    if overall is None:
        return Unreadable(f"no JSON verdict and no 'Overall: N' line in {_excerpt(text)!r}")
    scores = {d.name: value for d in dimensions
              if (value := _last_number(text, (d.name,))) is not None}
    reason = ""
    for key in REASON_KEYS:
        for match in re.finditer(rf"(?im)^[\s*_#>-]*{re.escape(key)}[*_\s]*[:：]\s*(.+)$", text):
            reason = match[1].strip().strip("*_ ")
    return _checked(scores, overall, reason, scale)


def _last_number(text: str, names: tuple[str, ...]) -> str | None:
    value = None
    for name in names:
        label = re.escape(name).replace("_", r"[\s_-]?")
        pattern = rf"(?im)^[\s*_#>-]*{label}{_SEPARATOR}{_NUMBER}"
        for match in re.finditer(pattern, text):
            value = match[1]
    return value


def _checked(
    scores: dict[str, Any], overall: Any, reason: Any, scale: Scale
) -> Verdict | Unreadable:
    """Numbers on the scale, or why not."""
    values: dict[str, float] = {}
    for name, raw in [*scores.items(), ("overall", overall)]:
        number = _number(raw)
        if number is None:
            return Unreadable(f"{name} is {raw!r}, not a number")
        if not scale.holds(number):
            return Unreadable(f"{name} {number:g} is outside the scale {scale}")
        values[name] = number
    total = values.pop("overall")
    return Verdict(values, total, str(reason).strip())


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(rf"\s*{_NUMBER}\s*", value)
        return float(match[1]) if match else None
    return None


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
