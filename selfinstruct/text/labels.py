"""The words that label the fields of a task, in every language the parsers read.

Generated tasks (``Instruction:`` / ``Input:`` / ``Output:``) and generated instances
(``Input:`` / ``Output:``, ``输入：`` / ``输出：``) are labelled with the same words, so
they live here once: a word added for a new language is read by both parsers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

INSTRUCTION, INPUT, OUTPUT = "instruction", "input", "output"

#: Label word, in lower case -> the field it names (simplified and traditional Chinese).
FIELD_OF_WORD: dict[str, str] = {
    "instruction": INSTRUCTION,
    "指令": INSTRUCTION,
    "input": INPUT,
    "输入": INPUT,
    "輸入": INPUT,
    "output": OUTPUT,
    "输出": OUTPUT,
    "輸出": OUTPUT,
}


def label_pattern(fields: Sequence[str]) -> str:
    """A regex alternation of the words that name ``fields``, longest first, so that no
    word is matched by a shorter one it starts with."""
    words = sorted((w for w, f in FIELD_OF_WORD.items() if f in fields), key=len, reverse=True)
    return "|".join(re.escape(word) for word in words)


def index_of_word(fields: Sequence[str]) -> dict[str, int]:
    """Label word -> the position of its field in ``fields``, a parser's own field order."""
    return {word: fields.index(f) for word, f in FIELD_OF_WORD.items() if f in fields}
