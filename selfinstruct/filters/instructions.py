"""Heuristic filters that reject candidate instructions before the similarity check.

Each filter is a small pure function ``(text, settings) -> reason | None``: the reason is
a sentence a person reads in the rejected-candidates file when tuning a prompt, and the
function's name is the filter's name there. The rules follow Alpaca's
``generate_instruction.py`` for English (length bounds, blacklist, "Write a program",
leading punctuation, non-ASCII start) and carry the same intent over to Chinese, where
lengths are counted in characters and an ASCII-only rule would reject everything.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from selfinstruct.language import (
    LENGTH_UNIT,
    ZH_SHARE_THRESHOLD,
    Language,
    is_cjk_char,
    text_length,
)

__all__ = [
    "DEFAULT_BLACKLIST",
    "DEFAULT_LENGTH_BOUNDS",
    "INSTRUCTION_FILTERS",
    "FilterSettings",
    "InstructionFilter",
    "Rejection",
    "blacklisted_word",
    "check_instruction",
    "empty",
    "leading_punctuation",
    "mostly_foreign_script",
    "non_ascii_start",
    "too_long",
    "too_short",
    "writes_a_program",
]

#: Words for tasks a text-only model cannot do (see, hear, draw, open files, browse).
#: English words match as whole words; Chinese ones as substrings, since Chinese has no
#: word boundaries to match on.
DEFAULT_BLACKLIST: dict[Language, tuple[str, ...]] = {
    "en": (
        "image",
        "images",
        "graph",
        "graphs",
        "picture",
        "pictures",
        "file",
        "files",
        "map",
        "maps",
        "draw",
        "plot",
        "go to",
        "video",
        "audio",
        "music",
        "flowchart",
        "diagram",
    ),
    "zh": (
        "图片",
        "图像",
        "照片",
        "视频",
        "音频",
        "音乐",
        "文件",
        "画出",
        "画一",
        "绘制",
        "地图",
        "图表",
        "流程图",
        "示意图",
    ),
}

#: ``(min_length, max_length)``, inclusive, in the unit of :func:`text_length`: Alpaca
#: rejects English instructions of 3 words or fewer and of more than 150 words; a Chinese
#: character carries about half an English word, hence 6 and 300 characters.
DEFAULT_LENGTH_BOUNDS: dict[Language, tuple[int, int]] = {"en": (4, 150), "zh": (6, 300)}

# The model tends to turn many tasks into "write a program that ...", and it is unclear
# whether the answer should be the program or its result, so Alpaca drops them.
_PROGRAM_PREFIXES: tuple[str, ...] = ("write a program", "编写一个程序", "写一个程序")
# A polite lead a Chinese instruction may start with before the verb.
_ZH_POLITE_PREFIXES: tuple[str, ...] = ("请你", "请")



@dataclass(frozen=True)
class FilterSettings:
    """What the filters need to know about a run.

    Lengths are inclusive bounds in the language's unit: words for English, characters
    for Chinese (see :func:`selfinstruct.language.text_length`).
    """

    language: Language
    min_length: int
    max_length: int
    blacklist: tuple[str, ...]

    @classmethod
    def for_language(
        cls, language: Language, blacklist: tuple[str, ...] | None = None
    ) -> FilterSettings:
        """The defaults for ``language``; ``blacklist`` replaces the default word list."""
        min_length, max_length = DEFAULT_LENGTH_BOUNDS[language]
        words = DEFAULT_BLACKLIST[language] if blacklist is None else tuple(blacklist)
        return cls(language, min_length, max_length, words)


@dataclass(frozen=True)
class Rejection:
    """Why a candidate was dropped: the filter's name and a human-readable detail."""

    filter: str
    detail: str


#: The shape every filter has: the reason to reject the text, or None to let it pass.
InstructionFilter = Callable[[str, FilterSettings], str | None]


def _first_char(text: str) -> str:
    """The first character that is not whitespace, or "" for blank text."""
    stripped = text.lstrip()
    return stripped[:1]


def _is_punctuation(ch: str) -> bool:
    """ASCII punctuation (Alpaca's rule, which includes symbols like ``$`` and ``<``) or any
    Unicode punctuation, so Chinese marks such as "，。：、“" count too."""
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


@lru_cache(maxsize=256)
def _word_pattern(word: str) -> re.Pattern[str]:
    """A case-insensitive whole-word pattern for a blacklist word without CJK characters.

    Boundaries are "no ASCII letter or digit next to it" rather than ``\\b`` so that an
    English word embedded in Chinese text ("打开file") still matches, while "profile"
    and "mapping" do not match "file" and "map". Inner spaces match any whitespace.
    """
    body = r"\s+".join(re.escape(part) for part in word.split())
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


