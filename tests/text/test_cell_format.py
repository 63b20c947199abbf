"""A cell as its number format shows it: each covered format, and the ones given back."""

from __future__ import annotations

import datetime as dt

import pytest

from selfinstruct.text.cell_format import shown

MORNING = dt.datetime(2024, 5, 1, 8, 15, 7, 250000)
#: Excel's built-in accounting format (43): zero shows as a dash.
ACCOUNTING = '_(* #,##0.00_);_(* \\(#,##0.00\\);_(* "-"??_);_(@_)'


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [(MORNING, "hh:mm", "08:15"),
     (MORNING, "yyyy-mm-dd", "2024-05-01"),
     (MORNING, "m/d/yyyy", "5/1/2024"),
     (MORNING, 'yyyy"年"m"月"d"日"', "2024年5月1日"),
     (MORNING, "d-mmm-yy", "1-May-24"),
     (MORNING, "dddd, mmmm d", "Wednesday, May 1"),
     (MORNING, "yyyy-mm-dd h:mm", "2024-05-01 08:15"),
     (dt.datetime(2024, 5, 1, 15, 0), "h:mm AM/PM", "03:00 PM"),
     (MORNING, "mm:ss.0", "15:07.2"),
     (dt.time(12, 0), "mm:ss", "00:00"),
     (dt.timedelta(hours=30, minutes=5), "[h]:mm:ss", "30:05:00"),
     (dt.timedelta(hours=3), "[hh]:mm", "03:00")],
)
def test_dates_and_times_as_the_sheet_shows_them(value, number_format, text):
    assert shown(value, number_format) == text


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [(0.125, "0.0%", "12.5%"),
     (0.125, "0%", "13%"),
     (1234567.891, "#,##0.00", "1,234,567.89"),
     (1234567.891, "#,##0", "1,234,568"),
     (-1234.5, "#,##0.00", "-1,234.50"),
     (-1234.5, "#,##0.00_);(#,##0.00)", "(1,234.50)"),
     (-1234.5, '"$"#,##0.00_);[Red]("$"#,##0.00)', "($1,234.50)"),
     (0, ACCOUNTING, "-"),
     (5, ACCOUNTING, "5.00"),
     (2.5, "0", "3"),
     (0.1 + 0.2, "0.00", "0.30"),
     (0.5, "0.0#", "0.5"),
     (42, "00000", "00042"),
     (1234567, '0.0,,"M"', "1.2M"),
     (12.5, '0.00"元"', "12.50元"),
     (12.5, "[$¥-804]#,##0.00", "¥12.50"),
     (0.000123, "0.00E+00", "1.23E-04"),
     (1234567, "0.00E+00", "1.23E+06")],
)
def test_numbers_as_the_sheet_shows_them(value, number_format, text):
    assert shown(value, number_format) == text


@pytest.mark.parametrize(
    ("value", "number_format", "result"),
    [(MORNING, "mm-dd-yy", MORNING.date()),  # the locale's short date: ISO
     (MORNING, "h:mm:ss", MORNING.time()),  # what openpyxl gives a Python time
     (MORNING, "m/d/yy h:mm", MORNING),
     (dt.datetime(2024, 5, 1), "[$-804]aaaa", dt.date(2024, 5, 1)),  # not covered
     (MORNING, "[$-F800]dddd, mmmm dd, yyyy", MORNING),
     (5, "General", 5), (5, "@", 5), (5, "000-0000", 5), (5, "[<100]0", 5),
     (0.5, "# ?/?", 0.5), (1234567, "##0.0E+0", 1234567),
     ("x", "0.00", "x"), (True, "0", True), (None, "0.00", None)],
)
def test_what_is_not_covered_comes_back_as_a_value(value, number_format, result):
    assert shown(value, number_format) == result
