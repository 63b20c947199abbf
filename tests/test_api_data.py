"""The library over existing data: distill, score, review / import_review, report and
mix from plain Python, on a given fake backend, with keywords named like the flags."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

import selfinstruct
from selfinstruct.llm.base import Request
from selfinstruct.llm.fake import FakeBackend, completion

VERDICT = {"accuracy": 4, "completeness": 4, "relevance": 5, "harmlessness": 5,
           "format": 3, "overall": 4, "reason": "Right, if terse."}


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """Three rows, one with an empty cell, and a template that asks for q/a pairs."""
    rows = tmp_path / "rows.csv"
    rows.write_text("city,river\n巴黎,塞纳河\nLondon,\nCairo,Nile\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("Two questions about {city} on the {river}, as JSON.\n",
                                    encoding="utf-8")
    return rows


def pairs(request: Request, number: int):
    """A fenced JSON list of two q/a pairs naming the row's city."""
    city = request.prompt.split(" about ")[1].split(" on the ")[0]
    return completion("```json\n" + json.dumps(
        [{"q": f"Where is {city}?", "a": f"{city} is a city."},
         {"q": f"Is {city} big?", "a": "Yes."}], ensure_ascii=False) + "\n```")


def test_distill_takes_the_flags_as_keywords(table: Path, tmp_path: Path):
    fake = FakeBackend(pairs)
    out = tmp_path / "out"
    stats = selfinstruct.distill(table, out, user_template=tmp_path / "t.txt",
                                 system="You write quiz questions.", fill_na="无数据",
                                 parse="json", map={"instruction": "q", "output": "a"},
                                 stop="####", extra_body={"top_k": 1}, backend=fake)
    assert (stats.total, stats.done) == (3, 3)
    records = read(out / "distilled.jsonl")
    assert len(records) == 6
    assert {r["city"] for r in records} == {"巴黎", "London", "Cairo"}
    assert {r["instruction"] for r in records if r["city"] == "巴黎"} == {
        "Where is 巴黎?", "Is 巴黎 big?"}
    sent = fake.requests
    assert {r.system for r in sent} == {"You write quiz questions."}
    assert {r.stop for r in sent} == {("####",)}
    assert "Two questions about London on the 无数据, as JSON.\n" in {r.prompt for r in sent}
    assert not fake.closed  # the caller's backend is the caller's to close


def test_distill_takes_the_settings_name_renames_as_well_as_map(table: Path, tmp_path: Path):
    out = tmp_path / "out"
    selfinstruct.distill(table, out, user_template=tmp_path / "t.txt", parse="json",
                         renames={"output": "a"}, limit=1, backend=FakeBackend(pairs))
    assert [r["output"] for r in read(out / "distilled.jsonl")] == ["巴黎 is a city.", "Yes."]


def test_distill_resumes_and_refuses_what_is_not_a_setting(table: Path, tmp_path: Path):
    out = tmp_path / "out"
    template = tmp_path / "t.txt"
    selfinstruct.distill(table, out, user_template=template, limit=2,
                         backend=FakeBackend(pairs))
    fake = FakeBackend(pairs)
    stats = asyncio.run(selfinstruct.adistill(table, out, user_template=template,
                                              backend=fake))
    assert (stats.total, stats.done_before, stats.done) == (3, 2, 3)
    assert len(fake.requests) == 1
    with pytest.raises(TypeError, match="user_templat'"):
        selfinstruct.distill(table, out, user_templat=template)
    with pytest.raises(selfinstruct.UserError, match="--thinking maybe"):
        selfinstruct.distill(table, out, user_template=template, thinking="maybe")


def test_score_then_review_then_report(tmp_path: Path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"instruction": f"Say {n}.", "input": "", "output": str(n)}
                                for n in range(6)]), encoding="utf-8")
    out = tmp_path / "scored"
    judge = FakeBackend(lambda request, number: completion(json.dumps(VERDICT)))
    stats = selfinstruct.score(data, out, scale="1-5", backend=judge)
    assert (stats.total, stats.done) == (6, 6)
    assert {r["overall"] for r in read(out / "scores.jsonl")} == {4}

    sheet, drawn = selfinstruct.review(out, sample=3, seed=1)
    assert sheet == out / "review.xlsx" and len(drawn.rows) == 3
    book = load_workbook(sheet)
    rows = book["Sheet1"]
    header = [cell.value for cell in rows[1]]
    rows.cell(row=2, column=header.index("verdict") + 1, value="drop")
    book.save(sheet)
    imported = selfinstruct.import_review(out, sheet)
    assert (imported.reviewed, imported.verdicts) == (1, {"drop": 1})

    page = selfinstruct.report(out)
    assert page.path == out / "report.html" and page.path.exists()
    assert len(page.facts.scores) == 6


def test_mix_takes_weights_as_a_mapping_or_as_flags(tmp_path: Path):
    for name, size in (("a", 30), ("b", 30)):
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"instruction": f"{name} {i}", "output": "x"}) + "\n"
            for i in range(size)), encoding="utf-8")
    mapped = selfinstruct.mix({tmp_path / "a.jsonl": 3, tmp_path / "b.jsonl": 1}, 20,
                              tmp_path / "m1.jsonl", seed=2)
    flagged = selfinstruct.mix([f"{tmp_path / 'a.jsonl'}:3", f"{tmp_path / 'b.jsonl'}:1"], 20,
                               tmp_path / "m2.jsonl", seed=2)
    for result in (mapped, flagged):
        sources = [r["instruction"][0] for r in read(result.output)]
        assert (sources.count("a"), sources.count("b")) == (15, 5)
    assert read(mapped.output) == read(flagged.output)
