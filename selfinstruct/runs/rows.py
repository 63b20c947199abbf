"""Read a table of rows from whatever the user has: JSONL, a JSON list, CSV, XLSX, Parquet.

People start from a spreadsheet export or a dataset file, not from our formats. Every
reader gives the same thing: the column names in order and one dict per row, with
values a prompt can show as text and, with ``fill_na``, every empty cell filled. Each
row remembers where it came from, so an error names the file and the line or sheet row.

A row should reach the model as the user sees it in their sheet: a CSV in the encoding
Excel saved it in (GBK on Chinese Windows; found out unless ``encoding`` names it, see
:mod:`selfinstruct.text.encodings`), a spreadsheet cell as its number format shows it
(``08:15``, ``12.5%``, never Excel's serial numbers; see
:mod:`selfinstruct.text.cell_format`). Cells that show no value of their own (``#DIV/0!``
and the other errors, formulas that no spreadsheet program has calculated) are named in
one warning, or stop the read with ``strict``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import iter_objects, json_type
from selfinstruct.text.cell_format import shown
from selfinstruct.text.encodings import decode

_LOG = logging.getLogger("selfinstruct")
#: How many cells without a value one message names.
_NAMED_CELLS = 10

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".xlsx", ".xlsm", ".parquet")


@dataclass(frozen=True)
class Row:
    """One row: where it is (for messages) and its values by column."""

    where: str
    values: dict[str, Any]


@dataclass(frozen=True)
class RowTable:
    """The rows of one input file, with its columns in order (first seen first)."""

    source: Path
    columns: tuple[str, ...]
    rows: list[Row]


def read_rows(path: Path, *, sheet: str | None = None, fill_na: str | None = None,
              encoding: str | None = None, strict: bool = False) -> RowTable:
    """Every row of ``path``, by its suffix; a bad file is one error naming where.

    ``encoding`` is a CSV/TSV file's (None: found out); ``strict`` makes a spreadsheet's
    error cells and uncalculated formulas an error instead of a warning.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: cannot read {suffix or 'a file without a suffix'} as rows; "
                        f"expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if sheet is not None and suffix not in (".xlsx", ".xlsm"):
        raise UserError(f"--sheet is for spreadsheets; {path} is {suffix}")
    if encoding is not None and suffix not in (".csv", ".tsv"):
        raise UserError(f"--encoding is for CSV and TSV files; {path} is {suffix}")
    if suffix in (".csv", ".tsv"):
        columns, rows = _csv_rows(path, "\t" if suffix == ".tsv" else ",", encoding)
    elif suffix in (".xlsx", ".xlsm"):
        columns, rows = _xlsx_rows(path, sheet, strict)
    elif suffix == ".parquet":
        columns, rows = _parquet_rows(path)
    else:
        columns, rows = _json_rows(path)
    if not rows:
        raise UserError(f"{path}: no rows found")
    if fill_na is not None:
        rows = [Row(row.where, {name: fill_na if is_empty(value) else value
                                for name, value in row.values.items()}) for row in rows]
    return RowTable(path, tuple(columns), rows)


def is_empty(value: Any) -> bool:
    """An empty cell: missing, null, NaN, or only whitespace."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _complete(columns: list[str], rows: list[Row]) -> list[Row]:
    """Give every row every column (None where a row had none), in column order."""
    return [Row(row.where, {name: row.values.get(name) for name in columns}) for row in rows]


def _json_rows(path: Path) -> tuple[list[str], list[Row]]:
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for line, value in iter_objects(path):
        if not isinstance(value, dict):
            raise UserError(f"{path}:{line}: expected a JSON object (a row), got "
                            f"{json_type(value)}")
        columns.update(dict.fromkeys(value))
        rows.append(Row(f"{path}:{line}", value))
    names = list(columns)
    return names, _complete(names, rows)


def _header(path: Path, cells: Iterable[Any], where: str) -> list[str]:
    """Column names from a header row; unnamed columns are named by position, and a name
    used twice is an error (the second would overwrite the first in every row)."""
    names: list[str] = []
    for number, cell in enumerate(cells, start=1):
        name = str(cell).strip() if not is_empty(cell) else f"column{number}"
        if name in names:
            raise UserError(f"{where}: the column {name!r} appears twice in the header; "
                            "rename one")
        names.append(name)
    if not names:
        raise UserError(f"{where}: no header row (the first row names the columns)")
    return names


def _csv_rows(path: Path, delimiter: str,
              encoding: str | None) -> tuple[list[str], list[Row]]:
    decoded = decode(path.read_bytes(), encoding, str(path))
    if decoded.guessed:
        _LOG.info(f"{path}: read as {decoded.encoding} (it is not UTF-8); if the text looks "
                  "wrong, pass --encoding with the file's encoding")
    try:
        reader = csv.reader(io.StringIO(decoded.text, newline=""), delimiter=delimiter)
        header = next(reader, None)
        columns = _header(path, header or [], f"{path}:1")
        rows: list[Row] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            where = f"{path}:{reader.line_num}"
            if len(record) > len(columns):
                raise UserError(f"{where}: {len(record)} cells but {len(columns)} columns "
                                "in the header")
            rows.append(Row(where, dict(zip(columns, record, strict=False))))
    except csv.Error as err:
        raise UserError(f"{path}: not valid CSV ({err})") from None
    return columns, _complete(columns, rows)


def _xlsx_rows(path: Path, sheet: str | None,
               strict: bool) -> tuple[list[str], list[Row]]:
    book = _open_workbook(path, data_only=True)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UserError(f"{path}: no sheet {sheet!r} (sheets: "
                            f"{', '.join(book.sheetnames)})")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        title = worksheet.title
        notes = _CellNotes()
        columns, rows = _sheet_rows(path, title, worksheet.iter_rows(), notes)
    finally:
        book.close()
    unshown = {**notes.errors, **_uncalculated(path, title, notes.unstored)}
    if unshown:
        _report_unshown(f"{path} (sheet {title})", unshown, strict)
    return columns, rows


def _open_workbook(path: Path, *, data_only: bool) -> Any:
    """The workbook, read-only: with each formula's saved value, or with its text."""
    try:
        import openpyxl
    except ImportError:
        raise UserError("reading .xlsx needs openpyxl: pip install openpyxl") from None
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except Exception as err:  # openpyxl raises zipfile, KeyError, ValueError … on bad files
        raise UserError(f"{path}: not a readable .xlsx workbook ({err}); an old .xls must "
                        "be saved as .xlsx first") from None


