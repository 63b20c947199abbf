"""What one answer becomes in classify and instances, decided without any I/O: the pure
``decide_*`` functions on answer texts real models write."""

from __future__ import annotations

import pytest

from selfinstruct.filters.instances import InstanceRejection, InstanceSettings
from selfinstruct.llm.fake import completion
from selfinstruct.stages.classify import decide_classification
from selfinstruct.stages.instances import InstanceOptions, decide_instances
from selfinstruct.text.instances import Example

TASK = {"id": "gen_000007", "instruction": "Judge the sentiment of a product review."}
EN = InstanceSettings.for_language("en")
ZH = InstanceSettings.for_language("zh")


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("text", "structured", "is_classification", "parsed_as"),
    [
        ("Yes", False, True, "text"),
        ("No, it is not a classification task.", False, False, "text"),
        # A completion model answers, then goes on to invent the next task and its answer.
        ("**Answer:** Yes\n\nTask: Write a poem.\nIs it classification? No", False, True, "text"),
        ("<think>Finitely many labels? Positive or negative.</think>\nYes", False, True, "text"),
        ('{"answer": "No"}', True, False, "json"),
        ('{"answer": "是"}', True, True, "json"),
        # Asked for JSON, answered in words: still read, as text.
        ("Yes, it has two labels.", True, True, "text"),
        ("是", False, True, "text"),
        ("不是分类任务。", False, False, "text"),
    ],
)
def test_a_readable_classify_answer_is_recorded_as_read(text, structured, is_classification,
                                                        parsed_as):
    decision = decide_classification(TASK, completion(text), structured)
    assert decision.record == {"id": "gen_000007", "is_classification": is_classification,
                               "answer": text, "parsed": True}
    assert decision.parsed_as == parsed_as
    assert decision.rejection is None


@pytest.mark.parametrize(("text", "structured"),
                         [("Maybe, it depends on the review.", False), ("  ", True)])
def test_an_unreadable_classify_answer_is_input_first_and_rejected(text, structured):
    decision = decide_classification(TASK, completion(text), structured)
    assert decision.record == {"id": "gen_000007", "is_classification": False,
                               "answer": text.strip(), "parsed": False}
    assert decision.parsed_as == "text"
    assert decision.rejection == ("unparsed_answer", text.strip())


def test_a_long_classify_answer_is_cut_in_the_record_and_the_rejection():
    text = "Let me think about this. " * 40
    decision = decide_classification(TASK, completion(text), False)
    assert decision.record["answer"] == text.strip()[:200]
    assert decision.rejection == ("unparsed_answer", text.strip()[:500])


# -------------------------------------------------------------------------- instances


def decide(text: str, *, is_classification: bool = False, settings: InstanceSettings = EN,
           finish_reason: str = "stop", **options: object):
    return decide_instances(TASK, completion(text, finish_reason=finish_reason),
                            is_classification, InstanceOptions(**options), settings)


def test_input_first_text_keeps_the_good_examples_and_says_why_the_rest_went():
    decision = decide("Here are some examples.\n\n"
                      "Example 1\nInput: 2, 3\nOutput: 5\n"
                      "Example 2\nInput: 10, 4\nOutput: 14\n"
                      "Example 3\nInput: 10, 4\nOutput: 14\n"
                      "Example 4\nInput: 1, 1\nOutput:\n")
    assert decision.record == {
        "id": "gen_000007", "instruction": TASK["instruction"], "is_classification": False,
        "instances": [{"input": "2, 3", "output": "5"}, {"input": "10, 4", "output": "14"}],
    }
    assert decision.rejections == (
        InstanceRejection(Example("1, 1", ""), "empty_output", "the output is empty"),
        InstanceRejection(Example("10, 4", "14"), "duplicate",
                          "the same input and output as an earlier example of this task"),
    )
    assert decision.parsed_as == "text"


def test_output_first_text_lists_labels_and_rejects_an_unlisted_one():
    decision = decide("Class labels: Positive, Negative\n"
                      "Class label: Positive\nInput: I loved every minute of it.\n"
                      "Class label: Negative\nInput: The service was slow and rude.\n"
                      "Class label: Maybe\nInput: Not sure about this one.\n",
                      is_classification=True)
    assert decision.record["labels"] == ["Positive", "Negative"]
    assert decision.record["instances"] == [
        {"input": "I loved every minute of it.", "output": "Positive"},
        {"input": "The service was slow and rude.", "output": "Negative"},
    ]
    assert decision.rejections == (InstanceRejection(
        Example("Not sure about this one.", "Maybe"), "label_not_listed",
        "the label 'Maybe' is not one of the listed labels: Positive, Negative"),)


