"""The tokenizers ROUGE-L is computed on, by name.

Apart from :mod:`selfinstruct.similarity.index` (numpy) so that code which only splits
text into tokens (the trace filter, the report's verb counts, the MinHash shingles)
does not import numpy with it: every ``selfinstruct`` command loads those modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["TOKENIZERS", "tokenize", "tokenizer_function"]


# rouge_score lowercases, turns every non-[a-z0-9] character into a space and keeps
# the [a-z0-9]+ runs; finding those runs in the lowercased text is the same thing.
_ROUGE_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Han / Hiragana / Katakana: one token per character (DESIGN.md, "Multilingual
# tokenization"). Everything else that is a Unicode letter or digit forms runs.
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_MULTILINGUAL_TOKEN_RE = re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+")


def _tokenize_rouge(text: str) -> list[str]:
    """Bit-for-bit ``rouge_score.tokenizers.DefaultTokenizer(use_stemmer=False)``."""
    return _ROUGE_TOKEN_RE.findall(text.lower())


def _tokenize_multilingual(text: str) -> list[str]:
    """Tokens that also work for Chinese and Japanese, where rouge_score sees nothing."""
    return _MULTILINGUAL_TOKEN_RE.findall(text.lower())


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "multilingual": _tokenize_multilingual,
    "rouge": _tokenize_rouge,
}


def tokenizer_function(name: str) -> Callable[[str], list[str]]:
    """Look a tokenizer up by name, failing loudly on typos rather than guessing."""
    try:
        return TOKENIZERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(TOKENIZERS))
        raise ValueError(f"unknown tokenizer {name!r}; expected one of: {known}") from None


def tokenize(text: str, tokenizer: str = "multilingual") -> list[str]:
    """Split ``text`` into the tokens ROUGE-L is computed on.

    ``"rouge"`` reproduces rouge_score exactly (ASCII letters and digits only);
    ``"multilingual"`` follows DESIGN.md and equals ``"rouge"`` on ASCII text.
    """
    return tokenizer_function(tokenizer)(text)