@dataclass
class _CellNotes:
    """What reading a sheet noticed, by (row, column): error cells with their text, and
    cells that hold no value (empty, or a formula no spreadsheet program has calculated,
    as a workbook a library wrote has them: only reading the formulas tells which)."""

    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    unstored: set[tuple[int, int]] = field(default_factory=set)

    def value(self, cell: Any) -> Any:
        """The cell's value as the sheet shows it, noting it if it shows none."""
        row, column = getattr(cell, "row", None), getattr(cell, "column", None)
        if row is not None and column is not None:  # a gap in a row has no address
            if cell.data_type == "e":
                self.errors[(row, column)] = str(cell.value)
            elif cell.value is None:
                self.unstored.add((row, column))
        return _cell_value(cell)


def _sheet_rows(path: Path, title: str, cells: Iterator[Any],
                notes: _CellNotes) -> tuple[list[str], list[Row]]:
    """The header row, then each non-empty row, cells as text-friendly values."""
    header = next(cells, None)
    where = f"{path} (sheet {title})"
    columns = _header(path, [notes.value(cell) for cell in header or ()], f"{where} row 1")
    rows: list[Row] = []
    for number, line in enumerate(cells, start=2):
        values = [notes.value(cell) for cell in line]
        if all(is_empty(value) for value in values):
            continue
        extra = [v for v in values[len(columns):] if not is_empty(v)]
        if extra:
            raise UserError(f"{where} row {number}: a cell right of the last named column; "
                            "give that column a header")
        rows.append(Row(f"{where} row {number}", dict(zip(columns, values, strict=False))))
    return columns, _complete(columns, rows)


def _cell_value(cell: Any) -> Any:
    """A cell as its number format shows it, as JSON-friendly data."""
    return plain_value(shown(getattr(cell, "value", None), getattr(cell, "number_format", None)))


def _uncalculated(path: Path, title: str,
                  unstored: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """Which of the ``unstored`` cells hold a formula, with its text: a second reading,
    with formulas instead of their values, only when some cell held no value."""
    if not unstored:
        return {}
    book = _open_workbook(path, data_only=False)
    found: dict[tuple[int, int], str] = {}
    try:
        last = max(row for row, _ in unstored)
        for line in book[title].iter_rows(max_row=last):
            for cell in line:
                key = (getattr(cell, "row", None), getattr(cell, "column", None))
                if key in unstored and cell.data_type == "f":
                    formula = getattr(cell.value, "text", cell.value)
                    found[key] = f"{formula} (a formula never calculated)"
    finally:
        book.close()
    return found


def _report_unshown(where: str, unshown: dict[tuple[int, int], str], strict: bool) -> None:
    """One warning (or, with ``strict``, one error) naming the cells that show no value
    of their own: the first few by address, and how many there are."""
    from openpyxl.utils import get_column_letter

    cells = sorted(unshown.items())
    named = ", ".join(f"{get_column_letter(column)}{row} {what}"
                      for (row, column), what in cells[:_NAMED_CELLS])
    more = f" and {len(cells) - _NAMED_CELLS} more" if len(cells) > _NAMED_CELLS else ""
    count = f"{len(cells)} cell{'s' if len(cells) > 1 else ''}"
    message = (f"{where}: {count} with an error or a formula without a saved value: "
               f"{named}{more}. Fix the errors in the sheet; formulas get their values "
               "when Excel or LibreOffice opens and saves the file")
    if strict:
        raise UserError(f"{message}; or drop --strict to send them as they are")
    _LOG.warning(f"{message}. They are sent as the error text or as empty cells "
                 "(--strict stops instead)")


def plain_value(value: Any) -> Any:
    """A value any row format may hold, as JSON data: dates and times as ISO text (a time
    without seconds as ``08:15``), decimals and durations as text, bytes as UTF-8 text
    (base64 when they are not text), NaN as None."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec=_timespec(value.time()))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec=_timespec(value))
    if isinstance(value, (dt.timedelta, decimal.Decimal)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    return value


def _timespec(time: dt.time) -> str:
    if time.microsecond:
        return "microseconds"
    return "seconds" if time.second else "minutes"


def _parquet_rows(path: Path) -> tuple[list[str], list[Row]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("reading .parquet needs pyarrow: pip install pyarrow") from None
    try:
        file = pq.ParquetFile(path)
        columns = list(file.schema_arrow.names)
        rows: list[Row] = []
        for batch in file.iter_batches():
            for record in batch.to_pylist():
                where = f"{path} row {len(rows) + 1}"
                rows.append(Row(where, {k: plain_value(v) for k, v in record.items()}))
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise UserError(f"{path}: not a readable Parquet file ({err})") from None
    return columns, rows
