"""The one reader of models' JSON: what it repairs, what it refuses to guess, how it
reads an answer cut short, and that every stage's reader goes through it."""

from __future__ import annotations

import json

import json_repair
import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfinstruct.text.lenient_json import JsonRead, NotRead, find_json, json_values, load_json
from selfinstruct.text.rubric import Dimension, Scale
from selfinstruct.text.structured import read_task_list, read_yes_no
from selfinstruct.text.verdicts import Verdict, read_verdict

# ------------------------------------------------------------------------------ find_json


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('[{"q": "a"},\n {"q": "b"},\n]', [{"q": "a"}, {"q": "b"}]),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ("[{'q': 'a', 'ok': True, 'n': None, 'no': False}]",
         [{"q": "a", "ok": True, "n": None, "no": False}]),
        ('{"q": "a", # why\n "a": 1}', {"q": "a", "a": 1}),
        ('[1, /* two */ 2, // three\n 3]', [1, 2, 3]),
        ('{"url": "http://x.org/a", "path": "/*.txt"}', {"url": "http://x.org/a",
                                                          "path": "/*.txt"}),
        ("[{'q': \"don't\"}, {'q': 'a]b'}]", [{"q": "don't"}, {"q": "a]b"}]),
        ('```json\n{"a": 1,}\n', {"a": 1}),
        ('Note {this} and [that].\n{"a": 1,}', {"a": 1}),
        ("[]", []),
    ],
)
def test_repairs_that_change_nothing_the_model_meant(text, value):
    assert find_json(text) == JsonRead(value)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"q": "He said "hi" to me"}', "guessing"),
        ("{'q': 'it's'}", "guessing"),
        ('[{"q": "a"}, {{{]', "closes a bracket it does not match"),
        ('{"a": 1,,"b": 2}', "an empty item between two commas"),
        ('[1, , 2]', "an empty item between two commas"),
        ('[{"q": "a", "a" "b"}]', "guessing"),  # no colon: is "b" the value?
    ],
)
def test_what_a_repair_would_guess_is_not_read(text, detail):
    found = find_json(text)
    assert isinstance(found, NotRead) and not found.cut
    assert detail in found.detail


@pytest.mark.parametrize("text", ["no braces {at all", "{your name}", "[see above]",
                                  '"a string"', "", "Answer: 42"])
def test_prose_holds_no_json(text):
    assert find_json(text) is None


def test_nothing_inside_a_value_that_failed_is_taken_for_the_answer():
    """The bug of issue 19: the list did not decode and its first object was kept."""
    found = find_json('[{"q": "a"}, {"q": "b"]]')
    assert isinstance(found, NotRead)
    assert find_json('[{"q": "a"}, {"q": "b"]] and {"q": "c"}') == JsonRead({"q": "c"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"q": "a"}, {"q": "b', JsonRead([{"q": "a"}], '{"q": "b', True)),
        ('[{"q": "a"}, {"q": "b"}', JsonRead([{"q": "a"}, {"q": "b"}], None, True)),
        ('[{"q": "a"}, {"q": "b"},\n', JsonRead([{"q": "a"}, {"q": "b"}], None, True)),
        ('[{"q": "a"}, {"q": "b"} // the last', JsonRead([{"q": "a"}, {"q": "b"}], None, True)),
        ('["a", "b", "c', JsonRead(["a", "b"], '"c', True)),
        ("[1, 2, 3", JsonRead([1, 2], "3", True)),  # 3 may be 30: not known complete
        ('[{"q": "a", "r": [1, 2', NotRead(True, "the answer stops inside the first item "
                                          "of its JSON list")),
        ('{"q": "a", "r": "b', NotRead(True, "the answer stops inside its JSON object")),
        ("```json\n[{'q': 'a'}, {'q': 'b'}, {'q': ",
         JsonRead([{"q": "a"}, {"q": "b"}], "{'q':", True)),
    ],
)
def test_a_list_cut_short_keeps_its_complete_items(text, expected):
    assert find_json(text) == expected


