"""A text file's encoding, told or found out: the files Excel writes on Chinese Windows
(GBK), for "Unicode text" (UTF-16) and "CSV UTF-8" (a byte order mark), short ones too."""

from __future__ import annotations

import codecs

import pytest

from selfinstruct.errors import UserError
from selfinstruct.text.encodings import decode

SHORT_CHINESE = [
    "车次,始发站,到点\nG101,北京南,08:15\n",
    "名字\n张三\n",
    "q,a\n你好,世界\n",
    "id,text\n1,今天天气很好\n",
]


@pytest.mark.parametrize("text", SHORT_CHINESE)
@pytest.mark.parametrize(
    ("encoding", "prefix", "found", "guessed"),
    [("utf-8", b"", "utf-8", False),
     ("utf-8", codecs.BOM_UTF8, "utf-8-sig", False),
     ("gbk", b"", "gb18030", True),
     ("gb18030", b"", "gb18030", True),
     ("utf-16", b"", "utf-16", False),  # Python writes the byte order mark
     ("utf-16-le", b"", "utf-16-le", True),
     ("utf-16-be", b"", "utf-16-be", True)],
)
def test_short_chinese_files_are_found_out(text, encoding, prefix, found, guessed):
    decoded = decode(prefix + text.encode(encoding), None, "r.csv")
    assert (decoded.text, decoded.encoding, decoded.guessed) == (text, found, guessed)


def test_other_encodings_go_to_the_detector():
    text = "name,city\nJosé,Zürich\nFrançois,Besançon\n"
    decoded = decode(text.encode("cp1252"), None, "r.csv")
    assert decoded.text == text and decoded.guessed
    assert decode("id,text\n1,今日はいい天気ですね\n".encode("shift_jis"), None,
                  "r.csv").text == "id,text\n1,今日はいい天気ですね\n"


def test_a_named_encoding_always_wins():
    raw = "q\n北京\n".encode("gbk")
    assert decode(raw, "GBK", "r.csv").text == "q\n北京\n"
    # UTF-8 bytes are valid GBK too: told gbk, they are read as gbk
    assert decode("q\n北京\n".encode(), "gbk", "r.csv").encoding == "gbk"
    assert decode(codecs.BOM_UTF8 + b"q\n", "utf8", "r.csv").text == "q\n"


def test_bytes_the_encoding_cannot_read_are_one_error_naming_the_line():
    raw = "q,a\n1,2\n北京,3\n".encode("gbk")
    with pytest.raises(UserError) as caught:
        decode(raw, "utf-8", "r.csv")
    assert str(caught.value).startswith("r.csv:3: not valid utf-8 (byte 0xb1 at column 1); "
                                        "pass --encoding with the file's encoding (e.g. "
                                        "--encoding gbk")
    with pytest.raises(UserError, match="--encoding latin-9x: not an encoding Python knows"):
        decode(raw, "latin-9x", "r.csv")
