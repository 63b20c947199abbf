"""Distil: a teacher model's answer for every row of the user's table, with their prompt.

The bulk-annotation job people otherwise write by hand with pandas and a process pool:
each row fills the user's template, goes to the model with their system prompt, stop
strings and provider fields, and the answer is parsed (text, JSON, or "conclusion ####
reasoning") into records that keep every column of the row. Kept records go to
``distilled.jsonl``, each rejected answer with its raw text and the filter to
``rejected.jsonl``, failed requests to ``failures.jsonl``. A row is done once an answer
for it is recorded either way, so a resumed run (after Ctrl-C or ``kill -9``) asks only
for what is missing, keyed by ``(id, sample)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.thinking import ThinkingStyle, ThinkingSwitch
from selfinstruct.runs.layout import DISTILLED_FILE, REJECTED_FILE, save_config_section
from selfinstruct.runs.rows import Row
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import prepare_out_dir, read_jsonl
from selfinstruct.stages.per_record import (
    StageFiles,
    StageSettings,
    StageStats,
    run_stage,
    stage_files,
)
from selfinstruct.text.row_answers import AnswerFormat, ParsedAnswer, ParseMode, parse_answer
from selfinstruct.text.row_template import RowTemplate

#: Fields every distilled record has besides the row's columns and the parsed fields.
RESERVED = ("id", "item", "sample", "prompt", "response", "reasoning", "model",
            "finish_reason", "usage")


@dataclass(frozen=True)
class DistillSettings:
    """Everything that decides what ``distill`` sends and keeps.

    Defaults are the articles' bulk-annotation settings: 2048 answer tokens, the
    server's own temperature unless one is given, one answer per row.
    """

    #: The user's prompt template (``{column}``, ``{row}``, ``{questions}``).
    user_template: Path
    #: Question templates, one a line, listed where the template says ``{questions}``.
    questions: Path | None = None
    system: str | None = None
    sheet: str | None = None
    fill_na: str | None = None
    id_field: str | None = None
    limit: int | None = None
    sample: int | None = None
    seed: int = 0
    shard: Shard = EVERYTHING
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    max_tokens: int = 2048
    samples: int = 1
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    thinking: bool | None = None
    #: How the thinking switch is sent; ``auto`` means ``template`` here (the CLI picks
    #: ``top-level`` for DashScope and SiliconFlow URLs before the run).
    thinking_style: ThinkingStyle = "auto"
    thinking_budget: int | None = None
    parse: ParseMode = "text"
    #: ``--map``: new field name ← JSON key (``parse="json"`` only).
    renames: Mapping[str, str] = field(default_factory=dict)
    separator: str = "####"

    def __post_init__(self) -> None:
        checks = [
            (self.samples >= 1, "--samples must be at least 1"),
            (self.max_tokens >= 16, "--max-tokens must be at least 16"),
            (self.limit is None or self.limit >= 1, "--limit must be at least 1"),
            (self.sample is None or self.sample >= 1, "--sample must be at least 1"),
            (self.temperature is None or 0.0 <= self.temperature <= 2.0,
             "--temperature must be between 0 and 2"),
            (bool(self.separator), "--separator must not be empty"),
            (not self.renames or self.parse == "json", "--map renames JSON keys; it needs "
             "--parse json"),
            (all(self.stop), "--stop must not be empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def answer_format(self) -> AnswerFormat:
        """How the answers are read."""
        return AnswerFormat(self.parse, dict(self.renames), self.separator, self.stop)

    def to_json(self) -> dict[str, Any]:
        """The settings as ``config.json`` keeps them."""
        data = asdict(self)
        data.update(user_template=str(self.user_template),
                    questions=str(self.questions) if self.questions else None,
                    shard=f"{self.shard.index}/{self.shard.count}",
                    stop=list(self.stop), extra_body=dict(self.extra_body),
                    renames=dict(self.renames))
        return data


@dataclass(frozen=True)
class DistillJob:
    """A distill run, checked and ready: the rows to send (with their ids), the compiled
    template, and how the thinking switch goes with each request."""

    source: Path
    settings: DistillSettings
    rows: list[tuple[str, Row]]
    template: RowTemplate
    switch: ThinkingSwitch
    #: Record key of each input column (``row_NAME`` where a column's name is taken).
    keys: Mapping[str, str]
    #: What ``config.json`` gets (the settings plus the template texts' fingerprints).
    config: Mapping[str, Any]

    def render(self, row: Row) -> str:
        """The user's template filled from ``row``: the prompt records keep."""
        return self.template.render(row.values)

    def request(self, row: Row, prompt: str | None = None) -> Request:
        """The request for one row (its rendered ``prompt``, if already made), the same
        for each of its samples; a ``/think`` soft switch goes after the prompt."""
        settings = self.settings
        text = self.render(row) if prompt is None else prompt
        return Request(
            prompt=text + self.switch.prompt_suffix,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=None,
            stop=settings.stop,
            enable_thinking=self.switch.enable_thinking,
            system=settings.system,
            extra_body={**self.switch.extra_body, **settings.extra_body},
        )

    def undone(self, out_dir: Path) -> list[tuple[str, Row, int]]:
        """Each ``(id, row, sample)`` with no answer recorded in ``out_dir`` yet."""
        done = {(r["id"], r["sample"]) for r in read_jsonl(out_dir / DISTILLED_FILE)}
        done.update((r["id"], r["sample"]) for r in read_jsonl(out_dir / REJECTED_FILE)
                    if r.get("stage") == "distill")
        return [(key, row, sample) for key, row in self.rows
                for sample in range(self.settings.samples) if (key, sample) not in done]


