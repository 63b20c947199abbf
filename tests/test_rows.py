"""distill's inputs: rows from every table format, and the user's template checked
against their columns before anything is sent."""

from __future__ import annotations

import datetime as dt
import json
import re

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfinstruct.errors import UserError
from selfinstruct.runs.rows import plain_value, read_rows
from selfinstruct.text.row_template import cell_text, compile_row_template, compile_template


def write_xlsx(path, header, rows, *, sheet="Sheet1", formats=None):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(header)
    for row in rows:
        ws.append(row)
    for (row, column), number_format in (formats or {}).items():
        ws.cell(row=row, column=column).number_format = number_format
    book.save(path)
    return path


def test_xlsx_times_as_text_empty_cells_filled(tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", ["车次", "始发站", "到点", "日期", "检票口"], [
        ["G101", "北京南", dt.time(8, 15), dt.datetime(2024, 5, 1), None],
        ["G103", None, dt.time(9, 5, 30), dt.datetime(2024, 5, 1, 7, 0), "A3"],
        [None, None, None, None, None],  # an empty row, as sheets often end
    ], formats={(2, 4): "yyyy-mm-dd", (3, 4): "yyyy-mm-dd h:mm"})
    table = read_rows(path, fill_na="无数据")
    assert table.columns == ("车次", "始发站", "到点", "日期", "检票口")
    assert [row.values for row in table.rows] == [
        {"车次": "G101", "始发站": "北京南", "到点": "08:15", "日期": "2024-05-01",
         "检票口": "无数据"},
        {"车次": "G103", "始发站": "无数据", "到点": "09:05:30", "日期": "2024-05-01 07:00",
         "检票口": "A3"},
    ]
    assert table.rows[1].where == f"{path} (sheet Sheet1) row 3"
    without = read_rows(path)
    assert without.rows[0].values["检票口"] is None


def test_xlsx_sheet_choice_and_errors(tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", ["a"], [["x"]], sheet="trains")
    assert read_rows(path, sheet="trains").rows[0].values == {"a": "x"}
    with pytest.raises(UserError, match=r"no sheet 'other' \(sheets: trains\)"):
        read_rows(path, sheet="other")
    bad = tmp_path / "old.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"not a readable \.xlsx workbook"):
        read_rows(bad)
    twice = write_xlsx(tmp_path / "twice.xlsx", ["a", "a"], [["x", "y"]])
    with pytest.raises(UserError, match="the column 'a' appears twice"):
        read_rows(twice)


def test_csv_jsonl_json_and_parquet_give_the_same_rows(tmp_path):
    expected = [{"q": "1+1?", "n": "2"}, {"q": "首都?", "n": ""}]
    (tmp_path / "r.csv").write_text("q,n\n1+1?,2\n首都?,\n", encoding="utf-8")
    (tmp_path / "r.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in expected), encoding="utf-8")
    (tmp_path / "r.json").write_text(json.dumps(expected, ensure_ascii=False), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(expected), tmp_path / "r.parquet")
    for name in ("r.csv", "r.jsonl", "r.json", "r.parquet"):
        table = read_rows(tmp_path / name)
        assert table.columns == ("q", "n"), name
        assert [row.values for row in table.rows] == expected, name
        filled = read_rows(tmp_path / name, fill_na="无数据")
        assert filled.rows[1].values["n"] == "无数据", name


def test_jsonl_rows_get_every_column_and_parquet_dates_become_text(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"b": [1, 2]}\n')
    table = read_rows(path)
    assert table.columns == ("a", "b")
    assert [row.values for row in table.rows] == [{"a": 1, "b": None}, {"a": None, "b": [1, 2]}]
    assert table.rows[1].where == f"{path}:2"
    pq.write_table(pa.table({"d": [dt.date(2024, 1, 2)], "t": [dt.time(8, 15)],
                             "x": [float("nan")]}), tmp_path / "d.parquet")
    assert read_rows(tmp_path / "d.parquet").rows[0].values == {
        "d": "2024-01-02", "t": "08:15", "x": None}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("r.txt", "x", "cannot read .txt as rows"),
     ("r.jsonl", "[1, 2]", "r.jsonl:1: expected a JSON object (a row), got a number"),
     ("r.csv", "a\n", "no rows found"),
     ("r.csv", "a\n1,2\n", "r.csv:2: 2 cells but 1 columns"),
     ("r.parquet", "not parquet", "not a readable Parquet file")],
)
def test_bad_tables_are_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(message)):
        read_rows(path)
    with pytest.raises(UserError, match="no such file"):
        read_rows(tmp_path / "missing.csv")


def test_plain_values():
    assert plain_value(dt.datetime(2024, 5, 1, 8, 15)) == "2024-05-01 08:15"
    assert plain_value(b"\xff") == "/w=="
    assert plain_value({"k": [dt.date(2024, 1, 1)]}) == {"k": ["2024-01-01"]}
    assert [cell_text(v) for v in (None, True, 3, 2.5, [1], "x")] == [
        "", "true", "3", "2.5", "[1]", "x"]


COLUMNS = ("车次", "始发站", "a.b")


def test_template_fills_columns_row_and_questions():
    template = compile_row_template(
        "# 车次信息\n{row}\n# 问题列表\n{questions}\n{{\"q\": \"…\"}} {a.b}", "t.txt",
        COLUMNS, "rows.xlsx", [(1, "{车次}号车次应该从哪个检票口检票?"), (3, "{始发站}在哪里?")],
        "q.txt")
    row = {"车次": "G101", "始发站": "北京南", "a.b": None}
    assert template.render(row) == (
        '# 车次信息\n{"车次": "G101", "始发站": "北京南", "a.b": null}\n# 问题列表\n'
        '1. G101号车次应该从哪个检票口检票?\n2. 北京南在哪里?\n{"q": "…"} ')


@pytest.mark.parametrize(
    ("text", "message"),
    [("车次 {车号}", "t.txt:1: {车号} is not a column of rows.xlsx (columns: 车次, 始发站, a.b)"),
     ("ok\n{\"label\": \"x\"}", 't.txt:2: {"label"} is not a column of rows.xlsx (columns: '
      "车次, 始发站, a.b); for literal braces, as in a JSON example, write {{ and }}"),
     ("{车次:>5}", "t.txt:1: {车次:>5}: format specs and conversions are not supported"),
     ("{车次", "t.txt:1: bad placeholder syntax"),
     ("{questions}", "t.txt: the template uses {questions}; give the question templates")],
)
def test_template_errors_name_file_and_line(text, message):
    with pytest.raises(UserError) as caught:
        compile_row_template(text, "t.txt", COLUMNS, "rows.xlsx")
    assert str(caught.value).startswith(message)


def test_question_lines_are_checked_with_their_own_line_numbers():
    with pytest.raises(UserError, match=r"^q.txt:4: \{到点\} is not a column"):
        compile_row_template("{questions}", "t.txt", COLUMNS, "rows.xlsx",
                             [(1, "{车次}?"), (4, "{到点}?")], "q.txt")
    with pytest.raises(UserError, match="--questions was given but the template has no"):
        compile_row_template("{车次}", "t.txt", COLUMNS, "rows.xlsx", [(1, "{车次}?")], "q.txt")
    assert compile_template("{车次}{车次}", "t", COLUMNS, "r").fill({"车次": "x"}) == "xx"
