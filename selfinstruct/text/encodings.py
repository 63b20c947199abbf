"""Text files in whatever encoding the user's program saved them: told, or found out.

Excel saves "CSV" in the system's code page: GBK on Chinese Windows, UTF-16 for "Unicode
text", UTF-8 with a byte order mark for "CSV UTF-8". Refusing all but UTF-8 sends people
to a converter for a file their own sheet opens, so a file is decoded with the encoding
the user names, else found out in this order:

1. a byte order mark (UTF-8, UTF-16, UTF-32) says it;
2. NUL bytes mean UTF-16 without a mark (little- or big-endian by where they fall:
   no text file in an 8-bit encoding has them);
3. text that is valid UTF-8 is UTF-8 (other encodings rarely are);
4. text that reads as GB18030 (a superset of GBK and GB2312) and is then mostly common
   Chinese characters and punctuation is GB18030: general detectors take a few lines
   of GBK Chinese for Korean or Big5, which share its byte ranges;
5. else charset-normalizer's best guess (Big5, Shift-JIS, Windows-1252 …).

A guess can be wrong (Korean EUC-KR shares GB2312's bytes and reads as Chinese), so the
caller says which encoding it used, and ``--encoding`` always wins.

Pure: the caller reads the bytes.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from selfinstruct.errors import UserError

#: Byte order marks, longest first (UTF-32's little-endian mark begins with UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
#: Share of non-ASCII characters that must be common Chinese for GB18030 to be taken.
_CHINESE_SHARE = 0.8
HINT = ("pass --encoding with the file's encoding (e.g. --encoding gbk, big5, shift_jis, "
        "utf-16, cp1252) or save the file as UTF-8")


@dataclass(frozen=True)
class Decoded:
    """A file's text, the encoding it was read with, and whether that was a guess."""

    text: str
    encoding: str
    guessed: bool


def decode(raw: bytes, encoding: str | None, where: str) -> Decoded:
    """``raw`` as text in ``encoding``, or in the one found out (see the module's
    docstring); ``where`` names the file in errors, which give the line that fails."""
    if encoding is not None:
        name = _codec(encoding)
        return Decoded(_strict(raw, name, where), name, guessed=False)
    for mark, name in _BOMS:
        if raw.startswith(mark):
            return Decoded(_strict(raw, name, where), name, guessed=False)
    if b"\x00" in raw:
        return _utf16(raw, where)
    try:
        return Decoded(raw.decode("utf-8"), "utf-8", guessed=False)
    except UnicodeDecodeError:
        pass
    chinese = _as_chinese(raw)
    if chinese is not None:
        return Decoded(chinese, "gb18030", guessed=True)
    return _detected(raw, where)


def _codec(encoding: str) -> str:
    """Python's name for ``encoding``; UTF-8 drops a byte order mark, as Excel writes one."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"--encoding {encoding}: not an encoding Python knows (e.g. utf-8, "
                        "gbk, gb18030, big5, shift_jis, utf-16, cp1252)") from None
    return "utf-8-sig" if name == "utf-8" else name


def _strict(raw: bytes, encoding: str, where: str) -> str:
    """The text, or a UserError naming the line and column that is not ``encoding``."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        before = raw[:error.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - before.rfind("\n")
        name = encoding.removesuffix("-sig")
        raise UserError(f"{where}:{line}: not valid {name} (byte {raw[error.start]:#04x} "
                        f"at column {column}); {HINT}") from None


def _utf16(raw: bytes, where: str) -> Decoded:
    """UTF-16 without a byte order mark: ASCII characters put their NUL second in
    little-endian text, first in big-endian text."""
    second = raw[1::2].count(0)
    name = "utf-16-le" if second >= raw[0::2].count(0) else "utf-16-be"
    return Decoded(_strict(raw, name, where), name, guessed=True)


def _as_chinese(raw: bytes) -> str | None:
    """The text as GB18030, if it decodes and reads as Chinese."""
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return None
    others = [char for char in text if not char.isascii()]
    common = sum(1 for char in others if _common_chinese(char))
    return text if others and common >= _CHINESE_SHARE * len(others) else None


def _common_chinese(char: str) -> bool:
    """One of GB2312's 3,755 common characters or its punctuation (full-width forms
    included): the bytes of ordinary Chinese text, and rarely of anything else."""
    try:
        lead = char.encode("gb2312")[0]
    except UnicodeEncodeError:
        return False
    return 0xA1 <= lead <= 0xA3 or 0xB0 <= lead <= 0xD7


def _detected(raw: bytes, where: str) -> Decoded:
    """charset-normalizer's best reading, or an error that says what to do."""
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise UserError(f"{where}: not UTF-8, and its encoding could not be told; {HINT}")
    return Decoded(str(best), best.encoding, guessed=True)
