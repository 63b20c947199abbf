"""Append-only JSONL run files that survive crashes.

Every record is written as one line and flushed at once, so a ``kill -9`` loses at
most the line being written. When a run is resumed, a torn last line (a write cut
short) is repaired before anything is read or appended: a complete record missing only
its newline is kept, a partial one is dropped. Small whole-file documents (config,
stats) are replaced atomically, never rewritten in place. A write that fails (a full
disk, a read-only or unwritable directory) stops the run with one clear error; at
worst it leaves a torn last line, which the next run repairs.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, TextIO

import jsonlines

from selfinstruct.errors import UserError

_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _write_error(path: Path, err: OSError) -> UserError:
    """What to tell the user when writing ``path`` failed."""
    return UserError(
        f"{path}: cannot write ({err.strerror or err}); what was written before is "
        "intact. Free some disk space or make the directory writable, then run the "
        "same command again"
    )


def _sync(fp: IO[Any]) -> None:
    """Flush ``fp`` to stable storage where its file can be synced.

    A file that cannot be synced (a pipe, a terminal, a device such as ``/dev/full``)
    answers ``fsync`` with EINVAL or ENOTSUP; its bytes were already handed over by
    ``flush``, so that answer is not a failed write and must not stop a run.
    """
    fp.flush()
    try:
        os.fsync(fp.fileno())
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` into a :class:`UserError`."""
    try:
        yield
    except OSError as err:
        raise _write_error(path, err) from None


def repair_torn_tail(path: Path) -> int:
    """Make ``path`` end with a complete line; return how many bytes were dropped."""
    if not path.exists():
        return 0
    with path.open("rb+") as fp:
        size = fp.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fp.seek(size - 1)
        if fp.read(1) == b"\n":
            return 0
        start = _last_line_start(fp, size)
        fp.seek(start)
        tail = fp.read()
        if _is_json_object(tail):
            fp.write(b"\n")
            return 0
        fp.truncate(start)
        return size - start


def _last_line_start(fp: BinaryIO, size: int) -> int:
    """Offset just after the last newline before ``size`` (0 when there is none)."""
    block = 65536
    end = size
    while end > 0:
        begin = max(0, end - block)
        fp.seek(begin)
        chunk = fp.read(end - begin)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        end = begin
    return 0


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a run file; a damaged line is an error naming file and line."""
    if not path.exists():
        return
    with path.open("rb") as fp, jsonlines.Reader(fp, loads=json.loads) as reader:
        try:
            yield from reader.iter(type=dict, skip_empty=True)
        except jsonlines.InvalidLineError as err:
            raise UserError(
                f"{path}:{err.lineno}: damaged run file ({err}); "
                "move the line out of the way or start a new --out directory"
            ) from None


class JsonlAppender:
    """Appends records to a JSONL file, one flushed line each, after repairing its tail."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with _writing(path):
            self.repaired_bytes = repair_torn_tail(path)
            self._fp = path.open("a", encoding="utf-8")
        self._writer = jsonlines.Writer(self._fp, flush=True, dumps=_dumps)
        self._failed = False

    def write(self, record: dict[str, Any]) -> None:
        """Append one record; it is on disk (in the OS cache) when this returns."""
        try:
            self._writer.write(record)
        except OSError as err:
            self._failed = True
            raise _write_error(self.path, err) from None

    def write_many(self, records: list[dict[str, Any]]) -> None:
        """Append several records with one ``write`` call, so a process killed meanwhile
        leaves all of them or none (a write to a local file is not cut by a signal)."""
        if not records:
            return
        data = "".join(_dumps(record) + "\n" for record in records).encode("utf-8")
        try:
            self._fp.flush()
            written = 0
            while written < len(data):
                written += os.write(self._fp.fileno(), data[written:])
        except OSError as err:
            self._failed = True
            raise _write_error(self.path, err) from None

    def close(self) -> None:
        """Flush to stable storage and close; the file is closed even when that fails.

        After a failed write, closing fails the same way; that error was already raised
        (and is stopping the run), so it is not raised a second time over it.
        """
        if self._fp.closed:
            return
        try:
            try:
                _sync(self._fp)
            finally:
                self._writer.close()
                self._fp.close()
        except OSError as err:
            if not self._failed:
                raise _write_error(self.path, err) from None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_atomic(path: Path, write: Callable[[TextIO], object]) -> None:
    """Write a whole file beside ``path`` and rename it over: readers never see half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with _writing(path):
        with tmp.open("w", encoding="utf-8") as fp:
            write(fp)
            _sync(fp)
        os.replace(tmp, path)


def write_json_atomic(path: Path, data: object) -> None:
    """Replace ``path`` with ``data`` as indented JSON."""
    write_atomic(path, lambda fp: fp.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n"))


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a whole-file JSON document, or None when it does not exist."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def prepare_out_dir(path: Path) -> Path:
    """Create the run directory, turning permission problems into a clear error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{path}: cannot create the run directory ({err.strerror})") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"{path}: the run directory is not writable")
    return path
