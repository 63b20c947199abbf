"""Any dataset in, any dataset out: every command that reads examples takes a run
directory, the directory ``score -o`` wrote, or a file, and what each writes is
something the next one takes. The AlpaGasus job (score a dataset, keep what scored at
least 4) goes through the CLI from start to end."""

from __future__ import annotations

import json
import re

import openpyxl
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.llm import use_backend
from selfinstruct.llm.base import Request
from selfinstruct.llm.fake import FakeBackend, completion
from selfinstruct.runs.dataset import read_dataset
from selfinstruct.runs.review_sheet import COLUMNS
from selfinstruct.stages.export import export_run
from selfinstruct.stages.report import build_report
from tests.helpers import make_run, read_lines, write_jsonl

runner = CliRunner()

#: What the judge gives "Say N.": N % 5 + 1, so N = 3, 4, 8, 9 score at least 4.
KEPT_AT_4 = {3, 4, 8, 9}


def overall(n: int) -> int:
    return n % 5 + 1


def judge(request: Request, number: int):
    """A verdict that depends only on the example's ``Say N.``."""
    n = int(re.search(r"Say (\d+)\.", request.prompt).group(1))
    return completion(json.dumps({"accuracy": overall(n), "overall": overall(n),
                                  "reason": f"worth {overall(n)}"}))


def invoke(*args: str) -> str:
    result = runner.invoke(cli.app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def alpaca(count: int) -> list[dict]:
    return [{"instruction": f"Say {n}.", "input": "", "output": str(n)} for n in range(count)]


def said(records: list[dict]) -> set[int]:
    """The N of every exported example, whatever its format."""
    texts = [json.dumps(record) for record in records]
    return {int(re.search(r"Say (\d+)\.", text).group(1)) for text in texts}


def test_score_a_file_then_export_keeps_exactly_what_scored_4_or_more(tmp_path):
    data = tmp_path / "data.json"
    records = alpaca(10)
    records[2]["id"] = "two"  # an id of its own, beside positions for the rest
    data.write_text(json.dumps(records), encoding="utf-8")
    scored = tmp_path / "scored"
    with use_backend(FakeBackend(judge)):
        invoke("score", data, "-o", scored)
    verdicts = {r["id"]: r["overall"] for r in read_lines(scored / "scores.jsonl")}
    assert verdicts["two"] == 3 and verdicts["row3"] == 4 and len(verdicts) == 10

    output = invoke("export", scored, "--min-score", "4")
    path = scored / "export" / "alpaca.json"
    assert "exported 4 examples" in output and "6 examples scored lower" in output
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert exported == [records[n] for n in sorted(KEPT_AT_4)]
    info = json.loads((scored / "export" / "dataset_info.json").read_text())
    assert info["scored_alpaca"]["file_name"] == "alpaca.json"
    stats = json.loads((scored / "stats.json").read_text())["export"]
    assert (stats["considered"], stats["below_min_score"], stats["kept"]) == (10, 6, 4)
    assert not (tmp_path / "export").exists()  # nothing written beside the source


def test_review_and_report_of_a_score_directory_and_export_applies_the_review(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca(10))
    scored = tmp_path / "scored"
    with use_backend(FakeBackend(judge)):
        invoke("score", data, "-o", scored)
    invoke("review", scored, "--sample", "10")
    book = openpyxl.load_workbook(scored / "review.xlsx")
    sheet = book["Sheet1"]
    column = {name: index + 1 for index, name in enumerate(COLUMNS)}
    dropped = None
    for row in range(2, sheet.max_row + 1):
        text = sheet.cell(row=row, column=column["instruction"]).value
        if text == "Say 4.":
            sheet.cell(row=row, column=column["verdict"], value="drop")
            dropped = sheet.cell(row=row, column=column["id"]).value
    book.save(scored / "review.xlsx")
    assert dropped == "row4"
    assert "1 examples reviewed" in invoke("review", scored, "--import",
                                            scored / "review.xlsx")

    exported = export_run(scored, "messages", min_score=4)
    assert said(read_lines(exported.path)) == KEPT_AT_4 - {4}
    assert exported.curated.dropped_in_review == 1 and exported.skipped == 0

    output = invoke("report", scored)
    assert "10 examples, 10 scored, 1 reviewed" in output
    assert "stages: score, export" in output
    assert (scored / "report.html").exists()


def test_export_of_a_dedup_output(tmp_path):
    records = [*alpaca(4), {"instruction": "Say 1.", "input": "", "output": "one"}]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    deduped = tmp_path / "deduped.jsonl"
    invoke("dedup", source, "-o", deduped)
    assert len(read_lines(deduped)) == 4

    output = invoke("export", deduped, "-f", "sharegpt")
    path = tmp_path / "export" / "deduped_sharegpt.json"
    assert str(path) in " ".join(output.split())
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert exported[1] == {"conversations": [{"from": "human", "value": "Say 1."},
                                             {"from": "gpt", "value": "1"}]}
    assert said(exported) == {0, 1, 2, 3}
    info = json.loads((tmp_path / "export" / "dataset_info.json").read_text())
    assert info["deduped_sharegpt"]["file_name"] == "deduped_sharegpt.json"
    assert not (tmp_path / "stats.json").exists()


def test_export_and_score_of_a_mix_of_two_formats(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"conversations": [{"from": "system", "value": "Be brief."},
                           {"from": "human", "value": f"Say {n}."},
                           {"from": "gpt", "value": str(n)}]} for n in range(5)])
    plain = write_jsonl(tmp_path / "plain.jsonl", alpaca(10)[5:])
    blend = tmp_path / "blend" / "mixed.jsonl"
    invoke("mix", "--source", f"{chat}:1", "--source", f"{plain}:1", "-n", "10", "-o", blend)

    out = tmp_path / "train.jsonl"
    invoke("export", blend, "-f", "messages", "-o", out)
    exported = read_lines(out)
    assert said(exported) == set(range(10))
    systems = [r["messages"][0] for r in exported if r["messages"][0]["role"] == "system"]
    assert systems == [{"role": "system", "content": "Be brief."}] * 5
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["mixed_messages"]["file_name"] == "train.jsonl"

    judged = tmp_path / "judged"
    with use_backend(FakeBackend(judge)):
        invoke("score", blend, "-o", judged)
    kept = export_run(judged, "alpaca", min_score=4)
    assert said(json.loads(kept.path.read_text(encoding="utf-8"))) == KEPT_AT_4


