"""Read a table of rows from whatever the user has: JSONL, a JSON list, CSV, XLSX, Parquet.

People start from a spreadsheet export or a dataset file, not from our formats. Every
reader gives the same thing: the column names in order and one dict per row, with
values a prompt can show as text (dates and times of a spreadsheet as ISO text, never
Excel's serial numbers) and, with ``fill_na``, every empty cell filled. Each row
remembers where it came from, so an error names the file and the line or sheet row.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import iter_objects, json_type

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


def read_rows(path: Path, *, sheet: str | None = None, fill_na: str | None = None) -> RowTable:
    """Every row of ``path``, by its suffix; a bad file is one error naming where."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: cannot read {suffix or 'a file without a suffix'} as rows; "
                        f"expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if sheet is not None and suffix not in (".xlsx", ".xlsm"):
        raise UserError(f"--sheet is for spreadsheets; {path} is {suffix}")
    if suffix in (".csv", ".tsv"):
        columns, rows = _csv_rows(path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".xlsx", ".xlsm"):
        columns, rows = _xlsx_rows(path, sheet)
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


def _csv_rows(path: Path, delimiter: str) -> tuple[list[str], list[Row]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fp:
            reader = csv.reader(fp, delimiter=delimiter)
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
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8 (save the file as UTF-8)") from None
    except csv.Error as err:
        raise UserError(f"{path}: not valid CSV ({err})") from None
    return columns, _complete(columns, rows)


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[list[str], list[Row]]:
    try:
        import openpyxl
    except ImportError:
        raise UserError("reading .xlsx needs openpyxl: pip install openpyxl") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zipfile, KeyError, ValueError … on bad files
        raise UserError(f"{path}: not a readable .xlsx workbook ({err}); an old .xls must "
                        "be saved as .xlsx first") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UserError(f"{path}: no sheet {sheet!r} (sheets: "
                            f"{', '.join(book.sheetnames)})")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        return _sheet_rows(path, worksheet.title, worksheet.iter_rows())
    finally:
        book.close()


def _sheet_rows(path: Path, title: str, cells: Iterator[Any]) -> tuple[list[str], list[Row]]:
    """The header row, then each non-empty row, cells as text-friendly values."""
    header = next(cells, None)
    where = f"{path} (sheet {title})"
    columns = _header(path, [_cell_value(cell) for cell in header or ()], f"{where} row 1")
    rows: list[Row] = []
    for number, line in enumerate(cells, start=2):
        values = [_cell_value(cell) for cell in line]
        if all(is_empty(value) for value in values):
            continue
        extra = [v for v in values[len(columns):] if not is_empty(v)]
        if extra:
            raise UserError(f"{where} row {number}: a cell right of the last named column; "
                            "give that column a header")
        rows.append(Row(f"{where} row {number}", dict(zip(columns, values, strict=False))))
    return columns, _complete(columns, rows)


def _cell_value(cell: Any) -> Any:
    """A cell as JSON-friendly data; dates and times as ISO text (a date-only format
    gives the date alone, as the sheet shows it)."""
    value = getattr(cell, "value", None)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        number_format = str(getattr(cell, "number_format", "")).lower()
        if not any(part in number_format for part in ("h", "s")):
            return value.date().isoformat()
    return plain_value(value)


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
