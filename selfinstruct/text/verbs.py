"""What kind of task an instruction is: its leading verb and the verb's direct object.

Self-Instruct (§4) showed the diversity of its data as the root verbs of the
instructions and their direct-object nouns ("write → essay", "give → example"),
found with a constituency parser. A parser needs a model download; instructions are
nearly always imperatives, so a part-of-speech tagger and this rule come close:

* the verb is the first word (after "please" or "can you"), tagged as a base-form
  verb, or tagged as a singular noun but followed by a determiner, number or pronoun
  (a lexicon tagger reads "List five …", "Design a …", "Name three …" as nouns; at
  the start of a sentence, before "a" / "five" / "the", such words are verbs);
* its object is the head (last noun) of the first run of nouns after it, skipping
  determiners, adjectives, numbers and pronouns and stopping at anything else
  ("explain why …" has no object).

The taggers themselves live with the report; this module only reads their tags, so it
is tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence

Tagged = Sequence[tuple[str, str]]

_PREFIXES = ({"please"}, {"can", "could", "would", "will"}, {"you"}, {"please"})
_MODIFIERS = {"DT", "PDT", "PRP$", "PRP", "JJ", "JJR", "JJS", "CD", "VBG", "VBN", "RB", "POS",
              "``", "''"}
_NOUNS = {"NN", "NNS", "NNP", "NNPS"}
#: What follows a verb, never a bare singular noun, at the start of a sentence.
_DETERMINERS = {"DT", "PDT", "CD", "PRP", "PRP$"}
#: jieba's verb flags, and polite openings that are tagged as verbs but are not the task.
_ZH_VERBS = {"v", "vn", "vd", "vg"}
_ZH_OPENINGS = {"请", "请你", "帮", "帮我", "麻烦", "能否", "可以", "你", "您", "我", "想", "要"}


def verb_object(tagged: Tagged) -> tuple[str, str | None] | None:
    """``(verb, object)`` of an English instruction from its Penn Treebank tags; the
    object is None when the verb takes none ("explain why …"), and the whole is None when
    the instruction does not open with a verb (a question, a statement)."""
    words = [(word.lower(), tag) for word, tag in tagged]
    position = 0
    for options in _PREFIXES:
        if position < len(words) and words[position][0] in options:
            position += 1
    if position >= len(words) or not _is_verb(words, position):
        return None
    verb = words[position][0]
    noun: str | None = None
    for word, tag in words[position + 1:]:
        if tag in _NOUNS:
            noun = word
        elif noun is not None or tag not in _MODIFIERS:
            break
    return verb, noun


def _is_verb(words: list[tuple[str, str]], position: int) -> bool:
    tag = words[position][1]
    if tag in ("VB", "VBP"):
        return True
    following = words[position + 1][1] if position + 1 < len(words) else ""
    return tag in ("NN", "NNP") and following in _DETERMINERS


def leading_verb_zh(tagged: Tagged, window: int = 4) -> str | None:
    """The first verb among the first ``window`` words of a Chinese instruction (jieba
    flags), after polite openings such as 请 / 帮我; None when it opens otherwise."""
    seen = 0
    for word, flag in tagged:
        if word in _ZH_OPENINGS or not word.strip():
            continue
        if flag in _ZH_VERBS:
            return word
        seen += 1
        if seen >= window:
            break
    return None


def first_word(tokens: Sequence[str]) -> str | None:
    """The first word of an instruction, lower-cased (the chart of openings)."""
    for token in tokens:
        if any(ch.isalnum() for ch in token):
            return token.lower()
    return None
