"""Prepare a distill run: read the rows, pick them, give them ids, check the template.

Everything here happens before a model is loaded or a request sent, so a wrong column
name, a duplicate id or a changed template on resume is one clear error up front.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm.thinking import thinking_switch
from selfinstruct.runs.layout import CONFIG_FILE
from selfinstruct.runs.rows import Row, RowTable, is_empty, read_rows
from selfinstruct.runs.store import read_json
from selfinstruct.stages.distill import RESERVED, DistillJob, DistillSettings
from selfinstruct.text.row_template import RowTemplate, compile_row_template

#: Settings that change what a record means; a resume must not change them silently.
RECORD_DEFINING = ("input", "template_sha256", "questions_sha256", "system", "parse",
                   "renames", "separator", "id_field", "fill_na", "sheet")


def load_distill_job(source: Path, settings: DistillSettings, out_dir: Path | None = None,
                     *, force: bool = False) -> DistillJob:
    """Read and select the rows, compile the template against their columns, and (with
    ``out_dir``) refuse to resume a run made with other record-defining settings."""
    table = read_rows(source, sheet=settings.sheet, fill_na=settings.fill_na)
    id_field = settings.id_field or ("id" if "id" in table.columns else None)
    if settings.id_field is not None and settings.id_field not in table.columns:
        raise UserError(f"--id-field {settings.id_field!r} is not a column of {source} "
                        f"(columns: {', '.join(table.columns)})")
    rows = select(with_ids(table, id_field), settings)
    template_text = _read_text(settings.user_template, "--user-template")
    questions_text = _read_text(settings.questions, "--questions") if settings.questions else ""
    template = _compile(settings, source, table.columns, template_text, questions_text)
    switch = thinking_switch(settings.thinking,
                             "template" if settings.thinking_style == "auto"
                             else settings.thinking_style,
                             settings.thinking_budget)
    config = {
        **settings.to_json(),
        "input": str(source),
        "id_field": id_field,
        "template_sha256": _sha256(template_text),
        "questions_sha256": _sha256(questions_text) if settings.questions else None,
    }
    if out_dir is not None and not force:
        check_resume(out_dir, config)
    keys = column_keys(table.columns, id_field)
    return DistillJob(source, settings, rows, template, switch, keys, config)


def with_ids(table: RowTable, id_field: str | None) -> list[tuple[str, Row]]:
    """Each row with its id: the ``id_field`` value, else its position (``row0`` …) in the
    file, which stays the same whatever ``--limit``, ``--sample`` or ``--shard`` pick."""
    if id_field is None:
        return [(f"row{number}", row) for number, row in enumerate(table.rows)]
    rows: list[tuple[str, Row]] = []
    seen: dict[str, str] = {}
    for row in table.rows:
        value = row.values.get(id_field)
        if is_empty(value):
            raise UserError(f"{row.where}: no {id_field!r} (the id column); every row needs "
                            "one, or pass --id-field another column")
        key = str(value)
        if key in seen:
            raise UserError(f"{row.where}: duplicate id {key!r} (also at {seen[key]}); ids "
                            "must be unique so a resumed run knows which rows are done")
        seen[key] = row.where
        rows.append((key, row))
    return rows


def select(rows: Sequence[tuple[str, Row]], settings: DistillSettings) -> list[tuple[str, Row]]:
    """``--limit`` (the first N), then ``--sample`` (N of those, by ``--seed``, in file
    order), then ``--shard``: the same rows on every machine and every resume."""
    chosen = list(rows[: settings.limit] if settings.limit is not None else rows)
    if settings.sample is not None and settings.sample < len(chosen):
        picked = sorted(random.Random(settings.seed).sample(range(len(chosen)),
                                                            settings.sample))
        chosen = [chosen[i] for i in picked]
    return settings.shard.select(chosen)


def column_keys(columns: Sequence[str], id_field: str | None) -> dict[str, str]:
    """The record key of each column: its name, or ``row_NAME`` when that is one of the
    record's own fields (an ``id`` column that is the id keeps its name)."""
    return {column: (f"row_{column}" if column in RESERVED and column != id_field
                     else column) for column in columns}


def check_resume(out_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to add records made another way to an existing run (``--force`` skips this)."""
    saved = (read_json(out_dir / CONFIG_FILE) or {}).get("distill")
    if not isinstance(saved, dict):
        return
    for key in RECORD_DEFINING:
        if key in saved and saved[key] != config[key]:
            raise UserError(
                f"{out_dir}: this run was made with {key}={saved[key]!r}, now "
                f"{key}={config[key]!r}; resuming would mix two kinds of records. Use the "
                "same settings, a new -o directory, or --force to resume anyway")


def _compile(settings: DistillSettings, source: Path, columns: Sequence[str],
             template_text: str, questions_text: str) -> RowTemplate:
    if not template_text.strip():
        raise UserError(f"{settings.user_template}: the template is empty")
    questions = [(number, line) for number, line
                 in enumerate(questions_text.splitlines(), start=1) if line.strip()]
    if settings.questions is not None and not questions:
        raise UserError(f"{settings.questions}: no questions (one template a line)")
    return compile_row_template(template_text, str(settings.user_template), columns,
                                str(source), questions, str(settings.questions or ""))


def _read_text(path: Path | None, flag: str) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file ({flag})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file ({flag})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8 (save the file as UTF-8)") from None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_extra_body(text: str | None) -> dict[str, Any]:
    """``--extra-body`` JSON as a dict: the fields to merge into every request."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"--extra-body is not valid JSON ({err.msg} at column {err.colno}); "
                        """write e.g. --extra-body '{"repetition_penalty": 1.05}'""") from None
    if not isinstance(value, dict):
        raise UserError("--extra-body must be a JSON object of request fields")
    return value


def system_prompt(text: str | None, path: Path | None) -> str | None:
    """The system message from ``--system`` or ``--system-file`` (not both)."""
    if text is not None and path is not None:
        raise UserError("give the system prompt with --system or --system-file, not both")
    if path is not None:
        text = _read_text(path, "--system-file").strip()
        if not text:
            raise UserError(f"{path}: the system prompt is empty")
    return text or None
