"""Read JSON Lines or JSON-array files as a stream of objects that know their line.

Seed files, datasets to dedup and prompt files for reasoning all come in these two
shapes; reading them in one place gives every command the same ``file:line: what is
wrong`` errors, and streams JSON Lines so their size is not limited by memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError

FORMATS_HINT = "expected JSON Lines (one object per line) or a JSON array of objects"


def iter_objects(path: Path, *, max_line_bytes: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, value)`` for each element of a JSON array file or line of a JSONL
    file, decided by the first non-blank character (``[`` means an array)."""
    first = first_significant_byte(path)
    if first is None:
        raise UserError(f"{path}:1: the file is empty; {FORMATS_HINT}")
    if first == b"[":
        yield from _array_objects(path)
    else:
        yield from _jsonl_objects(path, max_line_bytes)


def first_significant_byte(path: Path) -> bytes | None:
    """The first byte that is not whitespace or a UTF-8 byte order mark, or None."""
    try:
        with path.open("rb") as fp:
            head = fp.read(3)
            if head != b"\xef\xbb\xbf":
                fp.seek(0)
            while chunk := fp.read(65536):
                stripped = chunk.lstrip()
                if stripped:
                    return stripped[:1]
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a JSON or JSONL file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    return None


def _jsonl_objects(path: Path, max_line_bytes: int | None) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line."""
    with path.open("rb") as fp:
        for number, raw in enumerate(fp, start=1):
            if max_line_bytes is not None and len(raw) > max_line_bytes:
                raise UserError(f"{path}:{number}: line is longer than {max_line_bytes:,} bytes")
            text = _decode(path, number, raw[3:] if number == 1 and raw[:3] == b"\xef\xbb\xbf"
                           else raw)
            if not text.strip():
                continue
            try:
                yield number, json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise UserError(f"{path}:{number}: not valid JSON ({error.msg} at column "
                                f"{error.colno}); {FORMATS_HINT}") from None


def _decode(path: Path, line: int, raw: bytes) -> str:
    """UTF-8 text of one line, or a UserError naming the line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte {raw[error.start]:#04x} at "
                        f"column {error.start + 1}); save the file as UTF-8") from None


def _array_objects(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each element of a top-level JSON array.

    Elements are decoded one at a time with ``raw_decode`` so each error and record can
    name the line it starts on, which ``json.load`` cannot.
    """
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte {raw[error.start]:#04x}); "
                        "save the file as UTF-8") from None
    decoder = json.JSONDecoder()
    position = _skip_space(text, text.index("[") + 1)
    line = text.count("\n", 0, position) + 1
    expect_element = text[position:position + 1] != "]"
    while expect_element:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg} at column "
                            f"{error.colno})") from None
        yield line, value
        after = _skip_space(text, end)
        separator = text[after:after + 1]
        if separator not in {",", "]"}:
            where = text.count("\n", 0, after) + 1
            raise UserError(f"{path}:{where}: not valid JSON (expected ',' or ']' after an "
                            "array element)")
        expect_element = separator == ","
        next_position = _skip_space(text, after + 1) if expect_element else after
        line += text.count("\n", position, next_position)
        position = next_position
    trailing = _skip_space(text, position + 1)
    if trailing < len(text):
        where = text.count("\n", 0, trailing) + 1
        raise UserError(f"{path}:{where}: unexpected content after the JSON array")


def _skip_space(text: str, position: int) -> int:
    """Index of the first non-whitespace character at or after ``position``."""
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position



def check_unique_ids(source: Path, ids: Iterable[str], why: str) -> None:
    """Stop at the first id seen twice: a resumed stage, a score or a review finds its
    record by id, so two records with one id would be mixed up (``why`` says how)."""
    seen: set[str] = set()
    for key in ids:
        if key in seen:
            raise UserError(f"{source}: duplicate id {key!r}; ids must be unique so {why}")
        seen.add(key)


def json_type(value: Any) -> str:
    """JSON's name for a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def read_text(path: Path, flag: str) -> str:
    """A text file the user named with ``flag`` (a prompt, a topics or personas file),
    as text; a clear one-line error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file ({flag})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file ({flag})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8 (save the file as UTF-8)") from None
