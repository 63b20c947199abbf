"""The structured-output schemas and the readers of the JSON answers that follow them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfinstruct.text.instances import Example
from selfinstruct.text.schemas import (
    alpaca_schema,
    classify_schema,
    input_first_schema,
    output_first_schema,
    task_list_schema,
)
from selfinstruct.text.structured import (
    load_json_answer,
    read_alpaca_tasks,
    read_input_first,
    read_output_first,
    read_task_list,
    read_yes_no,
)
from selfinstruct.text.tasks import Candidate

# ------------------------------------------------------------------------------ schemas


def strict_objects(schema: dict) -> list[dict]:
    """Every object schema inside ``schema`` (OpenAI's strict mode checks each one)."""
    found = []
    if schema.get("type") == "object":
        found.append(schema)
        for value in schema["properties"].values():
            found += strict_objects(value)
    if schema.get("type") == "array":
        found += strict_objects(schema["items"])
    return found


ALL_SCHEMAS = [task_list_schema(), alpaca_schema(20), classify_schema("en"),
               classify_schema("zh"), input_first_schema(5), output_first_schema(5)]


@pytest.mark.parametrize("answer", ALL_SCHEMAS, ids=lambda a: a.name)
def test_schemas_keep_to_openai_strict_mode(answer):
    """Root an object; every object closed with all properties required; no string
    length limits (strict mode refuses them, and the server would fall back to text)."""
    assert answer.schema["type"] == "object"
    assert answer.name.replace("_", "").isalnum()
    for obj in strict_objects(dict(answer.schema)):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    text = json.dumps(answer.schema)
    assert "minLength" not in text and "maxLength" not in text


def test_schema_shapes():
    assert input_first_schema(3).schema["properties"]["examples"]["maxItems"] == 3
    assert alpaca_schema(20).schema["properties"]["tasks"]["maxItems"] == 20
    example = output_first_schema(4).schema["properties"]["examples"]["items"]
    assert list(example["properties"]) == ["label", "input"]  # the label is written first
    assert list(output_first_schema(4).schema["properties"]) == ["labels", "examples"]
    assert classify_schema("en").schema["properties"]["answer"]["enum"] == ["Yes", "No"]
    assert classify_schema("zh").schema["properties"]["answer"]["enum"] == ["是", "否"]


# ------------------------------------------------------------------------------ loading


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": "Yes"}', {"answer": "Yes"}),
        ('  \n{"answer": "No"}\n\n', {"answer": "No"}),
        ('```json\n{"answer": "No"}\n```', {"answer": "No"}),
        ('Here it is:\n```\n["a", "b"]\n```\nDone.', ["a", "b"]),
        ('{"answer": "Yes"} and then the model rambled on', {"answer": "Yes"}),
        ("Task 9: write {x} in JSON", None),
        ("Yes", None),
        ("", None),
        ("```python\nprint(1)\n```", None),
        ('{"a": [1, 2}', None),
        ('{"tasks": ["two\nlines"]}', {"tasks": ["two\nlines"]}),  # a raw line break
    ],
)
def test_load_json_answer(text, expected):
    assert load_json_answer(text) == expected


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        ('{"tasks": ["one", "tw', {"tasks": ["one", "tw"]}),
        ('{"tasks": ["one", ', {"tasks": ["one"]}),
        ('{"tasks": ["one"', {"tasks": ["one"]}),
        ('{"examples": [{"input": "a", "output": "b"}, {"input": "c", "out',
         {"examples": [{"input": "a", "output": "b"}, {"input": "c"}]}),
        ('{"examples": [{"input": "a", "output": "b"}, {"input": ',
         {"examples": [{"input": "a", "output": "b"}, {}]}),
        ('{"x": "ends in a backslash \\', {"x": "ends in a backslash "}),
        ('{"flag": tru', {}),
        ('{"tasks": ["a \\"quoted\\" wo', {"tasks": ['a "quoted" wo']}),
        ('{ "tasks":[ "]\n\nTask 1:\nConvert', {"tasks": ["]\n\nTask 1:\nConvert"]}),
    ],
)
def test_an_answer_cut_short_keeps_its_complete_items(cut, expected):
    assert load_json_answer(cut) == expected


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
))
def test_every_prefix_of_a_json_object_loads_or_is_none(value):
    """Whatever point generation stopped at, the loader never raises, and the whole
    text loads back exactly."""
    text = json.dumps({"v": value})
    for end in range(1, len(text)):
        load_json_answer(text[:end])
    assert load_json_answer(text) == {"v": value}


