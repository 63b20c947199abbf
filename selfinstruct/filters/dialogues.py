"""Filters for multi-turn dialogues: each a named pure function returning a reason or None.

A conversation is worth training on when it is whole (no turn cut by the token limit,
none empty), shaped like a chat (user first, then user and assistant taking turns, the
assistant last), long enough to be multi-turn, not going round in circles (two turns of
one speaker nearly the same, by the exact ROUGE-L of the pool filter), still about its
topic (optional) and in the language asked for. ``unparseable`` (no conversation in the
answer at all) is the reader's verdict, given before these run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from selfinstruct.filters.instructions import Rejection
from selfinstruct.language import Language, detect_language
from selfinstruct.similarity.index import SimilarityIndex
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.text.dialogues import Turn

__all__ = ["DIALOGUE_FILTERS", "Dialogue", "DialogueFilterSettings", "check_dialogue",
           "drifted", "empty_turn", "exchanges", "repeated_turn", "too_few_turns",
           "truncated", "wrong_language", "wrong_roles"]

#: Letters a turn needs before its language is judged ("OK" is no language).
LANGUAGE_MIN_LETTERS = 10


@dataclass(frozen=True)
class DialogueFilterSettings:
    """Bounds for the dialogue filters (checked where the stage's settings are)."""

    min_turns: int = 2
    #: A turn whose ROUGE-L to an earlier turn of the same speaker is above this repeats it.
    max_turn_similarity: float = 0.7
    #: With a value, an exchange sharing less than this share of the topic's words drifted.
    drift_floor: float | None = None
    language: Language | None = None


@dataclass(frozen=True)
class Dialogue:
    """What the filters look at: the topic, the turns, and whether any was cut short."""

    topic: str
    turns: Sequence[Turn]
    #: Why each answer that made the turns stopped (one for a script, one a turn for
    #: self-chat); ``length`` means it was cut by the token limit.
    finish_reasons: Sequence[str | None] = ()


DialogueFilter = Callable[[Dialogue, DialogueFilterSettings], "str | None"]


def exchanges(turns: Sequence[Turn]) -> int:
    """How many user turns were answered: the length of a conversation in exchanges."""
    return sum(1 for before, after in pairwise(turns)
               if before.role == "user" and after.role == "assistant")


def truncated(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """A conversation whose answer (or one of whose turns) was cut by the token limit."""
    if "length" in dialogue.finish_reasons:
        return "an answer was cut by the token limit (finish_reason=length); raise --max-tokens"
    return None


def empty_turn(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """A turn with nothing in it teaches the model to say nothing."""
    for number, turn in enumerate(dialogue.turns, start=1):
        if not turn.content.strip():
            return f"turn {number} ({turn.role}) is empty"
    return None


def wrong_roles(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """User first, then user and assistant in turn, the assistant last: what a chat
    template renders and a trainer masks correctly."""
    turns = dialogue.turns
    for number, turn in enumerate(turns, start=1):
        expected = "user" if number % 2 else "assistant"
        if turn.role != expected:
            return f"turn {number} is {turn.role!r}, expected {expected!r}"
    if turns and turns[-1].role != "assistant":
        return f"the conversation ends with a {turns[-1].role} turn nobody answered"
    return None


def too_few_turns(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """Fewer exchanges than ``--min-turns``: not the multi-turn data asked for."""
    count = exchanges(dialogue.turns)
    if count < settings.min_turns:
        return f"{count} exchanges, fewer than --min-turns {settings.min_turns}"
    return None


def repeated_turn(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """A speaker saying nearly what they said before: the conversation is looping."""
    indexes: dict[str, SimilarityIndex] = {}
    numbers: dict[str, list[int]] = {}
    for number, turn in enumerate(dialogue.turns, start=1):
        index = indexes.setdefault(turn.role, SimilarityIndex("multilingual"))
        hit = index.first_above(turn.content, settings.max_turn_similarity)
        if hit is not None:
            score, earlier = hit
            return (f"turn {number} ({turn.role}) repeats turn {numbers[turn.role][earlier]} "
                    f"(ROUGE-L {score:.2f} > {settings.max_turn_similarity:g})")
        index.add(turn.content)
        numbers.setdefault(turn.role, []).append(number)
    return None


def drifted(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """An exchange (a user turn and its answer) sharing less than ``drift_floor`` of the
    topic's distinct words: the conversation wandered off. Measured per exchange, since
    a follow-up like "and an example?" is on topic only with its answer."""
    if settings.drift_floor is None:
        return None
    topic = set(tokenize(dialogue.topic, "multilingual"))
    if not topic:
        return None
    turns = dialogue.turns
    for number in range(0, len(turns) - 1, 2):
        words = set(tokenize(f"{turns[number].content}\n{turns[number + 1].content}",
                             "multilingual"))
        share = len(topic & words) / len(topic)
        if share < settings.drift_floor:
            return (f"exchange {number // 2 + 1} shares {share:.2f} of the topic's words, "
                    f"below --drift-floor {settings.drift_floor:g}")
    return None


def wrong_language(dialogue: Dialogue, settings: DialogueFilterSettings) -> str | None:
    """A turn in another language than asked for (an English answer to a Chinese user);
    turns too short to tell (a few letters) pass."""
    if settings.language is None:
        return None
    for number, turn in enumerate(dialogue.turns, start=1):
        if settings.language == "en" and turn.content.isascii():
            continue  # no ideograph in it: English to detect_language, and fast to tell
        if sum(1 for char in turn.content if char.isalpha()) < LANGUAGE_MIN_LETTERS:
            continue
        found = detect_language([turn.content])
        if found != settings.language:
            return f"turn {number} ({turn.role}) is in {found}, not {settings.language}"
    return None


DIALOGUE_FILTERS: tuple[DialogueFilter, ...] = (
    truncated,
    empty_turn,
    wrong_roles,
    too_few_turns,
    repeated_turn,
    drifted,
    wrong_language,
)


def check_dialogue(dialogue: Dialogue, settings: DialogueFilterSettings) -> Rejection | None:
    """The first filter that rejects ``dialogue`` (its name and why), else None."""
    for check in DIALOGUE_FILTERS:
        reason = check(dialogue, settings)
        if reason is not None:
            return Rejection(check.__name__, reason)
    return None
