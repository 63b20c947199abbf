"""The review spreadsheet: written for an annotator to open in Excel or WPS, read back
cell by cell.

One row per sampled example: what was asked and answered, the judge's score and
reason, then the reviewer's columns: Self-Instruct's three questions (y / n), a
``verdict`` (keep / drop / edit), the ``edited_output`` for ``edit`` and a ``comment``.
The reviewer's cells carry drop-down lists. Reading it back checks every cell and stops
at the first bad one with ``review.xlsx:Sheet1!F7: what was expected``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.runs.scores import QUESTIONS, Review, ReviewVerdict

# openpyxl (about 0.2 s to import) is imported by the functions that read or write a
# workbook, not with this module, which every ``selfinstruct`` command loads.
if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

SHEET = "Sheet1"
SHOWN = ("id", "picked", "instruction", "input", "output", "score", "reason")
ANSWERS = (*QUESTIONS, "verdict", "edited_output", "comment")
COLUMNS = (*SHOWN, *ANSWERS)
_WIDTHS = {"id": 16, "picked": 8, "instruction": 45, "input": 35, "output": 60, "score": 7,
           "reason": 40, "verdict": 10, "edited_output": 50, "comment": 30}
_YES = {"y", "yes", "true", "1", "是", "对"}
_NO = {"n", "no", "false", "0", "否", "不"}
_VERDICTS: dict[str, ReviewVerdict] = {"keep": "keep", "drop": "drop", "edit": "edit",
                                       "保留": "keep", "删除": "drop", "修改": "edit"}
_HELP = {
    "en": [
        "How to review",
        "Each row of Sheet1 is one training example. Read the instruction, the input and "
        "the output, then fill in the yellow columns.",
        "valid_instruction: y if the instruction is a clear, doable task, else n.",
        "appropriate_input: y if the input suits the instruction (or none is needed), else n.",
        "correct_output: y if the output is a correct and acceptable answer, else n.",
        "verdict: keep, drop (leave it out of the training data) or edit.",
        "edited_output: for edit, the output as it should be. comment: anything else.",
        "Leave a row's yellow cells empty to skip it. Do not change the id column.",
    ],
    "zh": [
        "审核说明",
        "Sheet1 的每一行是一条训练样本。读指令、输入和输出，然后填写黄色的列。",
        "valid_instruction：指令是清楚、可完成的任务填 y，否则填 n。",
        "appropriate_input：输入与指令相符（或本来就不需要输入）填 y，否则填 n。",
        "correct_output：输出正确、可以接受填 y，否则填 n。",
        "verdict：keep（保留）、drop（从训练数据中删除）或 edit（修改）。",
        "edited_output：选 edit 时写出修改后的输出。comment：其他意见。",
        "不审核的行，黄色格子留空即可。不要修改 id 列。",
    ],
}


@dataclass(frozen=True)
class SheetRow:
    """One example as the sheet shows it."""

    id: str
    picked: str
    instruction: str
    input: str
    output: str
    score: float | None
    reason: str


def write_sheet(path: Path, rows: Sequence[SheetRow], language: Language) -> None:
    """Write the review workbook (replacing ``path``)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.title = SHEET
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row.id, row.picked, row.instruction, row.input, row.output, row.score,
                      row.reason, *([None] * len(ANSWERS))])
    _style(sheet, len(rows))
    guide = book.create_sheet("help")
    for line in _HELP[language]:
        guide.append([line])
    guide.column_dimensions["A"].width = 100
    guide["A1"].font = Font(bold=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        book.save(path)
    except OSError as err:
        raise UserError(f"{path}: cannot write the review sheet ({err.strerror})") from None


def _style(sheet: Worksheet, count: int) -> None:
    """Bold header, wrapped text, the reviewer's columns yellow with drop-down lists."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    sheet.freeze_panes = "A2"
    yellow = PatternFill("solid", fgColor="FFF2CC")
    last = count + 1
    for number, name in enumerate(COLUMNS, start=1):
        letter = get_column_letter(number)
        sheet.column_dimensions[letter].width = _WIDTHS.get(name, 18)
        sheet.cell(1, number).font = Font(bold=True)
        for row in range(1, last + 1):
            cell = sheet.cell(row, number)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if name in ANSWERS:
                cell.fill = yellow
    choices = {name: '"y,n"' for name in QUESTIONS} | {"verdict": '"keep,drop,edit"'}
    for name, formula in choices.items():
        letter = get_column_letter(COLUMNS.index(name) + 1)
        check = DataValidation(type="list", formula1=formula, allow_blank=True)
        check.add(f"{letter}2:{letter}{max(last, 2)}")
        sheet.add_data_validation(check)


def read_sheet(path: Path, known: set[str]) -> list[Review]:
    """The reviews in a filled-in sheet; rows left blank are skipped, a bad cell stops it."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError):
        raise UserError(f"{path}: not an .xlsx workbook (save it as Excel .xlsx)") from None
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        where = f"{path}:{sheet.title}"
        columns = _columns(where, next(rows, ()))
        reviews: list[Review] = []
        seen: set[str] = set()
        for number, row in enumerate(rows, start=2):
            cells = {name: _Cell(_text(row[index]) if index < len(row) else "",
                                 f"{get_column_letter(index + 1)}{number}")
                     for name, index in columns.items()}
            review = _review(where, cells, known, seen)
            if review is not None:
                reviews.append(review)
        return reviews
    finally:
        book.close()


@dataclass(frozen=True)
class _Cell:
    """A cell's text and where it is (``F7``), for the error that names it."""

    text: str
    at: str


def _columns(where: str, header: Sequence[Any]) -> dict[str, int]:
    """Where each needed column is (reviewers may move columns about)."""
    names = {_text(value).lower(): index for index, value in enumerate(header)}
    for name in ("id", "picked", *ANSWERS):
        if name not in names:
            raise UserError(f"{where}: no {name!r} column in the first row (columns: "
                            f"{', '.join(COLUMNS)})")
    return {name: names[name] for name in ("id", "picked", *ANSWERS)}


def _review(where: str, cells: dict[str, _Cell], known: set[str],
            seen: set[str]) -> Review | None:
    """One row's review; None for a row whose reviewer cells are all empty."""
    if not any(cells[name].text for name in ANSWERS):
        return None
    key = cells["id"].text
    if key not in known:
        raise UserError(f"{where}!{cells['id'].at}: unknown id {key!r}; the id column must "
                        "stay as written")
    if key in seen:
        raise UserError(f"{where}!{cells['id'].at}: id {key!r} is reviewed twice")
    seen.add(key)
    answers = {name: _yes_no(where, cells[name]) for name in QUESTIONS}
    verdict = _VERDICTS.get(cells["verdict"].text.lower())
    if verdict is None:
        raise UserError(f"{where}!{cells['verdict'].at}: expected keep/drop/edit")
    edited = cells["edited_output"]
    if verdict == "edit" and not edited.text:
        raise UserError(f"{where}!{edited.at}: the verdict is edit; write the corrected "
                        "output here")
    if verdict != "edit" and edited.text:
        raise UserError(f"{where}!{edited.at}: an edited output is only used with verdict "
                        f"edit (this row says {verdict})")
    return Review(key, verdict, edited_output=edited.text, comment=cells["comment"].text,
                  picked=cells["picked"].text or "sample", **answers)


def _yes_no(where: str, cell: _Cell) -> bool | None:
    value = cell.text.lower()
    if not value:
        return None
    if value in _YES or value in _NO:
        return value in _YES
    raise UserError(f"{where}!{cell.at}: expected y/n")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
