"""Answers as models really write them, each a fixture in tests/fixtures/answers/ with
the records and rejections the distill answer parser must give for it.

A fixture: ``answer`` (the raw text), ``parse`` (``mode`` and, as distill's flags, ``map``,
``labels``, ``items``), ``finish_reason`` (default ``stop``), ``records`` (each kept
item's ``item`` and fields) and ``rejections`` (each one's ``filter``, and ``item`` /
``item_text`` where given). ``about`` says which failure it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.stages.distill import DistillSettings
from selfinstruct.text.row_answers import parse_answer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "answers"


def fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def settings_of(parse: dict) -> DistillSettings:
    """The distill settings the fixture's ``parse`` stands for."""
    return DistillSettings(user_template=Path("t.txt"), parse=parse["mode"],
                           renames=parse.get("map", {}), labels=tuple(parse.get("labels", ())),
                           items=parse.get("items"))


def test_there_are_fixtures():
    assert len(fixtures()) >= 15


@pytest.mark.parametrize("path", fixtures(), ids=lambda path: path.stem)
def test_answer_fixture(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    answer_format = settings_of(case["parse"]).answer_format()
    parsed = parse_answer(case["answer"], None, case.get("finish_reason", "stop"),
                          answer_format)
    assert [{"item": index, **fields} for index, fields in parsed.items] == case["records"]
    got = [{"filter": r.filter, "item": r.item, "item_text": r.text}
           for r in parsed.rejections]
    expected = [{"item": None, "item_text": None, **r} for r in case["rejections"]]
    assert got == expected
    assert all(r.detail for r in parsed.rejections)
