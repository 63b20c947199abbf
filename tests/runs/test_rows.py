"""distill's inputs: rows from every table format, and the user's template checked
against their columns before anything is sent."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import logging
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


TRAINS = "车次,始发站,到点\nG101,北京南,08:15\nG103,上海虹桥,09:30\n"
TRAIN_ROWS = [{"车次": "G101", "始发站": "北京南", "到点": "08:15"},
              {"车次": "G103", "始发站": "上海虹桥", "到点": "09:30"}]


@pytest.fixture
def library_lines(monkeypatch, caplog):
    """The library's notes and warnings, even after a CLI test in this process made its
    logger stop passing them to the root logger."""
    monkeypatch.setattr(logging.getLogger("selfinstruct"), "propagate", True)
    with caplog.at_level(logging.INFO, logger="selfinstruct"):
        yield caplog


def test_a_gbk_csv_is_read_by_detection_and_by_its_name(tmp_path, library_lines):
    path = tmp_path / "r.csv"
    path.write_bytes(TRAINS.encode("gbk"))  # what Excel saves on Chinese Windows
    assert [row.values for row in read_rows(path).rows] == TRAIN_ROWS
    assert f"{path}: read as gb18030 (it is not UTF-8)" in library_lines.text
    assert [row.values for row in read_rows(path, encoding="gbk").rows] == TRAIN_ROWS
    with pytest.raises(UserError) as caught:
        read_rows(path, encoding="utf-8")
    assert str(caught.value).startswith(f"{path}:1: not valid utf-8 (byte 0xb3 at column 1); "
                                        "pass --encoding with the file's encoding")


@pytest.mark.parametrize(("name", "raw"), [
    ("r.csv", TRAINS.encode("utf-16")),
    ("r.tsv", codecs.BOM_UTF16_LE + TRAINS.replace(",", "\t").encode("utf-16-le")),
    ("r.csv", codecs.BOM_UTF8 + TRAINS.encode()),
], ids=["utf-16 csv", "excel unicode text", "utf-8 with bom"])
def test_utf16_and_utf8_with_a_byte_order_mark(tmp_path, name, raw):
    (tmp_path / name).write_bytes(raw)
    table = read_rows(tmp_path / name)
    assert [row.values for row in table.rows] == TRAIN_ROWS
    assert table.rows[1].where == f"{tmp_path / name}:3"


def test_encoding_is_for_csv_only(tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", ["a"], [["x"]])
    with pytest.raises(UserError, match=r"--encoding is for CSV and TSV files; .*t\.xlsx is "
                                         r"\.xlsx"):
        read_rows(path, encoding="gbk")


def sheet_with_errors(path, errors=1):
    """A timetable as a library writes it: a time, a date, a share, error cells and
    formulas nobody calculated (openpyxl saves formulas without their values)."""
    rows = [["G101", dt.datetime(2024, 5, 1, 8, 15), dt.datetime(2024, 5, 1, 8, 15), 0.125,
             "#DIV/0!", "=D2*2"],
            ["G103", dt.datetime(2024, 5, 1, 9, 30), dt.datetime(2024, 5, 2), 0.5, "#N/A",
             "=D3*2"]]
    rows += [[f"G{n}", None, None, None, "#REF!", None] for n in range(errors - 1)]
    return write_xlsx(path, ["车次", "到点", "日期", "满座率", "备注", "翻倍"], rows,
                      formats={**{(r, 2): "hh:mm" for r in (2, 3)},
                               **{(r, 3): "yyyy-mm-dd" for r in (2, 3)},
                               **{(r, 4): "0.0%" for r in (2, 3)}})


def test_xlsx_cells_as_their_formats_show_them(tmp_path, library_lines):
    path = sheet_with_errors(tmp_path / "t.xlsx")
    table = read_rows(path)
    assert [row.values for row in table.rows] == [
        {"车次": "G101", "到点": "08:15", "日期": "2024-05-01", "满座率": "12.5%",
         "备注": "#DIV/0!", "翻倍": None},
        {"车次": "G103", "到点": "09:30", "日期": "2024-05-02", "满座率": "50.0%",
         "备注": "#N/A", "翻倍": None}]
    warnings = [r.getMessage() for r in library_lines.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{path} (sheet Sheet1): 4 cells with an error or a formula without a saved value: "
        "E2 #DIV/0!, F2 =D2*2 (a formula never calculated), E3 #N/A, F3 =D3*2 (a formula "
        "never calculated). Fix the errors in the sheet; formulas get their values when "
        "Excel or LibreOffice opens and saves the file. They are sent as the error text or "
        "as empty cells (--strict stops instead)"]


def test_strict_stops_on_error_cells_naming_the_first_ten(tmp_path, library_lines):
    path = sheet_with_errors(tmp_path / "t.xlsx", errors=12)
    with pytest.raises(UserError) as caught:
        read_rows(path, strict=True)
    message = str(caught.value)
    assert message.startswith(f"{path} (sheet Sheet1): 15 cells with an error or a formula "
                              "without a saved value: E2 #DIV/0!, F2 =D2*2 (a formula never "
                              "calculated), E3 #N/A, F3 =D3*2 (a formula never calculated), "
                              "E4 #REF!, E5 #REF!")
    assert ", E8 #REF!, E9 #REF! and 5 more. Fix the errors" in message
    assert message.endswith("; or drop --strict to send them as they are")
    assert not library_lines.records
    # a sheet with nothing to flag reads the same with strict
    clean = write_xlsx(tmp_path / "clean.xlsx", ["a", "b"], [["x", None]])
    assert read_rows(clean, strict=True).rows[0].values == {"a": "x", "b": None}


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