def _contains_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text``: as a substring if it is CJK, else as a word."""
    if not word.strip():
        return False
    if not word.isascii() and any(is_cjk_char(ch) for ch in word):
        return word in text
    return _word_pattern(word).search(text) is not None


@lru_cache(maxsize=64)
def _any_word_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern that matches where any of the non-CJK ``words`` would (or None).

    The filter runs on every candidate and the list has ~20 words: one regex search
    instead of twenty lets the usual case (no word found) cost one call. When it
    matches, the words are tried one by one so the reported word is still the first
    of the list, as before.
    """
    bodies = [
        r"\s+".join(re.escape(part) for part in word.split())
        for word in words
        if word.strip() and (word.isascii() or not any(is_cjk_char(ch) for ch in word))
    ]
    if not bodies:
        return None
    # The boundaries of _word_pattern, factored out of the alternation.
    return re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(bodies)})(?![A-Za-z0-9])", re.IGNORECASE)


# ------------------------------------------------------------------------------ filters


def empty(text: str, settings: FilterSettings) -> str | None:
    """Reject a blank instruction: there is nothing to learn from it."""
    return "the instruction is empty" if not text.strip() else None


def too_short(text: str, settings: FilterSettings) -> str | None:
    """Reject fragments: a few words are rarely a complete, answerable task."""
    length = text_length(text, settings.language)
    if length < settings.min_length:
        unit = LENGTH_UNIT[settings.language]
        return f"{length} {unit}, fewer than the minimum of {settings.min_length}"
    return None


def too_long(text: str, settings: FilterSettings) -> str | None:
    """Reject rambling instructions: usually the model ran an input or an answer into it."""
    length = text_length(text, settings.language)
    if length > settings.max_length:
        unit = LENGTH_UNIT[settings.language]
        return f"{length} {unit}, more than the maximum of {settings.max_length}"
    return None


def blacklisted_word(text: str, settings: FilterSettings) -> str | None:
    """Reject tasks a text-only model cannot do, spotted by words like "image" or "图片"."""
    words = settings.blacklist
    quick = _any_word_pattern(words)
    if (quick is None or quick.search(text) is None) and not any(
        word in text for word in words if not word.isascii() and word.strip()
    ):
        return None
    for word in words:
        if _contains_word(text, word):
            return f"contains the blacklisted word {word!r}"
    return None


def writes_a_program(text: str, settings: FilterSettings) -> str | None:
    """Reject "Write a program ..." tasks, which the model over-produces (Alpaca's rule)."""
    start = text.lstrip().lower()
    for polite in _ZH_POLITE_PREFIXES:
        if start.startswith(polite):
            start = start[len(polite) :]
            break
    for prefix in _PROGRAM_PREFIXES:
        if start.startswith(prefix):
            return f"starts with {prefix!r}"
    return None


def leading_punctuation(text: str, settings: FilterSettings) -> str | None:
    """Reject text starting with punctuation: a fragment, a list marker or a quoted answer."""
    first = _first_char(text)
    if first and _is_punctuation(first):
        return f"starts with the punctuation {first!r}"
    return None


def non_ascii_start(text: str, settings: FilterSettings) -> str | None:
    """English only: reject text that starts with a non-ASCII character (Alpaca's rule).

    In Chinese nearly every instruction starts with a non-ASCII character, so the rule
    does not apply there.
    """
    if settings.language != "en":
        return None
    first = _first_char(text)
    if first and not first.isascii():
        return f"starts with the non-ASCII character {first!r}"
    return None


def mostly_foreign_script(text: str, settings: FilterSettings) -> str | None:
    """Reject an instruction not written in the run's language.

    Chat models sometimes answer a Chinese prompt in English and vice versa. A Chinese
    instruction must contain Chinese characters (it may also quote English); an English
    one must not be mostly Chinese characters (the share that makes text count as Chinese
    in :func:`selfinstruct.language.detect_language`).
    """
    if text.isascii():  # the usual English case, without a Python loop per character
        has_letters = any(ch.isalpha() for ch in text) if settings.language == "zh" else False
        return "contains no Chinese characters" if has_letters else None
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if is_cjk_char(ch))
    if settings.language == "zh":
        return "contains no Chinese characters" if letters and not cjk else None
    if letters and cjk / len(letters) >= ZH_SHARE_THRESHOLD:
        return f"{cjk} of its {len(letters)} letters are Chinese or Japanese characters"
    return None


#: The filters in the order they run; the first that objects names the rejection.
INSTRUCTION_FILTERS: tuple[InstructionFilter, ...] = (
    empty,
    too_short,
    too_long,
    blacklisted_word,
    writes_a_program,
    leading_punctuation,
    non_ascii_start,
    mostly_foreign_script,
)


def check_instruction(text: str, settings: FilterSettings) -> Rejection | None:
    """Run :data:`INSTRUCTION_FILTERS` in order and return the first rejection, if any."""
    for check in INSTRUCTION_FILTERS:
        reason = check(text, settings)
        if reason is not None:
            return Rejection(check.__name__, reason)
    return None
