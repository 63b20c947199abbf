"""Which rows a playground run sends: ids, a range, or N at random.

People try a prompt on the rows they know are hard (by id), on a stretch of the file,
or on a few they did not choose (to see what the bulk run will meet). The ids are
distill's own (the id column, else ``row0`` …), so a row picked here is the record
``distill`` writes under that id; N at random picks exactly the rows ``distill --sample
N --seed S`` would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from selfinstruct.errors import UserError
from selfinstruct.runs.rows import Row
from selfinstruct.stages.distill import DistillSettings, select

#: The most rows one run sends: a playground is for looking, ``distill`` is for bulk.
MAX_ROWS = 100

#: What the picker takes, for messages and the page.
HELP = ("ids (row0,row2), a range (row3..row7, or 3..7 by position from 0), or a number N: "
        "N rows at random by the seed")


def pick_rows(rows: Sequence[tuple[str, Row]], spec: str, seed: int,
              settings: DistillSettings) -> list[tuple[str, Row]]:
    """The rows ``spec`` names, in the order given (each once).

    A lone number that is not an id means N rows at random, chosen as ``--sample N
    --seed SEED`` chooses them (``settings`` is the distill run's); an id always wins, so
    a table whose ids are numbers is picked by id.
    """
    text = spec.strip()
    if not text:
        raise UserError(f"pick rows: {HELP}")
    ids = {key: number for number, (key, _) in enumerate(rows)}
    if text.isdigit() and text not in ids:
        count = int(text)
        _check_count(count)
        return select(rows, dataclasses.replace(settings, limit=None, sample=count,
                                                seed=seed))
    positions: list[int] = []
    for token in (part.strip() for part in text.replace("\n", ",").split(",")):
        if token:
            positions += _token(token, ids, len(rows))
    chosen = list(dict.fromkeys(positions))
    _check_count(len(chosen))
    return [rows[number] for number in chosen]


def _token(token: str, ids: dict[str, int], size: int) -> list[int]:
    """The positions one comma-separated part names: an id, or ``A..B`` (inclusive)."""
    if token in ids:
        return [ids[token]]
    if ".." in token:
        first, last = (_position(end.strip(), ids, size) for end in token.split("..", 1))
        if last < first:
            raise UserError(f"pick rows: {token!r} runs backwards; write the first row first")
        return list(range(first, last + 1))
    return [_position(token, ids, size)]


def _position(end: str, ids: dict[str, int], size: int) -> int:
    """One end of a range (or a lone token): an id, else a position in the file."""
    if end in ids:
        return ids[end]
    if end.isdigit() and int(end) < size:
        return int(end)
    sample = ", ".join(list(ids)[:3]) + (" …" if len(ids) > 3 else "")
    raise UserError(f"pick rows: no row {end!r} (ids: {sample}; positions 0 to {size - 1}); "
                    f"{HELP}")


def _check_count(count: int) -> None:
    if count < 1:
        raise UserError(f"pick rows: pick at least one row; {HELP}")
    if count > MAX_ROWS:
        raise UserError(f"pick rows: {count} rows; the playground sends at most {MAX_ROWS} "
                        "at once (the saved distill command runs them all)")
