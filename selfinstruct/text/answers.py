"""Compare a final answer with a reference answer, for rejection sampling.

Three ways to agree, tried in order: the same text after normalising whitespace and
case; the same number (``1,000``, ``1000.0`` and ``1e3`` agree; so do ``50%`` and
``0.5`` only if written the same way, since a percent is ambiguous); and the same
content of the last ``\\boxed{…}``, which maths-tuned models use to mark the result.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_FRACTION = re.compile(r"^([-+]?\d+)\s*/\s*(\d+)$")
_LATEX_FRACTION = re.compile(r"^\\[dt]?frac\{([-+]?\d+)\}\{(\d+)\}$")
_ANSWER_PREFIX = re.compile(
    r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:：]?\s*|^(?:答案|最终答案)\s*(?:是|为)?\s*[:：]?\s*",
    re.IGNORECASE,
)
_TRAILING = " \t\n.。!！"


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` (nested braces allowed), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    begin = start + len("\\boxed{")
    for position in range(begin, len(text)):
        char = text[position]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return text[begin:position].strip()
            depth -= 1
    return None


def as_number(text: str) -> Fraction | None:
    """The exact value of a plain, comma-grouped, decimal, scientific or fraction number."""
    candidate = text.strip().strip("$").strip().rstrip(_TRAILING)
    for pattern in (_FRACTION, _LATEX_FRACTION):
        match = pattern.match(candidate)
        if match:
            return Fraction(int(match.group(1)), int(match.group(2)) or 1)
    if not candidate or not _NUMBER.match(candidate) or not any(c.isdigit() for c in candidate):
        return None
    try:
        return Fraction(candidate.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def normalise(text: str) -> str:
    """Lower-case, single-spaced, without an "Answer:" prefix or trailing full stop."""
    text = _ANSWER_PREFIX.sub("", text.strip())
    return " ".join(text.split()).lower().rstrip(_TRAILING)


def matches_reference(answer: str, reference: str) -> bool:
    """Whether ``answer`` agrees with ``reference`` by text, number or ``\\boxed{}``."""
    candidates = [answer]
    boxed = last_boxed(answer)
    if boxed is not None:
        candidates.insert(0, boxed)
    expected = last_boxed(reference) or reference
    for candidate in candidates:
        if normalise(candidate) == normalise(expected):
            return True
        got, want = as_number(normalise(candidate)), as_number(normalise(expected))
        if got is not None and got == want:
            return True
    return False
