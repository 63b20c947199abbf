"""Export formats and the LLaMA-Factory dataset_info.json entry."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.stages.export import (
    TrainingExample,
    dataset_info_entry,
    export_run,
    to_records,
)
from tests.helpers import make_run

EXAMPLES = [
    TrainingExample("Translate to French.", "Good morning", "Bonjour"),
    TrainingExample("写一句关于春天的诗。", "", "春风又绿江南岸。"),
]


def test_alpaca_records():
    assert to_records(EXAMPLES, "alpaca") == [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"instruction": "写一句关于春天的诗。", "input": "", "output": "春风又绿江南岸。"},
    ]


def test_sharegpt_records_join_instruction_and_input():
    """One newline, as LLaMA-Factory's Alpaca converter joins prompt and query."""
    assert to_records(EXAMPLES, "sharegpt")[0] == {
        "conversations": [
            {"from": "human", "value": "Translate to French.\nGood morning"},
            {"from": "gpt", "value": "Bonjour"},
        ]
    }
    second = to_records(EXAMPLES, "sharegpt")[1]
    assert second["conversations"][0]["value"] == "写一句关于春天的诗。"


def test_messages_records():
    assert to_records(EXAMPLES, "messages")[1] == {
        "messages": [
            {"role": "user", "content": "写一句关于春天的诗。"},
            {"role": "assistant", "content": "春风又绿江南岸。"},
        ]
    }


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_dataset_info_columns_exist_in_records(fmt):
    entry = dataset_info_entry(fmt, "x.json")
    record = to_records(EXAMPLES, fmt)[0]
    for column in entry["columns"].values():
        assert column in record
    if fmt != "alpaca":
        turns = record[entry["columns"]["messages"]]
        tags = entry["tags"]
        assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]]
        assert all(tags["content_tag"] in t for t in turns)


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_export_run_writes_file_and_dataset_info(tmp_path, fmt):
    run = make_run(tmp_path)
    result = export_run(run, fmt)
    assert result.count == 2
    text = result.path.read_text(encoding="utf-8")
    records = ([json.loads(x) for x in text.splitlines()] if fmt == "messages"
               else json.loads(text))
    assert records == to_records(
        [TrainingExample("Add the numbers.", "2 and 3", "5"),
         TrainingExample("Add the numbers.", "1 and 1", "2")], fmt)
    info = json.loads(result.dataset_info.read_text())
    assert info[f"my_run_{fmt}"]["file_name"] == result.path.name
    assert (result.dataset_info.parent / info[f"my_run_{fmt}"]["file_name"]).exists()


def test_export_merges_dataset_info_and_includes_seeds(tmp_path):
    run = make_run(tmp_path)
    export_run(run, "alpaca")
    result = export_run(run, "messages", include_seeds=True)
    info = json.loads(result.dataset_info.read_text())
    assert set(info) == {"my_run_alpaca", "my_run_messages"}
    assert result.count == 3
    first = json.loads(result.path.read_text().splitlines()[0])
    assert first["messages"][0]["content"] == "Name a fruit."


def test_alpaca_style_pool_exports_without_instances(tmp_path):
    run = make_run(tmp_path, instances=False)
    pool = [
        {"id": "g0", "instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"id": "g1", "instruction": "Translate to French.", "input": " Good morning ",
         "output": "Bonjour"},
        {"id": "g2", "instruction": "Name a colour."},  # no output: nothing to train on
    ]
    (run / "instructions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    result = export_run(run, "alpaca")
    assert result.count == 2
    assert json.loads(result.path.read_text(encoding="utf-8")) == [
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    ]


def test_nothing_to_export_is_a_clear_error(tmp_path):
    run = make_run(tmp_path, instances=False)
    with pytest.raises(UserError, match="nothing to export yet; run selfinstruct instances"):
        export_run(run, "alpaca")
    with pytest.raises(UserError, match="not a run directory"):
        export_run(tmp_path, "alpaca")


def test_a_review_drop_is_not_counted_as_left_out_for_an_empty_answer(tmp_path):
    run = make_run(tmp_path)
    (run / "review.jsonl").write_text(json.dumps({"id": "gen_000000#0", "verdict": "drop"})
                                      + "\n", encoding="utf-8")
    result = export_run(run, "alpaca")
    assert (result.count, result.curated.dropped_in_review, result.skipped) == (1, 1, 0)
    output = CliRunner().invoke(cli.app, ["export", str(run)]).output
    assert "exported 1 examples" in output and "left out" not in output


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages", "text"])
def test_think_drop_leaves_no_trace_in_any_field(fmt):
    """From a reason trace or a distilled answer that kept its <think> tags inline."""
    from selfinstruct.runs.pairs import TrainingExample
    from selfinstruct.stages.export import to_records

    examples = [TrainingExample("Add 2 and 2.", "", "4", "two plus two is four"),
                TrainingExample("Add 3 and 3.", "", "<think>three and three</think>\n\n6")]
    records = to_records(examples, fmt, "drop")  # type: ignore[arg-type]
    text = json.dumps(records, ensure_ascii=False)
    assert "two plus two" not in text and "three and three" not in text
    assert "think>" not in text and "reasoning" not in text
    answers = json.dumps(records[1], ensure_ascii=False)
    assert '"6"' in answers
