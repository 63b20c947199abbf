"""Run files: flushed appends, torn-tail repair, atomic documents."""

from __future__ import annotations

import errno
import os

import pytest

from selfinstruct.errors import UserError
from selfinstruct.runs.store import (
    JsonlAppender,
    read_json,
    read_jsonl,
    repair_torn_tail,
    write_json_atomic,
)


def test_appends_are_on_disk_before_close(tmp_path):
    path = tmp_path / "a.jsonl"
    appender = JsonlAppender(path)
    appender.write({"text": "你好", "n": 1})
    assert path.read_text(encoding="utf-8") == '{"text":"你好","n":1}\n'
    appender.close()
    appender.close()


def test_a_device_that_cannot_be_synced_is_written_and_closed(tmp_path, monkeypatch):
    # /dev/null accepts writes but answers fsync with EINVAL, as pipes and /dev/full do.
    answers: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        try:
            real_fsync(fd)
        except OSError as err:
            answers.append(err.errno)
            raise
        answers.append(0)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "a.jsonl"
    path.symlink_to("/dev/null")
    with JsonlAppender(path) as appender:
        appender.write({"n": 1})
    assert answers == [errno.EINVAL]  # the refusal really happened, and was not an error


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP])
def test_a_file_that_cannot_be_synced_keeps_what_was_written(tmp_path, monkeypatch, code):
    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "a.jsonl"
    with JsonlAppender(path) as appender:
        appender.write({"n": 1})
    assert list(read_jsonl(path)) == [{"n": 1}]
    write_json_atomic(tmp_path / "c.json", {"k": 1})
    assert read_json(tmp_path / "c.json") == {"k": 1}


def test_a_failed_sync_is_one_clear_error(tmp_path, monkeypatch):
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    appender = JsonlAppender(tmp_path / "a.jsonl")
    appender.write({"n": 1})
    with pytest.raises(UserError, match=r"a.jsonl: cannot write \(Input/output error\)"):
        appender.close()
    with pytest.raises(UserError, match=r"c.json: cannot write \(Input/output error\)"):
        write_json_atomic(tmp_path / "c.json", {"k": 1})
    assert not (tmp_path / "c.json").exists()


def test_a_write_to_a_full_disk_is_one_clear_error(tmp_path):
    path = tmp_path / "a.jsonl"
    path.symlink_to("/dev/full")
    appender = JsonlAppender(path)
    with pytest.raises(UserError, match=r"a.jsonl: cannot write \(No space left on device\)"):
        appender.write({"n": 1})
    appender.close()
    appender = JsonlAppender(path)
    appender.close()

def test_torn_partial_line_is_dropped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "b": "hal')
    assert repair_torn_tail(path) == len(b'{"a": 3, "b": "hal')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]


def test_complete_record_missing_newline_is_kept(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}')
    assert repair_torn_tail(path) == 0
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n'


def test_torn_multibyte_character_and_single_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes('{"a": "中文'.encode()[:-1])
    repair_torn_tail(path)
    assert path.read_bytes() == b""
    with JsonlAppender(path) as appender:
        appender.write({"a": 1})
    assert list(read_jsonl(path)) == [{"a": 1}]


def test_appender_repairs_before_appending(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a"')
    with JsonlAppender(path) as appender:
        assert appender.repaired_bytes == 4
        appender.write({"a": 2})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]


def test_damaged_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(UserError, match=r"a.jsonl:2: damaged run file"):
        list(read_jsonl(path))


def test_atomic_json(tmp_path):
    path = tmp_path / "c.json"
    assert read_json(path) is None
    write_json_atomic(path, {"k": "值"})
    assert path.read_text(encoding="utf-8") == '{\n  "k": "值"\n}\n'
    write_json_atomic(path, {"k": 2})
    assert read_json(path) == {"k": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]
    path.write_text("[1]")
    with pytest.raises(UserError, match="expected a JSON object"):
        read_json(path)
    path.write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        read_json(path)


def test_stats_add_up_over_resumed_sessions(tmp_path):
    from selfinstruct.runs.layout import save_stats

    first = {"kept": 3, "requests": {"sent": 4, "failed": 1}, "rejected": {"similarity": 2},
             "elapsed_seconds": 1.5, "interrupted": True}
    second = {"kept": 5, "requests": {"sent": 2, "failed": 0}, "rejected": {"too_short": 1},
              "elapsed_seconds": 0.25, "interrupted": False}
    save_stats(tmp_path, "generate", first)
    save_stats(tmp_path, "classify", {"done": 1})
    save_stats(tmp_path, "generate", second)
    saved = read_json(tmp_path / "stats.json")
    assert saved["generate"] == {
        "kept": 5, "requests": {"sent": 6, "failed": 1},
        "rejected": {"similarity": 2, "too_short": 1}, "elapsed_seconds": 1.75,
        "interrupted": False,
    }
    assert saved["classify"] == {"done": 1}
