"""Reading prompts for ``reason`` from every supported shape."""

from __future__ import annotations

import json

import pytest

from selfinstruct.errors import UserError
from selfinstruct.runs.inputs import PromptRecord, load_prompts


def test_alpaca_jsonl_with_reference(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "Add", "input": "2 3", "output": "5"}) + "\n"
                    + json.dumps({"id": "x", "instruction": "Sub", "output": 1}) + "\n")
    assert load_prompts(path, reference_field="output") == [
        PromptRecord("row0", "Add", "2 3", "5"), PromptRecord("x", "Sub", "", "1")]


def test_sharegpt_and_messages(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([
        {"conversations": [{"from": "system", "value": "be nice"},
                           {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Yo"}]},
        {"id": "m", "messages": [{"role": "user", "content": "你好吗？"}]},
    ], ensure_ascii=False), encoding="utf-8")
    assert load_prompts(path) == [PromptRecord("row0", "Hi?"), PromptRecord("m", "你好吗？")]


def test_other_field_and_csv(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Why?", "answer": "Because"}) + "\n")
    assert load_prompts(path, field="question", reference_field="answer") == [
        PromptRecord("row0", "Why?", "", "Because")]
    csv_path = tmp_path / "q.csv"
    csv_path.write_text("question,answer\n\"Two, words?\",yes\nSecond?,no\n", encoding="utf-8")
    assert load_prompts(csv_path, field="question", reference_field="answer") == [
        PromptRecord("row0", "Two, words?", "", "yes"),
        PromptRecord("row1", "Second?", "", "no")]


@pytest.mark.parametrize("encoding", ["gbk", "utf-16", "utf-8-sig"])
def test_a_csv_of_prompts_in_the_encoding_excel_saved(tmp_path, encoding):
    path = tmp_path / "q.csv"
    path.write_bytes("instruction,answer\n北京是哪国的首都?,中国\n".encode(encoding))
    assert load_prompts(path, reference_field="answer") == [
        PromptRecord("row0", "北京是哪国的首都?", "", "中国")]


def test_run_directory_prefers_instances(tmp_path):
    first = json.dumps({"id": "g0", "instruction": "A"})
    (tmp_path / "instructions.jsonl").write_text(first + "\n")
    assert load_prompts(tmp_path) == [PromptRecord("g0", "A")]
    (tmp_path / "instances.jsonl").write_text(json.dumps(
        {"id": "g0", "instruction": "A", "instances": [{"input": "1", "output": "x"},
                                                      {"input": "2", "output": "y"}]}) + "\n")
    assert load_prompts(tmp_path) == [PromptRecord("g0#0", "A", "1"),
                                      PromptRecord("g0#1", "A", "2")]


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("e.jsonl", "", {}, "e.jsonl:1: the file is empty"),
        ("f.jsonl", '{"text": "x"}\n', {}, "f.jsonl:1: no text in field 'instruction'"),
        ("g.jsonl", '{"instruction": "x"}\n', {"reference_field": "gold"},
         "g.jsonl:1: no usable 'gold'"),
        ("h.json", '[{"conversations": [{"from": "gpt", "value": "x"}]}]', {},
         "h.json:1: no human/user turn"),
        ("i.csv", "a,b\n1,2\n", {}, "i.csv:1: no 'instruction' column (columns: a, b)"),
        ("j.jsonl", '{"id": 1, "instruction": "x"}\n{"id": 1, "instruction": "y"}\n', {},
         "duplicate id '1'"),
        ("k.jsonl", "[1]\n", {}, "k.jsonl:1: expected a JSON object, got a number"),
    ],
)
def test_bad_prompt_files(tmp_path, name, content, kwargs, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError) as err:
        load_prompts(path, **kwargs)
    assert message in str(err.value)