async def distill_run(
    job: DistillJob,
    out_dir: Path,
    backend: Backend,
    stage: StageSettings,
    stop: asyncio.Event | None = None,
    progress: Callable[[StageStats], None] | None = None,
) -> StageStats:
    """Ask for every missing ``(row, sample)`` of ``job``; resumable by ``(id, sample)``.

    Build the job with :func:`selfinstruct.stages.distill_setup.load_distill_job`, which
    checks the template against the columns before anything is sent.
    """
    answer_format = job.settings.answer_format()
    prepare_out_dir(out_dir)
    save_config_section(out_dir, "distill", {**job.config, "model": backend.name})
    with stage_files(out_dir, DISTILLED_FILE) as files:
        pending = [{"id": key, "row": row, "sample": sample}
                   for key, row, sample in job.undone(out_dir)]
        total = len(job.rows) * job.settings.samples
        stats = StageStats("distill", total=total, done_before=total - len(pending))

        def make_request(item: dict[str, Any]) -> Request:
            item["prompt"] = job.render(item["row"])
            return job.request(item["row"], item["prompt"])

        def handle(item: dict[str, Any], completion: Completion) -> None:
            parsed = parse_answer(completion.text, completion.reasoning,
                                  completion.finish_reason, answer_format)
            write_answer(files, stats, job, item, completion, parsed, backend.name)

        return await run_stage(
            pending, backend=backend, settings=stage, make_request=make_request,
            handle=handle, files=files, stats=stats, stop=stop or asyncio.Event(),
            progress=progress,
        )


def write_answer(files: StageFiles, stats: StageStats, job: DistillJob, item: dict[str, Any],
                 completion: Completion, parsed: ParsedAnswer, backend_name: str) -> None:
    """Record one answer: its kept items in one write, then its rejections in one write.

    One write each, so ``kill -9`` leaves an answer's kept records all there or none of
    them (a resumed run asks again only in the second case, so no ``(id, item, sample)``
    is written twice); the rejections of an answer that also kept items are written
    after, and are the only thing a kill at that instant can cost.
    """
    row: Row = item["row"]
    meta = {"prompt": item["prompt"], "response": completion.text, "reasoning": parsed.reasoning,
            "model": completion.model or backend_name,
            "finish_reason": completion.finish_reason, "usage": asdict(completion.usage)}
    kept = [distilled_record(job.keys, row, item["id"], index, item["sample"], fields, meta)
            for index, fields in parsed.items]
    rejected = [
        {"stage": "distill", "filter": rejection.filter, "detail": rejection.detail,
         "id": item["id"], **({"item": rejection.item} if rejection.item is not None else {}),
         "sample": item["sample"], **meta}
        for rejection in parsed.rejections
    ]
    files.results.write_many(kept)
    files.rejected.write_many(rejected)
    stats.seen["records"] += len(kept)
    for rejection in parsed.rejections:
        stats.rejected[rejection.filter] += 1


def distilled_record(keys: Mapping[str, str], row: Row, key: str, index: int | None,
                     sample: int, fields: Mapping[str, Any],
                     meta: Mapping[str, Any]) -> dict[str, Any]:
    """One output record: the row's columns, id (+ item) and sample, the parsed fields,
    then the prompt, raw answer, reasoning, model, finish reason and usage.

    A parsed key that is one of ours (``id``, ``response`` …) is kept as ``parsed_KEY``,
    and a column whose name a parsed key takes as ``row_NAME``: nothing overwrites
    anything.
    """
    parsed = {(f"parsed_{name}" if name in RESERVED else name): value
              for name, value in fields.items()}
    record: dict[str, Any] = {}
    for column, value in row.values.items():
        name = keys[column]
        record[f"row_{name}" if name in parsed else name] = value
    record["id"] = key
    if index is not None:
        record["item"] = index
    record["sample"] = sample
    record.update(parsed)
    record.update(meta)
    return record
