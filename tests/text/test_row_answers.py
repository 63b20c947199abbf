"""Reading a teacher's answer to one row: text, JSON (object or list, fenced or bare),
"conclusion #### reasoning"; every answer that cannot be read is a named rejection.

Answers as models really write them are fixtures in tests/fixtures/answers/, each with
the records and rejections the distill answer parser must give for it: ``answer`` (the
raw text), ``parse`` (``mode`` and, as distill's flags, ``map``, ``labels``, ``items``),
``finish_reason`` (default ``stop``), ``records`` (each kept item's ``item`` and
fields) and ``rejections`` (each one's ``filter``, and ``item`` / ``item_text`` where
given); ``about`` says which failure it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.errors import UserError
from selfinstruct.stages.distill import DistillSettings
from selfinstruct.text.row_answers import (
    AnswerFormat,
    Rejection,
    find_json,
    parse_answer,
    parse_renames,
)

JSON_QA = AnswerFormat("json", {"instruction": "q", "output": "a"})

FENCED_LIST = """<think>
先看车次信息，再逐个回答。
</think>

```json
[{"q": "G101号车次应该从哪个检票口检票?", "a": "无数据"},
 {"q": "G101号车次几点到?", "a": "08:15"},
 {"q": "G101号车次的始发站是哪里?", "a": "北京南"}]
```"""


def test_a_fenced_json_list_after_think_gives_one_item_each():
    parsed = parse_answer(FENCED_LIST, None, "stop", JSON_QA)
    assert parsed.rejections == []
    assert parsed.reasoning == "先看车次信息，再逐个回答。"
    assert parsed.items == [
        (0, {"instruction": "G101号车次应该从哪个检票口检票?", "output": "无数据"}),
        (1, {"instruction": "G101号车次几点到?", "output": "08:15"}),
        (2, {"instruction": "G101号车次的始发站是哪里?", "output": "北京南"}),
    ]


def test_prose_instead_of_json_is_unparseable():
    parsed = parse_answer("I cannot answer that from the train info.", None, "stop", JSON_QA)
    assert parsed.items == []
    assert parsed.rejections == [
        Rejection("unparseable", "no JSON object or list in the answer")]


def test_one_item_without_a_mapped_key_is_rejected_alone():
    answer = '[{"q": "a?", "a": "1"}, {"q": "b?"}, "loose", {"q": "c?", "a": 3, "n": 1}]'
    parsed = parse_answer(answer, None, "stop", JSON_QA)
    assert parsed.items == [(0, {"instruction": "a?", "output": "1"}),
                            (3, {"instruction": "c?", "output": 3, "n": 1})]
    assert [(r.filter, r.item) for r in parsed.rejections] == [
        ("missing_key", 1), ("missing_key", 2)]
    assert parsed.rejections[0].detail == "no 'a' in the item (keys: 'q')"


@pytest.mark.parametrize(
    ("text", "value"),
    [('{"label": "positive"}', {"label": "positive"}),
     ('Sure! Here it is: {"label": "x"} Hope it helps.', {"label": "x"}),
     ("```\n[1, 2]\n```", [1, 2]),
     ("```json\nnot json\n```\n[3]", [3]),
     ("no braces {at all", None),
     ('"just a string"', None),
     # a fenced block spans lines and wins over JSON in the prose before it
     ('The row was {"id": 7}.\n```json\n{\n  "label": "pos"\n}\n```', {"label": "pos"})],
)
def test_find_json(text, value):
    assert find_json(text) == value


def test_json_without_renames_keeps_the_keys_and_scalars_become_answers():
    parsed = parse_answer('{"label": "pos", "score": 0.9}', "trace", "stop", AnswerFormat("json"))
    assert parsed.items == [(None, {"label": "pos", "score": 0.9})]
    assert parsed.reasoning == "trace"
    listed = parse_answer('["a", "b"]', None, "stop", AnswerFormat("json"))
    assert listed.items == [(0, {"answer": "a"}), (1, {"answer": "b"})]
    assert parse_answer("[]", None, "stop", AnswerFormat("json")).rejections[0].filter == "empty"


@pytest.mark.parametrize(
    ("text", "finish", "fmt", "expected"),
    [("positive #### the review praises the food", "stop", AnswerFormat("separator"),
      {"answer": "positive", "rationale": "the review praises the food"}),
     # with #### as a stop word the model stops before the reasoning
     ("positive", "stop", AnswerFormat("separator", stop=("####",)),
      {"answer": "positive", "rationale": ""}),
     ("<think>hmm</think>positive || why", "stop", AnswerFormat("separator", separator="||"),
      {"answer": "positive", "rationale": "why"}),
     ("<think>hmm</think> 42 ", "stop", AnswerFormat(), {"answer": "42"}),
     # the first separator ends the answer; later ones belong to the reasoning
     ("positive #### step one #### step two", "stop", AnswerFormat("separator"),
      {"answer": "positive", "rationale": "step one #### step two"})],
)
def test_separator_and_text(text, finish, fmt, expected):
    parsed = parse_answer(text, None, finish, fmt)
    assert parsed.rejections == []
    assert parsed.items == [(None, expected)]


@pytest.mark.parametrize(
    ("text", "finish", "fmt", "name"),
    [("positive, because", "stop", AnswerFormat("separator"), "no_separator"),
     # a stop string other than the separator does not excuse a missing separator
     ("positive, because", "stop", AnswerFormat("separator", stop=("\n\n",)), "no_separator"),
     ("#### only reasoning", "stop", AnswerFormat("separator"), "empty"),
     # cut inside its only item: nothing complete to keep (a list with complete items
     # keeps them: test_a_cut_list_keeps_its_complete_items)
     ('[{"q": "a", "a":', "length", JSON_QA, "truncated"),
     ('{"q": "a", "a": "b", "n":', "length", JSON_QA, "truncated"),
     ("<think>still going", "length", AnswerFormat(), "truncated"),
     ("<think>done</think>   ", "stop", AnswerFormat(), "empty"),
     ("", "stop", AnswerFormat(), "empty")],
)
def test_rejections(text, finish, fmt, name):
    parsed = parse_answer(text, None, finish, fmt)
    assert parsed.items == []
    assert [r.filter for r in parsed.rejections] == [name]


def test_a_cut_list_keeps_its_complete_items():
    """Issue 19: an answer cut by the token limit inside its second item keeps the first
    (it was paid for) and rejects the cut one alone, with its raw text."""
    parsed = parse_answer('[{"q": "a", "a": "b"}, {"q":', None, "length", JSON_QA)
    assert parsed.items == [(0, {"instruction": "a", "output": "b"})]
    assert [(r.filter, r.item, r.text) for r in parsed.rejections] == [
        ("truncated_item", 1, '{"q":')]


def test_parse_renames():
    assert parse_renames(["instruction=q", " output = a "]) == {"instruction": "q",
                                                                "output": "a"}
    for bad in (["instruction"], ["=q"], ["a=q", "a=r"]):
        with pytest.raises(UserError, match="--map"):
            parse_renames(bad)


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "answers"


def answer_fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def settings_of(parse: dict) -> DistillSettings:
    """The distill settings a fixture's ``parse`` stands for."""
    return DistillSettings(user_template=Path("t.txt"), parse=parse["mode"],
                           renames=parse.get("map", {}), labels=tuple(parse.get("labels", ())),
                           items=parse.get("items"))


def test_there_are_answer_fixtures():
    assert len(answer_fixtures()) >= 15


@pytest.mark.parametrize("path", answer_fixtures(), ids=lambda path: path.stem)
def test_answer_fixture(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    answer_format = settings_of(case["parse"]).answer_format()
    parsed = parse_answer(case["answer"], None, case.get("finish_reason", "stop"),
                          answer_format)
    assert [{"item": index, **fields} for index, fields in parsed.items] == case["records"]
    got = [{"filter": r.filter, "item": r.item, "item_text": r.text}
           for r in parsed.rejections]
    assert got == [{"item": None, "item_text": None, **r} for r in case["rejections"]]
    assert all(r.detail for r in parsed.rejections)