items = st.lists(st.dictionaries(st.sampled_from(["q", "a", "n"]),
                                 st.none() | st.booleans() | st.integers() | st.text(),
                                 max_size=3), max_size=4)
#: Any text but what repr writes as \U........, an escape JSON has no form of.
plain = st.text(max_size=12).filter(lambda text: "\\U" not in repr(text))
python_items = st.lists(st.dictionaries(st.sampled_from(["q", "a"]),
                                        st.none() | st.booleans() | st.integers() | plain,
                                        max_size=2), max_size=4)


def check_every_prefix(text: str, value: list) -> None:
    """Wherever the answer stops, what is kept is complete items of the whole, in order,
    and the whole text reads back exactly."""
    for end in range(1, len(text)):
        found = find_json(text[:end])
        if isinstance(found, JsonRead):
            assert found.value == value[: len(found.value)]
            assert found.cut_item is None or len(found.value) < len(value)
    assert find_json(text) == JsonRead(value)


@given(items)
def test_every_prefix_of_a_json_list_keeps_only_complete_items(value):
    check_every_prefix(json.dumps(value), value)


@given(python_items)
def test_every_prefix_of_a_python_list_keeps_only_complete_items(value):
    check_every_prefix(repr(value), value)


# ------------------------------------------------------------------------- the library


@pytest.mark.parametrize(
    ("text", "reports"),
    [('[{"a": 1} {"a": 2}]', False),  # a missing comma: one reading, fixed silently
     ('{"a": 1 "b": 2}', False),
     ('{"q": "He said "hi" to me"}', True),  # where does the string end? a guess
     ('[{"q": "a", "a" "b"}]', True)],
)
def test_json_repair_reports_its_guesses(text, reports):
    """What json-repair fixes without a report is taken; what it reports is refused. A
    release that stops reporting a guess would let it through, and fails here."""
    value, log = json_repair.loads(text, logging=True)
    assert bool(log) is reports
    found = find_json(text)
    assert isinstance(found, NotRead) if reports else found == JsonRead(value)


def test_python_strings_are_read_by_the_scan_not_guessed():
    """json-repair reads ``'Paris, France'`` only by guessing where the string ends
    (it reports it); the scan knows."""
    text = "[{'city': 'Paris, France', 'note': \"it's \\x41\", 'ok': None},]"
    assert json_repair.loads("[{'city': 'Paris, France'}]", logging=True)[1]
    assert find_json(text) == JsonRead([{"city": "Paris, France", "note": "it's A",
                                         "ok": None}])


# -------------------------------------------------------------- every stage's reader


def test_json_values_yields_each_whole_value_fenced_first():
    text = 'First {"overall": 7,}. Then ```json\n{"a": 1}\n``` and [{"b": 2}, ]'
    assert list(json_values(text)) == [{"a": 1}, {"overall": 7}, {"a": 1}, [{"b": 2}]]


def test_structured_answers_read_whole():
    """instances, classify and generate's JSON mode: an item is no longer lost silently
    (the old reader cut ``["a", 'b', "c"]`` back to ``["a"]``)."""
    assert read_task_list("""{"tasks": ["Write a poem.", 'Sum two numbers.', "Plan",]}""") == [
        "Write a poem.", "Sum two numbers.", "Plan"]
    assert read_yes_no("{'answer': 'Yes'}") is True
    assert load_json('```json\n{"examples": [{"input": "a", "output": "b",},]}\n```') == {
        "examples": [{"input": "a", "output": "b"}]}
    assert load_json("Here: {'answer': 'Yes'}") is None  # prose first: not a JSON answer


@pytest.mark.parametrize(
    "text",
    ['{"accuracy": 4, "overall": 4, "reason": "ok",}',
     "{'accuracy': 4, 'overall': 4, 'reason': 'ok'}",
     '```json\n{\n  "accuracy": 4, // fine\n  "overall": 4,\n  "reason": "ok"\n}\n```'],
)
def test_score_verdicts_read_whole(text):
    dimensions = (Dimension("accuracy", "correct"),)
    assert read_verdict(text, dimensions, Scale(1, 5)) == Verdict({"accuracy": 4}, 4, "ok")
