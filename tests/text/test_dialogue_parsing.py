"""Reading a conversation out of a script answer: JSON in its shapes, and text."""

from __future__ import annotations

import json

from selfinstruct.text.dialogues import (
    Turn,
    end_of_chat,
    parse_dialogue,
    transcript,
)
from selfinstruct.text.schemas import dialogue_schema

TURNS = [Turn("user", "Hi, how do I boil an egg?"), Turn("assistant", "Simmer it 9 minutes.")]


def test_json_object_with_messages() -> None:
    answer = json.dumps({"messages": [t._asdict() for t in TURNS]})
    assert parse_dialogue(answer) == (TURNS, True)


def test_root_list_sharegpt_keys_fences_and_thinking() -> None:
    turns = [{"from": "human", "value": TURNS[0].content},
             {"from": "gpt", "value": TURNS[1].content}]
    answer = f"<think>plan it</think>\n```json\n{json.dumps(turns)}\n```"
    assert parse_dialogue(answer) == (TURNS, True)


def test_text_speakers_in_english_and_chinese_with_continuation_lines() -> None:
    text = ("Here is the conversation:\n\n**User:** Hi, how do I boil an egg?\n\n"
            "Assistant: Simmer it\n9 minutes.\n")
    assert parse_dialogue(text) == ([TURNS[0], Turn("assistant", "Simmer it\n9 minutes.")],
                                    False)
    chinese = "用户：鸡蛋要煮多久？\n助手：大约九分钟。"
    assert parse_dialogue(chinese).turns == [Turn("user", "鸡蛋要煮多久？"),
                                             Turn("assistant", "大约九分钟。")]


def test_no_conversation_is_none() -> None:
    assert parse_dialogue("I cannot help with that.").turns is None
    assert parse_dialogue('{"answer": 3}').turns is None


def test_a_cut_json_answer_is_repaired() -> None:
    answer = json.dumps({"messages": [t._asdict() for t in TURNS]})[:-20]
    turns = parse_dialogue(answer).turns
    assert turns is not None and turns[0] == TURNS[0] and turns[1].role == "assistant"


def test_end_of_chat_strips_the_stop_phrase() -> None:
    assert end_of_chat("Thanks, that is all. [END]") == ("Thanks, that is all.", True)
    assert end_of_chat(" One more question? ") == ("One more question?", False)


def test_transcript_names_the_speakers_in_the_language() -> None:
    assert transcript(TURNS) == "User: Hi, how do I boil an egg?\n\nAssistant: Simmer it 9 minutes."
    assert transcript(TURNS, "zh").startswith("用户: Hi")


def test_schema_is_strict_and_bounded_by_the_turns() -> None:
    schema = dialogue_schema(4)
    messages = schema.schema["properties"]["messages"]
    assert schema.name == "dialogue"
    assert (messages["minItems"], messages["maxItems"]) == (2, 8)
    assert messages["items"]["properties"]["role"]["enum"] == ["user", "assistant"]
    assert schema.schema["additionalProperties"] is False
