"""Reading a judge's verdict (JSON, fenced JSON, prose, unreadable) and rubric files."""

from __future__ import annotations

import pytest

from selfinstruct.text.rubric import (
    Dimension,
    RubricError,
    Scale,
    answer_format,
    parse_rubric,
)
from selfinstruct.text.verdicts import Unreadable, Verdict, read_verdict, verdict_schema

DIMENSIONS = (Dimension("accuracy", "correct"), Dimension("format", "well formed"))
SCALE = Scale(1, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"accuracy": 4, "format": 5, "overall": 4, "reason": "Correct and tidy."}',
         Verdict({"accuracy": 4, "format": 5}, 4, "Correct and tidy.")),
        ('Here is my verdict:\n```json\n{"accuracy": 3, "format": 4, "overall": 3,\n'
         ' "reason": "One slip."}\n```\nHope this helps.',
         Verdict({"accuracy": 3, "format": 4}, 3, "One slip.")),
        ('<think>The answer {is} fine, maybe 5?</think>\n{"Accuracy": "5", "Format": 4, '
         '"Overall Score": "4/5", "Reason": "Good."}',
         Verdict({"accuracy": 5, "format": 4}, 4, "Good.")),
        ('{"scores": {"accuracy": 2}, "overall": 2.5, "reason": "Half right."}',
         Verdict({"accuracy": 2}, 2.5, "Half right.")),
        ("Accuracy: 4\nFormat: 3\nOverall: 4\nReason: Right answer, untidy list.",
         Verdict({"accuracy": 4, "format": 3}, 4, "Right answer, untidy list.")),
        ("**Accuracy**: 5\n**Format score**: 2/5\n**Overall:** 3\n\nThe list is broken.",
         Verdict({"accuracy": 5, "format": 2}, 3, "")),
        ("The response is fine. Overall: 4", None),  # "Overall" must open a line
        ("Overall: 2\n... on reflection ...\nOverall: 4", Verdict({}, 4, "")),
        ("总分：3\n理由：回答基本正确。", Verdict({}, 3, "回答基本正确。")),
        # a draft verdict in the reasoning trace is not the answer
        ('<think>Draft: {"overall": 2}</think>\n{"overall": 4, "reason": "ok"}',
         Verdict({}, 4, "ok")),
    ],
)
def test_verdict_shapes(text, expected):
    verdict = read_verdict(text, DIMENSIONS, SCALE)
    if expected is None:
        assert isinstance(verdict, Unreadable)
    else:
        assert verdict == expected


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("I would rather not grade this.", "no JSON verdict and no 'Overall: N' line"),
        ('{"accuracy": 4, "reason": "no overall"}', "no overall score"),
        ('{"accuracy": 4, "overall": 9}', "overall 9 is outside the scale 1-5"),
        ('{"accuracy": 0, "overall": 3}', "accuracy 0 is outside the scale 1-5"),
        ('{"accuracy": "good", "overall": 3}', "accuracy is 'good', not a number"),
        ("Overall: 0", "overall 0 is outside the scale 1-5"),
        ("", "no JSON verdict"),
    ],
)
def test_unreadable_verdicts_say_why(text, detail):
    verdict = read_verdict(text, DIMENSIONS, SCALE)
    assert isinstance(verdict, Unreadable)
    assert detail in verdict.detail


def test_a_readable_object_wins_over_an_earlier_broken_one():
    text = 'First try: {"overall": 7}. Corrected: {"accuracy": 4, "overall": 4}'
    assert read_verdict(text, DIMENSIONS, SCALE) == Verdict({"accuracy": 4}, 4, "")


def test_other_scales():
    assert read_verdict('{"overall": 9}', DIMENSIONS, Scale(1, 10)) == Verdict({}, 9, "")
    assert isinstance(read_verdict('{"overall": 0}', DIMENSIONS, Scale(1, 10)), Unreadable)
    assert Scale.parse(" 0-10 ") == Scale(0, 10)
    for bad in ("5", "5-1", "a-b", "1-1"):
        with pytest.raises(RubricError):
            Scale.parse(bad)


def test_schema_and_answer_format_name_every_dimension():
    schema = verdict_schema(DIMENSIONS, SCALE)
    assert schema["required"] == ["accuracy", "format", "overall", "reason"]
    assert schema["properties"]["overall"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["additionalProperties"] is False
    assert answer_format(DIMENSIONS, SCALE) == (
        '{"accuracy": <1-5>, "format": <1-5>, "overall": <1-5>, "reason": "<one sentence>"}')


def test_parse_rubric():
    text = "# notes\n\ncoverage: all key points\n- concision: no padding\nfluency：读起来通顺\n"
    assert parse_rubric(text) == (Dimension("coverage", "all key points"),
                                  Dimension("concision", "no padding"),
                                  Dimension("fluency", "读起来通顺"))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("accuracy: ok\njust words\n", 2, "expected 'name: what a high score means'"),
        ("accuracy: ok\nAccuracy: again\n", 2, "listed twice"),
        ("overall: the whole\n", 1, "reserved"),
        ("2fast: no\n", 1, "not a usable name"),
        ("# only notes\n", 0, "no dimensions"),
    ],
)
def test_bad_rubrics_name_the_line(text, line, message):
    with pytest.raises(RubricError, match=message) as caught:
        parse_rubric(text)
    assert caught.value.line == line