# ------------------------------------------------------------------------------ readers


def test_read_task_list():
    assert read_task_list('{"tasks": ["Write a poem.", "  Sum   two\\nnumbers. "]}') == [
        "Write a poem.", "Sum two numbers."]
    assert read_task_list('["Write a poem."]') == ["Write a poem."]
    assert read_task_list('{"new_tasks": ["Write a poem.", ""]}') == ["Write a poem."]
    assert read_task_list('{"tasks": [{"instruction": "Plan a trip."}, 3]}') == [
        "Plan a trip.", "3"]
    assert read_task_list('{"tasks": []}') == []
    numbered = ["Task 9: Write a poem.", "TASK 10 - x", "任务11：写一首诗。", "12. Sum it.",
                "**Task 13:** Plan a trip.", "3.5 is a number; round it.", "2023: a year"]
    assert read_task_list(json.dumps({"tasks": numbered})) == [
        "Write a poem.", "TASK 10 - x", "写一首诗。", "Sum it.", "Plan a trip.",
        "3.5 is a number; round it.", "2023: a year"]
    assert read_task_list('{"answer": "Yes"}') is None
    assert read_task_list("Task 9: Write a poem.\nTask 10: Sum two numbers.") is None


def test_read_alpaca_tasks():
    text = json.dumps({"tasks": [
        {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
        {"instruction": "Name a colour.", "input": "<noinput>", "output": "Blue"},
        {"instruction": "", "input": "x", "output": "y"},
        "not a task",
    ]})
    assert read_alpaca_tasks(text) == [Candidate("Add the numbers.", "2, 3", "5"),
                                       Candidate("Name a colour.", "", "Blue")]
    assert read_alpaca_tasks("1. Instruction: Add.\n1. Input:\n2\n1. Output:\n2") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": "Yes"}', True),
        ('{"answer": "No"}', False),
        ('{"answer": "是"}', True),
        ('{"answer": "否"}', False),
        ('{"answer": true}', True),
        ('{"answer": "Maybe"}', None),
        ('{"verdict": "Yes"}', None),
        ("Yes", None),
    ],
)
def test_read_yes_no(text, expected):
    assert read_yes_no(text) is expected


def test_read_input_first():
    text = json.dumps({"examples": [
        {"input": "98.6°F", "output": "37.0°C"},
        {"input": "N/A", "output": 42},
        {"input": "", "output": {"name": "Dana"}},
        {"input": "", "output": ""},
    ]})
    assert read_input_first(text) == [Example("98.6°F", "37.0°C"), Example("", "42"),
                                      Example("", '{"name": "Dana"}')]
    assert read_input_first("Example 1\nInput: 2\nOutput: 4") is None


def test_read_output_first():
    text = json.dumps({"labels": ["**Positive**", "Negative.", "Positive"], "examples": [
        {"label": "Positive", "input": "I loved it."},
        {"label": "\"Negative\"", "input": "Cold food."},
    ]})
    assert read_output_first(text) == (
        ["Positive", "Negative"],
        [Example("I loved it.", "Positive"), Example("Cold food.", "Negative")],
    )
    assert read_output_first('{"examples": [{"output": "Yes", "input": "97"}]}') == (
        [], [Example("97", "Yes")])
    assert read_output_first("Class labels: A, B\nClass label: A\nInput: x") is None
    # no "examples" key and two lists: which one holds the examples is a guess, so the
    # answer is not JSON of this shape (taking the first would read the labels as examples)
    two_lists = '{"labels":["A","B"],"items":[{"label":"A","input":"x"}]}'
    assert read_output_first(two_lists) is None
    assert read_output_first('{"items":[{"label":"A","input":"x"}]}') == (
        [], [Example("x", "A")])
