"""Which rows a playground run sends."""

from __future__ import annotations

import dataclasses

import pytest

from selfinstruct.errors import UserError
from selfinstruct.runs.rows import Row
from selfinstruct.stages.distill import DistillSettings, select
from selfinstruct.ui.picker import MAX_ROWS, pick_rows

SETTINGS = DistillSettings(user_template="t.txt")  # type: ignore[arg-type]


def table(*ids: str) -> list[tuple[str, Row]]:
    return [(key, Row(f"line {n}", {"n": n})) for n, key in enumerate(ids)]


ROWS = table(*(f"row{n}" for n in range(10)))


def picked(spec: str, rows=ROWS, seed: int = 0) -> list[str]:
    return [key for key, _ in pick_rows(rows, spec, seed, SETTINGS)]


def test_ids_in_the_order_given_each_once():
    assert picked("row3, row0,row3") == ["row3", "row0"]


def test_a_range_by_ids_or_positions_is_inclusive():
    assert picked("row2..row4") == ["row2", "row3", "row4"]
    assert picked("7..9,row0") == ["row7", "row8", "row9", "row0"]


@pytest.mark.parametrize("seed", [0, 3])
def test_a_number_picks_the_rows_distill_sample_picks(seed):
    expected = select(ROWS, dataclasses.replace(SETTINGS, sample=4, seed=seed))
    assert picked("4", seed=seed) == [key for key, _ in expected]
    assert len(picked("4", seed=seed)) == 4


def test_an_id_that_is_a_number_is_an_id():
    rows = table("10", "20", "5")
    assert picked("5", rows) == ["5"]


@pytest.mark.parametrize(("spec", "words"), [
    ("", "pick rows"),
    ("row99", "no row 'row99'"),
    ("row4..row2", "runs backwards"),
    ("0", "at least one row"),
    (str(MAX_ROWS + 1), f"at most {MAX_ROWS}"),
])
def test_a_bad_pick_says_what_to_write(spec, words):
    with pytest.raises(UserError, match="pick rows") as caught:
        picked(spec)
    assert words in str(caught.value)
