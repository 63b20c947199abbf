"""The dialogue filters, one by one, on conversations built in memory (pure: no I/O)."""

from __future__ import annotations

import pytest

from selfinstruct.filters.dialogues import (
    Dialogue,
    DialogueFilterSettings,
    check_dialogue,
    drifted,
    empty_turn,
    exchanges,
    repeated_turn,
    too_few_turns,
    truncated,
    wrong_language,
    wrong_roles,
)
from selfinstruct.text.dialogues import Turn

SETTINGS = DialogueFilterSettings()
TOPIC = "brewing green tea at home"
GOOD = [
    Turn("user", "How hot should the water be for brewing green tea at home?"),
    Turn("assistant", "Around 75 to 80 degrees Celsius; boiling water makes green tea bitter."),
    Turn("user", "And how long do I leave the leaves in?"),
    Turn("assistant", "Two to three minutes for most green tea, less for fine Japanese kinds."),
]


def dialogue(turns: list[Turn], *finish: str | None, topic: str = TOPIC) -> Dialogue:
    return Dialogue(topic, turns, finish or ("stop",))


def test_a_good_conversation_passes_every_filter() -> None:
    settings = DialogueFilterSettings(min_turns=2, drift_floor=0.2, language="en")
    assert check_dialogue(dialogue(GOOD), settings) is None
    assert exchanges(GOOD) == 2


def test_truncated_names_the_token_limit() -> None:
    reason = truncated(dialogue(GOOD, "stop", "length"), SETTINGS)
    assert reason is not None and "finish_reason=length" in reason
    assert truncated(dialogue(GOOD, "stop", "stop"), SETTINGS) is None


def test_empty_turn_names_the_turn() -> None:
    turns = [*GOOD[:3], Turn("assistant", "  \n")]
    assert empty_turn(dialogue(turns), SETTINGS) == "turn 4 (assistant) is empty"


@pytest.mark.parametrize(("roles", "expected"), [
    (("assistant", "user"), "turn 1 is 'assistant', expected 'user'"),
    (("user", "user", "assistant"), "turn 2 is 'user', expected 'assistant'"),
    (("user", "assistant", "user"), "the conversation ends with a user turn nobody answered"),
    (("user", "narrator"), "turn 2 is 'narrator', expected 'assistant'"),
])
def test_wrong_roles(roles: tuple[str, ...], expected: str) -> None:
    turns = [Turn(role, f"message {n}") for n, role in enumerate(roles)]
    assert wrong_roles(dialogue(turns), SETTINGS) == expected


def test_too_few_turns_counts_exchanges_against_min_turns() -> None:
    settings = DialogueFilterSettings(min_turns=3)
    assert too_few_turns(dialogue(GOOD), settings) == "2 exchanges, fewer than --min-turns 3"
    assert too_few_turns(dialogue(GOOD), DialogueFilterSettings(min_turns=2)) is None


def test_repeated_turn_names_both_turns_of_the_same_speaker() -> None:
    turns = [*GOOD, Turn("user", "How hot should the water be for brewing green tea?"),
             Turn("assistant", "Use water at about 80 degrees.")]
    reason = repeated_turn(dialogue(turns), SETTINGS)
    assert reason is not None
    assert reason.startswith("turn 5 (user) repeats turn 1 (ROUGE-L ")
    assert reason.endswith("> 0.7)")


def test_repeated_turn_compares_a_speaker_only_with_itself() -> None:
    echo = [Turn("user", "Tell me about green tea."),
            Turn("assistant", "Tell me about green tea."),
            Turn("user", "What else should I know?"),
            Turn("assistant", "Green tea keeps best in a sealed tin.")]
    assert repeated_turn(dialogue(echo), SETTINGS) is None


def test_repeated_turn_threshold_is_strict() -> None:
    twice = [Turn("user", "a b c d"), Turn("assistant", "x"), Turn("user", "a b c e"),
             Turn("assistant", "y")]  # ROUGE-L of the user turns: 0.75
    assert repeated_turn(dialogue(twice), DialogueFilterSettings(max_turn_similarity=0.75)) \
        is None
    assert repeated_turn(dialogue(twice), DialogueFilterSettings(max_turn_similarity=0.74))


def test_drifted_is_off_by_default_and_names_the_exchange() -> None:
    off_topic = [*GOOD, Turn("user", "Who won the football match yesterday?"),
                 Turn("assistant", "I do not have live sports results.")]
    assert drifted(dialogue(off_topic), SETTINGS) is None
    reason = drifted(dialogue(off_topic), DialogueFilterSettings(drift_floor=0.2))
    assert reason == "exchange 3 shares 0.00 of the topic's words, below --drift-floor 0.2"


def test_wrong_language_checks_each_long_enough_turn() -> None:
    chinese = [Turn("user", "绿茶应该用多少度的水来泡比较合适呢？"),
               Turn("assistant", "Around 80 degrees Celsius is best for most green teas."),
               Turn("user", "好的"), Turn("assistant", "大约八十度的水最合适，水太烫会让茶变苦。")]
    settings = DialogueFilterSettings(language="zh")
    assert wrong_language(dialogue(chinese), settings) == "turn 2 (assistant) is in en, not zh"
    assert wrong_language(dialogue(chinese), SETTINGS) is None  # no language asked for
    fixed = [*chinese[:1], Turn("assistant", "八十度左右最合适。"), *chinese[2:]]
    assert wrong_language(dialogue(fixed), settings) is None  # "好的" is too short to judge


def test_check_dialogue_reports_the_first_filter_in_order() -> None:
    turns = [Turn("assistant", ""), Turn("user", "hi")]
    rejection = check_dialogue(dialogue(turns, "length"), SETTINGS)
    assert rejection is not None and rejection.filter == "truncated"
    rejection = check_dialogue(dialogue(turns), SETTINGS)
    assert rejection is not None
    assert (rejection.filter, rejection.detail) == ("empty_turn", "turn 1 (assistant) is empty")
