"""Load and validate seed tasks from the formats people already have.

Accepted: Self-Instruct JSONL (``id``, ``name``, ``instruction``, ``instances``,
``is_classification``, as in the original ``seed_tasks.jsonl``), Alpaca JSON or JSONL
(``instruction``, ``input``, ``output``), and plain text with one instruction per line.
A bad file fails before any request is paid for, with ``file:line: what is wrong``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.runs.bundled import data_dir
from selfinstruct.runs.readers import first_significant_byte, iter_objects, json_type

#: A seed line longer than this is almost certainly not a seed task (a dump, a binary).
MAX_LINE_BYTES = 1_000_000


@dataclass(frozen=True)
class Instance:
    """One input/output example of a task (input is "" when the task needs none)."""

    input: str
    output: str


@dataclass(frozen=True)
class SeedTask:
    """A human-written task the pool grows from."""

    id: str
    instruction: str
    instances: tuple[Instance, ...] = ()
    name: str = ""
    is_classification: bool | None = None


def bundled_seed_path(language: Language) -> Path:
    """Our own seed set for ``language``."""
    return data_dir("seed_tasks") / f"{language}.jsonl"


def load_seeds(path: Path) -> list[SeedTask]:
    """Read a seed file in any supported format and validate every task."""
    first = first_significant_byte(path)
    if first is None:
        raise UserError(f"{path}: the seed file is empty")
    # A .json/.jsonl file is JSON even when its first line is damaged: read as plain
    # text, every raw line would silently become a seed task.
    if first in (b"[", b"{") or path.suffix.lower() in (".json", ".jsonl"):
        records = list(iter_objects(path, max_line_bytes=MAX_LINE_BYTES))
    else:
        records = _text_records(path, _read_text(path))
    tasks = [_to_task(path, line, record, index) for index, (line, record) in enumerate(records)]
    if not tasks:
        raise UserError(f"{path}: no seed tasks found")
    _check_unique_ids(path, tasks, [line for line, _ in records])
    return tasks


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 text (save the file as UTF-8)") from None


def _text_records(path: Path, text: str) -> list[tuple[int, Any]]:
    records: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise UserError(f"{path}:{number}: line is longer than {MAX_LINE_BYTES:,} bytes")
        if line.strip():
            records.append((number, {"instruction": line.strip()}))
    return records


def _to_task(path: Path, line: int, record: Any, index: int) -> SeedTask:
    where = f"{path}:{line}"
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {json_type(record)}")
    instruction = record.get("instruction")
    if instruction is None:
        raise UserError(f"{where}: missing 'instruction'")
    if not isinstance(instruction, str):
        raise UserError(f"{where}: 'instruction' must be a string")
    if not instruction.strip():
        raise UserError(f"{where}: empty 'instruction'")
    return SeedTask(
        id=str(record.get("id", f"seed_{index}")),
        name=str(record.get("name", "")),
        instruction=instruction.strip(),
        instances=tuple(_instances(where, record)),
        is_classification=_optional_bool(where, record.get("is_classification")),
    )


def _instances(where: str, record: dict[str, Any]) -> Iterator[Instance]:
    if "instances" not in record:
        if "output" in record or "input" in record:
            yield Instance(_string(where, record, "input"), _string(where, record, "output"))
        return
    instances = record["instances"]
    if not isinstance(instances, list):
        raise UserError(f"{where}: 'instances' must be a list of {{input, output}} objects")
    for instance in instances:
        if not isinstance(instance, dict):
            raise UserError(f"{where}: each instance must be an object with input and output")
        yield Instance(_string(where, instance, "input"), _string(where, instance, "output"))


def _string(where: str, record: dict[str, Any], key: str) -> str:
    value = record.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{where}: '{key}' must be a string")
    return value.strip()


def _optional_bool(where: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise UserError(f"{where}: 'is_classification' must be true or false")


def _check_unique_ids(path: Path, tasks: list[SeedTask], lines: list[int]) -> None:
    seen: dict[str, int] = {}
    for task, line in zip(tasks, lines, strict=True):
        if task.id in seen:
            raise UserError(
                f"{path}:{line}: duplicate id {task.id!r} (first used on line {seen[task.id]})"
            )
        seen[task.id] = line
