"""Seed loading: every accepted format, and a clear file:line error for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.errors import UserError
from selfinstruct.language import detect_language
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.runs.seeds import Instance, bundled_seed_path, load_seeds
from tests.helpers import open_bootstrap


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_self_instruct_format(tmp_path):
    line = {
        "id": "seed_task_0",
        "name": "breakfast_suggestion",
        "instruction": "Is there anything I can eat for a breakfast that doesn't include eggs?",
        "instances": [{"input": "", "output": "Yes, oatmeal."}],
        "is_classification": False,
    }
    tasks = load_seeds(write(tmp_path, "s.jsonl", json.dumps(line) + "\n"))
    assert len(tasks) == 1
    assert tasks[0].id == "seed_task_0"
    assert tasks[0].name == "breakfast_suggestion"
    assert tasks[0].instances == (Instance("", "Yes, oatmeal."),)
    assert tasks[0].is_classification is False


def test_alpaca_json_array(tmp_path):
    data = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Sleep."},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    ]
    tasks = load_seeds(write(tmp_path, "a.json", json.dumps(data, indent=2)))
    assert [t.instruction for t in tasks] == [d["instruction"] for d in data]
    assert tasks[1].instances == (Instance("Good morning", "Bonjour"),)
    assert tasks[1].is_classification is None


def test_alpaca_jsonl_and_plain_text(tmp_path):
    jsonl = '{"instruction": "Name a color.", "output": "Blue"}\n\n{"instruction": "Add 2+2."}\n'
    assert [t.instruction for t in load_seeds(write(tmp_path, "a.jsonl", jsonl))] == [
        "Name a color.", "Add 2+2."
    ]
    text = "Explain gravity to a child.\n\n  用一句话介绍长城。  \n"
    tasks = load_seeds(write(tmp_path, "a.txt", text))
    assert [t.instruction for t in tasks] == ["Explain gravity to a child.", "用一句话介绍长城。"]
    assert tasks[0].instances == ()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "empty.jsonl: the seed file is empty"),
        ("blank.jsonl", "\n  \n", "blank.jsonl: the seed file is empty"),
        ("bad.jsonl", '{"instruction": "ok"}\n{"instruction": \n', "bad.jsonl:2: not valid JSON"),
        ("shape.jsonl", '{"instruction": "ok"}\n[1, 2]\n',
         "shape.jsonl:2: expected a JSON object, got an array"),
        ("missing.jsonl", '{"instruction": "a b"}\n{"input": "x"}\n',
         "missing.jsonl:2: missing 'instruction'"),
        ("emptyinst.jsonl", '{"instruction": "  "}\n', "emptyinst.jsonl:1: empty 'instruction'"),
        ("type.jsonl", '{"instruction": 5}\n', "type.jsonl:1: 'instruction' must be a string"),
        ("dup.jsonl", '{"id": "a", "instruction": "x y"}\n{"id": "a", "instruction": "z w"}\n',
         "dup.jsonl:2: duplicate id 'a' (first used on line 1)"),
        ("inst.jsonl", '{"instruction": "x", "instances": {"input": ""}}\n',
         "inst.jsonl:1: 'instances' must be a list"),
        ("arr.json", '[\n  {"instruction": "a"},\n  "just text"\n]\n',
         "arr.json:3: expected a JSON object, got a string"),
        ("arr2.json", '[\n  {"instruction": "a"}\n  {"instruction": "b"}\n]\n',
         "arr2.json:3: not valid JSON (expected ',' or ']' after an array element)"),
        ("cls.jsonl", '{"instruction": "a", "is_classification": "yes"}\n',
         "cls.jsonl:1: 'is_classification' must be true or false"),
    ],
)
def test_bad_seed_files_name_file_and_line(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(UserError) as err:
        load_seeds(path)
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message in str(err.value)


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "latin1.txt", "first line\nsecond caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt:2: not valid UTF-8"):
        load_seeds(path)


def test_huge_line_is_rejected(tmp_path):
    path = write(tmp_path, "huge.jsonl", json.dumps({"instruction": "x" * 1_100_000}) + "\n")
    with pytest.raises(UserError, match=r"huge.jsonl:1: line is longer than"):
        load_seeds(path)


def test_a_whitespace_output_is_no_demo(tmp_path):
    """Alpaca prompts show seeds with their output; an output of spaces is none."""
    records = [
        {"id": "a", "instruction": "Name a color.", "output": "Blue"},
        {"id": "b", "instruction": "Add two and two.", "input": " 2+2 ", "output": "   "},
        {"id": "c", "instruction": "Say hello in French.", "output": "Bonjour"},
    ]
    path = write(tmp_path, "s.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    assert load_seeds(path)[1].instances == (Instance("2+2", ""),)
    backend = FakeBackend(lambda request, number: pytest.fail("nothing is sent"))
    bootstrap = open_bootstrap(tmp_path / "run", path, backend, n=1, prompt_style="alpaca")
    assert [seed.id for seed in bootstrap.sampler.demos] == ["a", "c"]
    blank = write(tmp_path, "blank.jsonl", json.dumps(records[1]) + "\n")
    with pytest.raises(UserError, match="none of these seeds has one"):
        open_bootstrap(tmp_path / "run2", blank, backend, n=1, prompt_style="alpaca")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"nope\.jsonl: no such file"):
        load_seeds(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_bundled_seed_sets_are_valid_and_large(language):
    tasks = load_seeds(bundled_seed_path(language))
    assert len(tasks) >= (150 if language == "en" else 80)
    assert detect_language(t.instruction for t in tasks) == language
    assert all(t.instances and t.instances[0].output for t in tasks)
    share_classification = sum(bool(t.is_classification) for t in tasks) / len(tasks)
    share_input = sum(bool(t.instances[0].input) for t in tasks) / len(tasks)
    assert 0.10 <= share_classification <= 0.25
    assert 0.30 <= share_input <= 0.55
