"""The review round trip: a stratified sample out to xlsx, edited with openpyxl as an
annotator would, read back (every cell checked), and applied by export."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.review_sheet import COLUMNS
from selfinstruct.runs.scores import Review, Score, read_reviews
from selfinstruct.stages.review import (
    ReviewData,
    ReviewSettings,
    allocate,
    draw,
    import_review,
    write_review_sheet,
)
from tests.scripted_run import scored_run

runner = CliRunner()
COLUMN = {name: openpyxl.utils.get_column_letter(i + 1) for i, name in enumerate(COLUMNS)}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return scored_run(tmp_path_factory.mktemp("review"))


def fresh(run: Path, tmp_path: Path) -> Path:
    """A copy of the scored run this test may write into."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def data(overall: dict[str, float | None]) -> ReviewData:
    examples = [Answered(key, f"do {key}", "", "out") for key in overall]
    scores = {k: Score(k, v, {}, "r", 1, "m") for k, v in overall.items() if v is not None}
    return ReviewData(Path("."), examples, scores, {}, "en")


def test_allocate_is_proportional_and_exact():
    assert allocate({"1": 10, "3": 30, "5": 60}, 10) == {"1": 1, "3": 3, "5": 6}
    assert sum(allocate({"a": 1, "b": 1, "c": 1}, 2).values()) == 2
    assert allocate({"a": 2, "b": 3}, 50) == {"a": 2, "b": 3}
    assert allocate({"a": 0}, 5) == {"a": 0}


def test_draw_stratifies_adds_the_lowest_and_is_seeded():
    overall = {f"x{i}": float(1 + i % 5) for i in range(50)} | {"u1": None, "u2": None}
    drawn = draw(data(overall), ReviewSettings(sample=10, seed=7, lowest=3))
    sampled = [r for r in drawn.rows if r.picked == "sample"]
    assert len(sampled) == 10 and drawn.bands == {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2}
    lowest = [r for r in drawn.rows if r.picked == "lowest"]
    assert len(lowest) == 3 and all(r.score == 1.0 for r in lowest)
    assert not {r.id for r in lowest} & {r.id for r in sampled}
    assert draw(data(overall), ReviewSettings(sample=10, seed=7, lowest=3)) == drawn
    assert draw(data(overall), ReviewSettings(sample=10, seed=8, lowest=3)) != drawn


def test_draw_skips_examples_reviewed_before():
    reviewed = data({"a": 5.0, "b": 4.0, "c": 3.0})
    reviewed.reviews["a"] = Review("a", "keep")
    assert {r.id for r in draw(reviewed, ReviewSettings(sample=5)).rows} == {"b", "c"}


def annotate(path: Path, rows: dict[int, dict[str, str]]) -> None:
    """Fill in cells as a reviewer would in Excel: {sheet row: {column: value}}."""
    book = openpyxl.load_workbook(path)
    sheet = book["Sheet1"]
    for row, values in rows.items():
        for name, value in values.items():
            sheet[f"{COLUMN[name]}{row}"] = value
    book.save(path)


def sheet_ids(path: Path) -> list[str]:
    sheet = openpyxl.load_workbook(path)["Sheet1"]
    return [sheet[f"A{row}"].value for row in range(2, sheet.max_row + 1)]


