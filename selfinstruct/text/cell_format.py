"""A spreadsheet cell as the sheet shows it, from its stored value and its number format.

A workbook stores ``0.34375`` and the format ``hh:mm``; the sheet shows ``08:15``. The
author chose the format to say what the value means, so a prompt should carry what the
sheet shows, not ``2024-05-01 08:15`` for a cell that shows ``08:15``, nor ``0.125`` for
``12.5%``.

Covered, as Excel shows them (the common built-in formats and custom codes made of the
same parts):

- numbers: fixed decimals (``0``, ``0.00``, ``0.0#``), thousands separators (``#,##0``),
  scaling by trailing commas (``0.0,,``), percentages (``0%``, ``0.00%``), scientific
  (``0.00E+00``), text around the number (``"$"#,##0.00``, ``[$¥-804]#,##0.00``,
  ``0.00"元"``) and the sections for negative numbers and zero (``#,##0_);(#,##0)``);
  colours are dropped, ``_x`` spacing is a space, ``*x`` fills nothing, and the text is
  trimmed;
- dates and times: ``yyyy``/``yy``, ``m``/``mm``/``mmm``/``mmmm``/``mmmmm`` (a month, or
  minutes after an hour or before seconds), ``d``/``dd``/``ddd``/``dddd``, ``h``/``hh``,
  ``s``/``ss``, fractions of a second (``ss.00``), ``AM/PM`` and ``A/P``, elapsed time
  (``[h]:mm:ss``, ``[mm]:ss``) and literal text (``yyyy"年"m"月"d"日"``);
- the formats whose look Excel takes from the reader's locale (built-in short date
  ``mm-dd-yy``, ``m/d/yy h:mm``) and the ones Python libraries give their dates and times
  (``yyyy-mm-dd h:mm:ss``, ``h:mm:ss``): the parts they hold, as ISO values
  (``2024-05-01``, ``08:15``, ``2024-05-01 08:15``) for the caller to write out.

Where this differs from Excel: hours always have two digits (``h:mm`` shows ``07:00``,
as ISO times are written, so a column of times reads alike), month and weekday names are
English, ``?`` pads nothing, and seconds are cut, not rounded, to the digits shown.

Not covered: ``General``, text (``@``), conditions (``[<100]``), fractions (``# ?/?``),
engineering notation (``##0.0E+0``), digits split by text (``000-0000``), ``[DBNum1]``,
eras and Excel's system formats (``[$-F800]``). For these :func:`shown` gives the value
back, a date-only format's midnight datetime narrowed to its date.

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Sequence
from typing import Any

#: Formats shown as ISO values: the part of a datetime each one shows.
_ISO_SHOWN = {
    "mm-dd-yy": "date",  # Excel's built-in short date (14): the reader's locale decides
    "m/d/yy h:mm": "datetime",  # built-in 22, also the locale's
    "h:mm:ss": "time",  # what openpyxl gives a Python time
    "yyyy-mm-dd h:mm:ss": "datetime",  # what openpyxl gives a Python datetime
    "yyyy-mm-dd hh:mm:ss": "datetime",  # what pandas gives one
}
_COLOURS = {"black", "blue", "cyan", "green", "magenta", "red", "white", "yellow"}
#: Characters a number format shows as they are, without quotes.
_NUMBER_LITERALS = set("$-+/():!^&'~{}<>= %,")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CORE = re.compile(r"(?P<int>[0#?,]*)(?:\.(?P<dec>[0#?]*))?"
                   r"(?:(?P<e>[eE])(?P<sign>[+-])(?P<exp>[0#?]+))?")

#: A piece of a format section: ("lit", text), ("code", one character) or
#: ("elapsed", "h", "hh", "mm" …).
Token = tuple[str, str]


class _NotCovered(Exception):
    """The format uses something this module does not render."""


def shown(value: Any, number_format: str | None) -> Any:
    """The cell as its format shows it: text where the format is covered (see the
    module's docstring), else ``value`` itself, or its date or time part, for the
    caller to write out as it writes any value."""
    if value is None or isinstance(value, (bool, str)):
        return value
    code = (number_format or "General").strip()
    part = _ISO_SHOWN.get(code.lower())
    if part is not None:
        return _iso_part(value, part)
    try:
        return _render(value, code)
    except _NotCovered:
        return _narrowed(value, code)


def _iso_part(value: Any, part: str) -> Any:
    if isinstance(value, dt.datetime) and part == "date":
        return value.date()
    if isinstance(value, dt.datetime) and part == "time":
        return value.time()
    return value


def _narrowed(value: Any, code: str) -> Any:
    """A midnight datetime under a format without hours or seconds is a date."""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0) \
            and not any(part in code.lower() for part in ("h", "s")):
        return value.date()
    return value


def _render(value: Any, code: str) -> str:
    if code.lower() == "general":
        raise _NotCovered
    sections = _sections(_tokens(code))
    if isinstance(value, (int, float, decimal.Decimal)):
        amount = decimal.Decimal(str(value))
        if amount.is_nan() or amount.is_infinite():
            raise _NotCovered
        if amount < 0 and len(sections) >= 2:
            return _number_text(sections[1], -amount)
        if amount == 0 and len(sections) >= 3:
            return _number_text(sections[2], amount)
        text = _number_text(sections[0], abs(amount))
        return f"-{text}" if amount < 0 else text
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return _date_text(_date_parts(sections[0]), value)
    raise _NotCovered


# ---------------------------------------------------------------------------
# Tokens and sections
# ---------------------------------------------------------------------------

def _tokens(code: str) -> list[Token]:
    """The format code as literal text, code characters and elapsed-time fields."""
    tokens: list[Token] = []
    position = 0
    while position < len(code):
        char = code[position]
        if char == '"':
            end = code.find('"', position + 1)
            if end < 0:
                raise _NotCovered
            tokens.append(("lit", code[position + 1:end]))
            position = end + 1
        elif char == "[":
            end = code.find("]", position)
            if end < 0:
                raise _NotCovered
            tokens.extend(_bracket(code[position + 1:end]))
            position = end + 1
        elif char in "\\_*":
            # \x: x as it is; _x: the width of x (a space); *x: x repeated to fill the
            # cell (nothing, in text)
            following = code[position + 1:position + 2]
            if char != "*":
                tokens.append(("lit", following if char == "\\" else " "))
            position += 2
        else:
            tokens.append(("code", char))
            position += 1
    return tokens


def _bracket(inner: str) -> list[Token]:
    """A ``[...]`` part: a colour (dropped), an elapsed field, or a currency symbol."""
    lower = inner.lower()
    if lower in _COLOURS or re.fullmatch(r"color\d+", lower):
        return []
    if re.fullmatch(r"h+|m+|s+", lower):
        return [("elapsed", lower)]
    if inner.startswith("$"):
        symbol, _, locale = inner[1:].partition("-")
        if locale.lower().startswith("f"):  # Excel's system date and time formats
            raise _NotCovered
        return [("lit", symbol)] if symbol else []
    raise _NotCovered


def _sections(tokens: list[Token]) -> list[list[Token]]:
    """Split at ``;``: positive (or all), negative, zero, text."""
    sections: list[list[Token]] = [[]]
    for token in tokens:
        if token == ("code", ";"):
            sections.append([])
        else:
            sections[-1].append(token)
    return sections


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def _number_text(section: list[Token], amount: decimal.Decimal) -> str:
    """A non-negative number shown by one section: literals, the digits, literals."""
    placeholders = [i for i, (kind, text) in enumerate(section)
                    if kind == "code" and text in "0#?"]
    if not placeholders:
        return _literal_text(section).strip()
    first, last = placeholders[0], placeholders[-1]
    if first > 0 and section[first - 1] == ("code", "."):
        first -= 1
    while last + 1 < len(section) and section[last + 1] == ("code", ","):
        last += 1
    core = section[first:last + 1]
    if any(kind != "code" for kind, _ in core):
        raise _NotCovered
    outside = section[:first] + section[last + 1:]
    percent = sum(1 for token in outside if token == ("code", "%"))
    digits = _digits("".join(text for _, text in core), amount * 100 ** percent)
    return f"{_literal_text(section[:first])}{digits}{_literal_text(section[last + 1:])}".strip()


def _literal_text(tokens: Sequence[Token]) -> str:
    """The text of tokens outside the digits; a letter there is not covered."""
    parts: list[str] = []
    for kind, text in tokens:
        if kind == "code" and text not in _NUMBER_LITERALS and text.isascii():
            raise _NotCovered
        if kind == "elapsed":
            raise _NotCovered
        parts.append(text)
    return "".join(parts)


def _digits(core: str, amount: decimal.Decimal) -> str:
    """The number as the placeholders of ``core`` (``#,##0.00``, ``0.00E+00``) show it."""
    scaled = core.rstrip(",")
    amount = amount / 1000 ** (len(core) - len(scaled))
    match = _CORE.fullmatch(scaled)
    if match is None:
        raise _NotCovered
    whole, decimals = match["int"], match["dec"]
    if match["e"]:
        return _scientific(whole, decimals or "", match, amount)
    rounded = _round(amount, len(decimals or ""))
    integer, _, fraction = f"{rounded:f}".partition(".")
    text = _whole_text(integer, whole)
    if decimals is None:
        return text
    return f"{text}.{_fraction_text(fraction, decimals)}"


def _round(amount: decimal.Decimal, places: int) -> decimal.Decimal:
    """Half away from zero, as Excel rounds what it shows."""
    context = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP)
    return amount.quantize(decimal.Decimal(1).scaleb(-places), context=context)


def _whole_text(integer: str, placeholders: str) -> str:
    """The integer part: at least as many digits as the ``0`` placeholders, grouped by
    thousands when a comma stands between placeholders."""
    minimum = placeholders.count("0")
    digits = "" if integer == "0" and minimum == 0 else integer.zfill(minimum)
    if "," not in placeholders.strip(","):
        return digits
    groups: list[str] = []
    while len(digits) > 3:
        digits, group = digits[:-3], digits[-3:]
        groups.insert(0, group)
    return ",".join([digits, *groups] if digits else groups)


def _fraction_text(fraction: str, placeholders: str) -> str:
    """The decimals: trailing zeros dropped down to the last ``0`` placeholder."""
    minimum = placeholders.rfind("0") + 1
    return fraction.rstrip("0").ljust(minimum, "0")


def _scientific(whole: str, decimals: str, match: re.Match[str],
                amount: decimal.Decimal) -> str:
    """``0.00E+00``: one digit before the point, the exponent's sign and digits."""
    if whole != "0" and whole != "#":
        raise _NotCovered  # engineering notation (##0.0E+0)
    if not amount:
        amount = decimal.Decimal(0).scaleb(-len(decimals))
    mantissa, _, exponent = f"{amount:.{len(decimals)}E}".partition("E")
    power = int(exponent)
    integer, _, fraction = mantissa.partition(".")
    text = integer if not decimals else f"{integer}.{_fraction_text(fraction, decimals)}"
    sign = "-" if power < 0 else ("+" if match["sign"] == "+" else "")
    return f"{text}{match['e']}{sign}{str(abs(power)).zfill(match['exp'].count('0'))}"


# ---------------------------------------------------------------------------
# Dates and times
# ---------------------------------------------------------------------------

def _date_parts(section: list[Token]) -> list[Token]:
    """The section as fields (``("y", "yyyy")``, ``("minute", "mm")``, ``("ampm",
    "AM/PM")``, ``("frac", "00")``, ``("elapsed", "h")``) and literal text."""
    parts: list[Token] = []
    position = 0
    while position < len(section):
        kind, text = section[position]
        lower = text.lower()
        if kind != "code":
            parts.append((kind, text))
            position += 1
        elif lower in "ymdhs":
            end = position
            while end < len(section) and section[end][0] == "code" \
                    and section[end][1].lower() == lower:
                end += 1
            parts.append((lower, lower * (end - position)))
            position = end
        elif lower == "a":
            field = _ampm(section, position)
            parts.append(("ampm", field))
            position += len(field)
        elif text == "." and parts and parts[-1][0] in ("s", "elapsed"):
            end = position + 1
            while end < len(section) and section[end] == ("code", "0"):
                end += 1
            parts.append(("frac", "0" * (end - position - 1)) if end > position + 1
                         else ("lit", "."))
            position = end
        elif text.isascii() and (text.isalnum() or text in "@?#"):
            raise _NotCovered  # eras, Chinese weekdays (aaaa), digits, text: not ours
        else:
            parts.append(("lit", text))
            position += 1
    if not any(kind in ("y", "m", "d", "h", "s", "elapsed") for kind, _ in parts):
        raise _NotCovered
    return _minutes(parts)


def _ampm(section: list[Token], position: int) -> str:
    """``AM/PM`` or ``A/P`` as written, starting at ``position``."""
    for field in ("am/pm", "a/p"):
        text = "".join(t for k, t in section[position:position + len(field)] if k == "code")
        if text.lower() == field:
            return text
    raise _NotCovered


def _minutes(parts: list[Token]) -> list[Token]:
    """Each ``m`` field after an hour or before seconds is minutes, not the month."""
    fields = [i for i, (kind, _) in enumerate(parts) if kind not in ("lit", "frac", "ampm")]
    result = list(parts)
    for order, index in enumerate(fields):
        if parts[index][0] != "m":
            continue
        before = parts[fields[order - 1]] if order > 0 else None
        after = parts[fields[order + 1]] if order + 1 < len(fields) else None
        if (before is not None and "h" in (before[0], before[1][0])) or \
                (after is not None and "s" in (after[0], after[1][0])):
            result[index] = ("minute", parts[index][1])
    return result


def _date_text(parts: list[Token], value: dt.date | dt.time | dt.timedelta) -> str:
    """The fields filled from ``value`` (a time or duration has no date to show)."""
    day, seconds, micro = _moment(value)
    twelve = any(kind == "ampm" for kind, _ in parts)
    hour = seconds // 3600 % 24
    text: list[str] = []
    for kind, field in parts:
        if kind in ("y", "m", "d") and day is None:
            raise _NotCovered
        if kind == "elapsed" and isinstance(value, dt.date):
            raise _NotCovered  # the time elapsed since 1900: not what anyone means
        text.append(_field(kind, field, day, seconds, micro, hour, twelve))
    return "".join(text)


def _moment(value: dt.date | dt.time | dt.timedelta) -> tuple[dt.date | None, int, int]:
    """The date (if any), whole seconds since midnight (or of the duration), microseconds."""
    if isinstance(value, dt.timedelta):
        if value < dt.timedelta(0):
            raise _NotCovered
        return None, value.days * 86400 + value.seconds, value.microseconds
    if isinstance(value, dt.time):
        return None, value.hour * 3600 + value.minute * 60 + value.second, value.microsecond
    if isinstance(value, dt.datetime):
        return value.date(), value.hour * 3600 + value.minute * 60 + value.second, \
            value.microsecond
    return value, 0, 0


def _field(kind: str, field: str, day: dt.date | None, seconds: int, micro: int, hour: int,
           twelve: bool) -> str:
    """One field's text."""
    width = len(field)
    if day is not None and kind == "y":
        return f"{day.year % 100:02d}" if width <= 2 else f"{day.year:04d}"
    if day is not None and kind == "m":
        return _named(day.month, width, _MONTHS[day.month - 1])
    if day is not None and kind == "d":
        return _named(day.day, width, _WEEKDAYS[day.weekday()])
    if kind == "h":
        return f"{(hour % 12 or 12) if twelve else hour:02d}"
    if kind == "minute":
        return f"{seconds // 60 % 60:0{min(width, 2)}d}"
    if kind == "s":
        return f"{seconds % 60:0{min(width, 2)}d}"
    if kind == "frac":
        return f".{micro:06d}"[:width + 1]
    if kind == "ampm":
        return _ampm_text(field, hour)
    if kind == "elapsed":
        total = {"h": seconds // 3600, "m": seconds // 60, "s": seconds}[field[0]]
        return str(total).zfill(len(field))
    return field


def _named(number: int, width: int, name: str) -> str:
    """``m``/``d``: the number; ``mm``/``dd``: two digits; three letters: the short name;
    four: the full name (five ``m``: its first letter)."""
    if width == 1:
        return str(number)
    if width == 2:
        return f"{number:02d}"
    if width == 3:
        return name[:3]
    return name[0] if width == 5 else name


def _ampm_text(field: str, hour: int) -> str:
    """``AM``/``PM`` (``A``/``P``), in the case the format writes them."""
    morning = hour < 12
    if field.lower() == "a/p":
        return field[0] if morning else field[2]
    return field[:2] if morning else field[3:]
