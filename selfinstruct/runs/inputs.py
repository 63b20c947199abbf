"""Read the prompts to send to a thinking model, from whatever the user already has.

A run directory (its instances, else its instructions), Alpaca JSON/JSONL, ShareGPT
(the first human turn), any JSON/JSONL with a chosen text field, or CSV with a header
row (in whatever encoding it was saved). Every prompt gets a stable id, so a resumed
``reason`` run knows what is done.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.layout import INSTANCES_FILE, INSTRUCTIONS_FILE
from selfinstruct.runs.readers import check_unique_ids, iter_objects, json_type
from selfinstruct.runs.store import read_jsonl
from selfinstruct.text.encodings import decode

_HUMAN_ROLES = ("human", "user")


@dataclass(frozen=True)
class PromptRecord:
    """One prompt: instruction, optional input, optional reference answer."""

    id: str
    instruction: str
    input: str = ""
    reference: str | None = None


def load_prompts(
    source: Path, *, field: str = "instruction", reference_field: str | None = None
) -> list[PromptRecord]:
    """Every prompt of ``source``; a bad record is an error naming file and line."""
    if source.is_dir():
        prompts = list(_run_dir_prompts(source))
    elif source.suffix.lower() == ".csv":
        prompts = list(_csv_prompts(source, field, reference_field))
    else:
        prompts = [
            _json_prompt(source, line, value, field, reference_field, f"row{index}")
            for index, (line, value) in enumerate(iter_objects(source))
        ]
    if not prompts:
        raise UserError(f"{source}: no prompts found")
    check_unique_ids(source, (prompt.id for prompt in prompts),
                     "a resumed run knows which prompts are done")
    return prompts


def _run_dir_prompts(run_dir: Path) -> Iterator[PromptRecord]:
    if (run_dir / INSTANCES_FILE).exists():
        for task in read_jsonl(run_dir / INSTANCES_FILE):
            for number, instance in enumerate(task["instances"]):
                yield PromptRecord(f"{task['id']}#{number}", task["instruction"], instance["input"])
        return
    if not (run_dir / INSTRUCTIONS_FILE).exists():
        raise UserError(f"{run_dir}: not a run directory (no {INSTRUCTIONS_FILE})")
    for task in read_jsonl(run_dir / INSTRUCTIONS_FILE):
        yield PromptRecord(task["id"], task["instruction"], task.get("input", ""))


def _csv_prompts(path: Path, field: str, reference_field: str | None) -> Iterator[PromptRecord]:
    """The rows of a CSV file in the encoding Excel saved it in (found out, as distill
    does without ``--encoding``)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    reader = csv.DictReader(io.StringIO(decode(raw, None, str(path)).text, newline=""))
    columns = reader.fieldnames or []
    for name in (field, reference_field):
        if name is not None and name not in columns:
            raise UserError(f"{path}:1: no {name!r} column (columns: "
                            f"{', '.join(columns) or 'none'}); use --field")
    for index, row in enumerate(reader):
        yield _prompt(path, reader.line_num, {k: v for k, v in row.items() if k},
                      field, reference_field, f"row{index}")


def _json_prompt(
    path: Path, line: int, value: Any, field: str, reference_field: str | None, fallback: str
) -> PromptRecord:
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    for key in ("conversations", "messages"):
        if field not in value and isinstance(value.get(key), list):
            return _conversation_prompt(path, line, value, key, reference_field, fallback)
    return _prompt(path, line, value, field, reference_field, fallback)


def _conversation_prompt(
    path: Path,
    line: int,
    value: dict[str, Any],
    key: str,
    reference_field: str | None,
    fallback: str,
) -> PromptRecord:
    """ShareGPT / messages: the first human turn is the prompt; its answer is not used."""
    for turn in value[key]:
        if isinstance(turn, dict) and (turn.get("from") or turn.get("role")) in _HUMAN_ROLES:
            text = turn.get("value", turn.get("content"))
            if isinstance(text, str) and text.strip():
                reference = _reference(path, line, value, reference_field)
                return PromptRecord(str(value.get("id", fallback)), text.strip(), "", reference)
    raise UserError(f"{path}:{line}: no human/user turn with text in {key!r}")


def _prompt(
    path: Path,
    line: int,
    value: dict[str, Any],
    field: str,
    reference_field: str | None,
    fallback: str,
) -> PromptRecord:
    """A prompt from a flat record; without an ``id`` its position names it."""
    text = value.get(field)
    if not isinstance(text, str) or not text.strip():
        fields = ", ".join(sorted(value)) or "none"
        raise UserError(f"{path}:{line}: no text in field {field!r} (fields: {fields}); "
                        "use --field to choose it")
    extra = value.get("input", "")
    return PromptRecord(
        str(value.get("id", fallback)),
        text.strip(),
        extra.strip() if isinstance(extra, str) else "",
        _reference(path, line, value, reference_field),
    )


def _reference(
    path: Path, line: int, value: dict[str, Any], reference_field: str | None
) -> str | None:
    if reference_field is None:
        return None
    reference = value.get(reference_field)
    if reference is None or isinstance(reference, (dict, list)):
        raise UserError(f"{path}:{line}: no usable {reference_field!r} (--reference-field)")
    return str(reference)