def test_the_sheet_round_trips_and_export_applies_it(run, tmp_path):
    run = fresh(run, tmp_path)
    result = runner.invoke(cli.app, ["review", str(run), "--sample", "6", "--seed", "3",
                                     "--lowest", "2", "-o", str(tmp_path / "review.xlsx")])
    assert result.exit_code == 0, result.output
    sheet = tmp_path / "review.xlsx"
    header = [c.value for c in openpyxl.load_workbook(sheet)["Sheet1"][1]]
    assert header == list(COLUMNS)
    ids = sheet_ids(sheet)
    assert len(ids) == 8
    annotate(sheet, {
        2: {"valid_instruction": "y", "appropriate_input": "y", "correct_output": "y",
            "verdict": "keep"},
        3: {"valid_instruction": "y", "appropriate_input": "n", "correct_output": "n",
            "verdict": "drop", "comment": "wrong"},
        4: {"valid_instruction": "Y", "appropriate_input": "y", "correct_output": "n",
            "verdict": "edit", "edited_output": "The corrected answer."},
    })
    imported = runner.invoke(cli.app, ["review", str(run), "--import", str(sheet)])
    assert imported.exit_code == 0, imported.output
    assert "3 examples reviewed (keep 1, drop 1, edit 1)" in imported.output
    reviews = read_reviews(run / "review.jsonl")
    assert [reviews[i].verdict for i in ids[:3]] == ["keep", "drop", "edit"]
    assert reviews[ids[1]].answers() == {"valid_instruction": True, "appropriate_input": False,
                                         "correct_output": False}
    assert reviews[ids[1]].comment == "wrong"
    assert reviews[ids[2]].edited_output == "The corrected answer."

    exported = runner.invoke(cli.app, ["export", str(run), "-f", "alpaca"])
    assert exported.exit_code == 0, exported.output
    assert "review.jsonl: 1 dropped, 1 edited" in exported.output
    records = json.loads((run / "export" / "alpaca.json").read_text(encoding="utf-8"))
    outputs = [r["output"] for r in records]
    assert "The corrected answer." in outputs
    instances = [json.loads(line) for line in (run / "instances.jsonl").read_text().splitlines()]
    assert len(records) == sum(len(t["instances"]) for t in instances) - 1


@pytest.mark.parametrize(
    ("cells", "where", "message"),
    [
        ({"verdict": "maybe"}, "verdict", "expected keep/drop/edit"),
        ({"valid_instruction": "y"}, "verdict", "expected keep/drop/edit"),
        ({"verdict": "keep", "correct_output": "sort of"}, "correct_output", "expected y/n"),
        ({"verdict": "edit"}, "edited_output", "the verdict is edit; write the corrected"),
        ({"verdict": "drop", "edited_output": "x"}, "edited_output",
         "an edited output is only used"),
        ({"verdict": "keep", "id": "nope"}, "id", "unknown id 'nope'"),
    ],
)
def test_a_bad_cell_is_named_and_nothing_is_written(run, tmp_path, cells, where, message):
    run = fresh(run, tmp_path)
    sheet = tmp_path / "review.xlsx"
    write_review_sheet(run, sheet, ReviewSettings(sample=5))
    annotate(sheet, {2: {"verdict": "keep"}, 7: {}, 6: cells})
    result = runner.invoke(cli.app, ["review", str(run), "--import", str(sheet)])
    assert result.exit_code == 2
    assert f"{sheet}:Sheet1!{COLUMN[where]}6: {message}" in result.output
    assert "Traceback" not in result.output
    assert not (run / "review.jsonl").exists()


def test_a_second_round_merges_and_draws_new_examples(run, tmp_path):
    run = fresh(run, tmp_path)
    first = tmp_path / "one.xlsx"
    write_review_sheet(run, first, ReviewSettings(sample=4, seed=1))
    annotate(first, {row: {"verdict": "keep"} for row in range(2, 6)})
    import_review(run, first)
    second = tmp_path / "two.xlsx"
    write_review_sheet(run, second, ReviewSettings(sample=4, seed=1))
    assert not set(sheet_ids(first)) & set(sheet_ids(second))
    annotate(second, {2: {"verdict": "drop"}})
    done = import_review(run, second)
    assert (done.reviewed, done.total_reviews) == (1, 5)


def test_an_existing_sheet_is_not_overwritten(run, tmp_path):
    run = fresh(run, tmp_path)
    sheet = tmp_path / "review.xlsx"
    write_review_sheet(run, sheet, ReviewSettings(sample=2))
    with pytest.raises(UserError, match="may hold a reviewer's work"):
        write_review_sheet(run, sheet, ReviewSettings(sample=2))
    write_review_sheet(run, sheet, ReviewSettings(sample=3), force=True)
    assert len(sheet_ids(sheet)) == 3
    dry = runner.invoke(cli.app, ["review", str(run), "--sample", "2", "-o",
                                  str(tmp_path / "dry.xlsx"), "--dry-run"])
    assert dry.exit_code == 0 and "would write 2 examples" in dry.output
    assert not (tmp_path / "dry.xlsx").exists()


def test_not_a_workbook(run, tmp_path):
    bad = tmp_path / "review.xlsx"
    bad.write_text("id,verdict\n")
    result = runner.invoke(cli.app, ["review", str(run), "--import", str(bad)])
    assert result.exit_code == 2 and "not an .xlsx workbook" in result.output