def test_json_answers_are_read_as_json_and_labels_take_the_listed_spelling():
    plain = decide('{"examples": [{"input": "2, 3", "output": "5"},'
                   ' {"input": "7, 1", "output": "8"}]}', structured=True)
    assert plain.parsed_as == "json" and plain.rejections == ()
    assert plain.record["instances"] == [{"input": "2, 3", "output": "5"},
                                         {"input": "7, 1", "output": "8"}]
    assert "labels" not in plain.record
    labelled = decide('{"labels": ["Positive", "Negative"], "examples": ['
                      '{"label": "positive", "input": "Great food."},'
                      ' {"label": "Neutral", "input": "It was fine."}]}',
                      is_classification=True, structured=True)
    assert labelled.parsed_as == "json"
    assert labelled.record["labels"] == ["Positive", "Negative"]
    assert labelled.record["instances"] == [{"input": "Great food.", "output": "Positive"}]
    assert [r.filter for r in labelled.rejections] == ["label_not_listed"]


def test_a_text_answer_to_a_json_request_is_read_as_text():
    decision = decide("Example 1\nInput: 7, 1\nOutput: 8\n", structured=True)
    assert decision.parsed_as == "text"
    assert decision.record["instances"] == [{"input": "7, 1", "output": "8"}]


def test_json_with_two_lists_and_no_examples_key_falls_back_to_the_text_reader():
    decision = decide('{"labels":["A","B"],"items":[{"label":"A","input":"x"}]}',
                      is_classification=True, structured=True)
    assert decision.parsed_as == "text"
    assert decision.record["labels"] == []


def test_an_answer_without_examples_is_an_empty_record_and_one_rejection():
    refusal = "I'm sorry, but I can't help with that request."
    decision = decide(refusal)
    assert decision.record["instances"] == []
    assert decision.rejections == (InstanceRejection(
        Example("", refusal), "unparseable", "no example found in the answer"),)


def test_the_last_example_of_an_answer_cut_by_the_length_limit_is_dropped():
    decision = decide("Example 1\nInput: 2, 3\nOutput: 5\n"
                      "Example 2\nInput: 7, 1\nOutput: 8\n"
                      "Example 3\nInput: 6, 6\nOutput: 1", finish_reason="length")
    assert decision.record["instances"] == [{"input": "2, 3", "output": "5"},
                                            {"input": "7, 1", "output": "8"}]
    assert [(r.example, r.filter) for r in decision.rejections] == [
        (Example("6, 6", "1"), "truncated")]


def test_at_most_per_task_examples_are_kept():
    decision = decide("Example 1\nInput: a\nOutput: 1\nExample 2\nInput: b\nOutput: 2\n"
                      "Example 3\nInput: c\nOutput: 3\n", per_task=2)
    assert decision.record["instances"] == [{"input": "a", "output": "1"},
                                            {"input": "b", "output": "2"}]
    assert decision.rejections == ()


def test_chinese_answers_of_both_shapes():
    input_first = decide("示例1\n输入：今天天气很好。\n输出：积极\n"
                         "示例2\n输入：我丢了钱包。\n输出：消极\n", settings=ZH)
    assert input_first.record["instances"] == [{"input": "今天天气很好。", "output": "积极"},
                                               {"input": "我丢了钱包。", "output": "消极"}]
    output_first = decide("类别标签：积极，消极\n"
                          "类别标签：积极\n输入：这家餐厅的菜很好吃。\n"
                          "类别标签：消极\n输入：服务太慢了。\n",
                          is_classification=True, settings=ZH)
    assert output_first.record["labels"] == ["积极", "消极"]
    assert output_first.record["instances"] == [
        {"input": "这家餐厅的菜很好吃。", "output": "积极"},
        {"input": "服务太慢了。", "output": "消极"},
    ]
    assert (input_first.rejections, output_first.rejections) == ((), ())