def test_dedup_and_mix_take_an_export(tmp_path):
    run = make_run(tmp_path)
    exported = export_run(run, "alpaca").path
    invoke("dedup", exported, "-o", tmp_path / "d.jsonl")
    invoke("mix", "--source", f"{exported}:1", "-n", "2", "-o", tmp_path / "m.jsonl")
    assert [r["output"] for r in read_lines(tmp_path / "d.jsonl")] == ["5"]  # one instruction
    assert sorted(r["output"] for r in read_lines(tmp_path / "m.jsonl")) == ["2", "5"]


def test_a_file_and_its_run_give_the_same_ids(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    traces = [{"id": "p1", "sample": sample, "instruction": "Say 1.", "input": "",
               "reasoning": "think", "answer": "1"} for sample in (0, 1)]
    write_jsonl(run / "reasoning.jsonl", traces)
    from_run = read_dataset(run).examples
    from_file = read_dataset(run / "reasoning.jsonl").examples
    assert [e.key for e in from_file] == [e.key for e in from_run] == ["p1/0", "p1/1"]
    assert from_file == from_run

    distilled = tmp_path / "distilled"
    distilled.mkdir()
    write_jsonl(distilled / "distilled.jsonl", [
        {"id": "r0", "item": item, "sample": 0, "city": "Paris", "prompt": "About Paris?",
         "response": "raw", "reasoning": "", "answer": f"fact {item}"} for item in (0, 1)])
    from_run = read_dataset(distilled).examples
    from_file = read_dataset(distilled / "distilled.jsonl").examples
    assert [e.key for e in from_file] == [e.key for e in from_run] == ["r0/0/0", "r0/1/0"]
    assert [(e.instruction, e.output) for e in from_file] == [
        ("About Paris?", "fact 0"), ("About Paris?", "fact 1")]


def test_export_of_a_file_maps_fields_and_refuses_what_a_file_cannot_do(tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", [{"q": "Say 7.", "a": "7"}])
    result = export_run(data, "alpaca", fields={"instruction": "q", "output": "a"})
    assert json.loads(result.path.read_text()) == [
        {"instruction": "Say 7.", "input": "", "output": "7"}]
    with pytest.raises(UserError, match=r"a file holds no scores for --min-score; run "
                                        r"selfinstruct score .*qa.jsonl -o DIR"):
        export_run(data, "alpaca", fields={"instruction": "q", "output": "a"}, min_score=4)
    with pytest.raises(UserError, match="is the data being exported"):
        export_run(data, "messages", data, fields={"instruction": "q", "output": "a"})
    with pytest.raises(UserError, match="--include-seeds adds a run's seed tasks"):
        export_run(data, "alpaca", include_seeds=True)
    assert read_lines(data) == [{"q": "Say 7.", "a": "7"}]


def test_a_score_directory_whose_data_is_gone_says_so(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca(2))
    scored = tmp_path / "scored"
    with use_backend(FakeBackend(judge)):
        invoke("score", data, "-o", scored)
    data.unlink()
    result = runner.invoke(cli.app, ["export", str(scored)])
    assert result.exit_code == 2
    assert "the data that" in result.output and "put it back" in result.output


def test_report_of_a_file_and_review_of_one_says_to_score_it_first(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", [
        {"instruction": f"Explain {topic}.", "output": "Because."}
        for topic in ("tides", "rainbows", "volcanoes")])
    output = invoke("report", data)
    page = tmp_path / "data_report.html"
    assert f"wrote {page}" in " ".join(output.split())
    assert "3 instructions, 3 examples, 0 scored, 0 reviewed; stages: none" in output
    figures = build_report(data, tmp_path / "again.html").figures
    assert {"lengths", "first_words"} <= set(figures) and "funnel" not in figures
    assert page.exists()

    result = runner.invoke(cli.app, ["review", str(data)])
    assert result.exit_code == 2
    assert f"score a file first: selfinstruct score {data} -o DIR" in " ".join(
        result.output.split())


def test_score_a_run_into_another_directory_then_export_that_directory(tmp_path):
    run = make_run(tmp_path)
    judged = tmp_path / "judged"

    def by_input(request: Request, number: int):
        value = 5 if "2 and 3" in request.prompt else 2
        return completion(json.dumps({"overall": value, "reason": "r"}))

    with use_backend(FakeBackend(by_input)):
        invoke("score", run, "-o", judged)
    result = export_run(judged, "alpaca", min_score=4)
    assert json.loads(result.path.read_text()) == [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}]
    assert result.path == judged / "export" / "alpaca.json"
    assert json.loads((judged / "stats.json").read_text())["export"]["kept"] == 1
    assert not (run / "stats.json").exists() and not (run / "export").exists()
