"""Near-duplicate removal for any instruction file: the library behind ``selfinstruct dedup``.

Records are kept greedily in file order: a record survives when its ROUGE-L F1 against
every record kept before it (and every text of an optional ``--against`` file, e.g. the
seed tasks) is at most the threshold, exactly the rule the bootstrap loop applies to
new instructions, so ``dedup`` can clean data made elsewhere or re-filter a run at a
different threshold.

The input is read twice: once to validate it completely (so a bad line 90,000 fails
before any output is written), then to filter it. Kept records are written as JSON
Lines, one line each, flushed as they go, unchanged apart from formatting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import iter_objects, json_type
from selfinstruct.similarity.index import TOKENIZERS, SimilarityIndex

__all__ = ["DedupSummary", "Record", "count_records", "dedup_file", "iter_records"]



@dataclass(frozen=True)
class DedupSummary:
    """What a dedup run did, for the CLI to print."""

    read: int
    kept: int
    dropped: int
    elapsed_seconds: float
    against: int = 0  # texts loaded from the --against file

    @property
    def records_per_second(self) -> float:
        """Throughput, for the closing line of the CLI."""
        return self.read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


@dataclass(frozen=True)
class Record:
    """One input object, where it came from, and the text it is compared on."""

    line: int
    data: dict[str, Any]
    text: str


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def iter_records(path: Path, field: str = "instruction") -> Iterator[Record]:
    """Yield the objects of a JSONL file or a JSON array file, in order, with the line
    each starts on; raise :class:`UserError` (``file:line: what is wrong``) on bad input.

    The format is decided by the first non-blank character: ``[`` means a JSON array.
    JSON Lines files are streamed line by line, so their size is not limited by memory.
    """
    for line, value in iter_objects(path):
        yield _record(path, line, value, field)


def count_records(path: Path, field: str = "instruction") -> int:
    """Validate the whole file and return how many records it holds (a progress total)."""
    return sum(1 for _ in iter_records(path, field))


def _record(path: Path, line: int, value: Any, field: str) -> Record:
    """Check that a parsed value is an object with a string ``field``."""
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    if field not in value:
        fields = ", ".join(sorted(value)) or "none"
        raise UserError(f"{path}:{line}: no {field!r} field (fields: {fields}); "
                        "use --field to choose the text field")
    text = value[field]
    if not isinstance(text, str):
        raise UserError(f"{path}:{line}: field {field!r} is {json_type(text)}, "
                        "expected a string")
    return Record(line, value, text)


# ---------------------------------------------------------------------------
# Filtering
# ---------------------------------------------------------------------------


def dedup_file(
    input_path: Path,
    output_path: Path,
    *,
    threshold: float = 0.7,
    tokenizer: str = "multilingual",
    field: str = "instruction",
    against: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DedupSummary:
    """Write to ``output_path`` (JSONL, replaced if it exists) every record of
    ``input_path`` whose ROUGE-L F1 against all records kept before it and all texts of
    ``against`` is at most ``threshold``.

    ``progress(read, kept)`` is called after each record. Everything is validated before
    the output is opened, so bad input never leaves a partial output file.
    """
    started = time.perf_counter()
    _check_options(input_path, output_path, threshold, tokenizer, against)
    count_records(input_path, field)
    index = SimilarityIndex(tokenizer=tokenizer)
    if against is not None:
        for reference in iter_records(against, field):
            index.add(reference.text)
    reference_count = len(index)
    read = kept = 0
    with _open_output(output_path) as out:
        for record in iter_records(input_path, field):
            read += 1
            if not index.exceeds(record.text, threshold):
                index.add(record.text)
                out.write(json.dumps(record.data, ensure_ascii=False) + "\n")
                out.flush()
                kept += 1
            if progress is not None:
                progress(read, kept)
    return DedupSummary(read=read, kept=kept, dropped=read - kept,
                        elapsed_seconds=time.perf_counter() - started, against=reference_count)


def _check_options(input_path: Path, output_path: Path, threshold: float, tokenizer: str,
                   against: Path | None) -> None:
    """Reject option combinations that cannot work, before touching any file."""
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--similarity-threshold must be between 0 and 1, got {threshold}")
    if tokenizer not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {tokenizer!r}; use one of: "
                        + ", ".join(sorted(TOKENIZERS)))
    for source, flag in ((input_path, "the input"), (against, "the --against file")):
        if source is not None and _same_file(source, output_path):
            raise UserError(f"output {output_path} is {flag}; write to a different file")
    if output_path.is_dir():
        raise UserError(f"output {output_path} is a directory; give a file name")


def _open_output(path: Path) -> TextIO:
    """Open the output for writing, turning OS errors into a message with the path."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through links or relative paths)."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False
