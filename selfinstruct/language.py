"""Which language a run works in, and how long a piece of text is in that language.

Two languages are supported, English and Chinese, and they differ in the one way that
matters to the filters: English separates words with spaces, Chinese does not. So the
"length" of an instruction is a word count in English and a character count in Chinese,
and anything that splits on whitespace must first know which language it is looking at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["ZH_SHARE_THRESHOLD", "Language", "detect_language", "is_cjk_char", "text_length"]

Language = Literal["en", "zh"]
#: ``--language``: a language, or ``auto`` to decide from the data.
LanguageChoice = Literal["auto", "en", "zh"]

# Hiragana + Katakana, CJK Extension A, CJK Unified Ideographs, CJK Compatibility
# Ideographs, and the supplementary ideograph planes (Extensions B-F + compatibility
# supplement). The same ranges the multilingual ROUGE tokenizer treats as one token each.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
)

# Share of CJK characters among all letters/ideographs at which text counts as Chinese.
# Chinese text routinely embeds English names, code and units, so a majority would be
# too strict; English text almost never carries 30% ideographs.
ZH_SHARE_THRESHOLD = 0.3


def is_cjk_char(ch: str) -> bool:
    """Whether ``ch`` (one character) is a Han ideograph or kana.

    These characters are written without spaces between words, so every one of them is a
    unit of meaning of its own for length counting and tokenization.
    """
    if len(ch) != 1:
        return False
    code = ord(ch)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _count_letters(text: str) -> tuple[int, int]:
    """Return ``(cjk, letters)``: CJK characters and all letters/ideographs in ``text``.

    Digits, punctuation and spaces are left out because they say nothing about the
    language: "2023" and "?" are the same in English and Chinese.
    """
    cjk = 0
    letters = 0
    for ch in text:
        if is_cjk_char(ch):
            cjk += 1
            letters += 1
        elif ch.isalpha():
            letters += 1
    return cjk, letters


def detect_language(texts: Iterable[str]) -> Language:
    """Guess whether ``texts`` (e.g. a seed set) are Chinese or English.

    Used to pick prompts, filters and length units when the user did not say which
    language they work in. Counting over all texts together keeps one odd seed from
    deciding; with nothing to go on the answer is English, the original Self-Instruct
    setting.
    """
    cjk_total = 0
    letters_total = 0
    for text in texts:
        cjk, letters = _count_letters(text)
        cjk_total += cjk
        letters_total += letters
    if letters_total and cjk_total / letters_total >= ZH_SHARE_THRESHOLD:
        return "zh"
    return "en"


#: The unit :func:`text_length` counts in, for messages about length limits.
LENGTH_UNIT: dict[Language, str] = {"en": "words", "zh": "characters"}


def text_length(text: str, language: Language) -> int:
    """Length of ``text`` in the unit the length filters use for ``language``.

    English: words, split on whitespace (Alpaca's ``len(inst.split())``). Chinese: the
    characters that are not whitespace, because Chinese has no spaces between words, so a
    whitespace split would count a whole sentence as one "word".
    """
    if language == "zh":
        return sum(1 for ch in text if not ch.isspace())
    return len(text.split())
