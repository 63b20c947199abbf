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
import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request, template_kwargs
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.llm.thinking import ThinkingStyle, ThinkingSwitch, resolve_style, thinking_switch
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DISTILLED_FILE,
    REJECTED_FILE,
    save_config_section,
)
from selfinstruct.runs.rows import Row, RowTable, is_empty, read_rows
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import prepare_out_dir, read_json, read_jsonl
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.base import check_resume as shared_check_resume
from selfinstruct.stages.per_record import (
    StageFiles,
    StageSettings,
    StageStats,
    run_stage,
    stage_files,
)
from selfinstruct.text.row_answers import (
    AnswerFormat,
    ParsedAnswer,
    ParseMode,
    label_field,
    parse_answer,
    parse_renames,
)
from selfinstruct.text.row_template import RowTemplate, compile_row_template

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
    #: ``--labels``: the answers allowed (empty: any); an item with another label is
    #: rejected. Which field is the label: :func:`row_answers.label_field`.
    labels: tuple[str, ...] = ()
    #: ``--items``: how many items each JSON answer must hold, or ``"questions"``: one
    #: per question line of ``questions``; an answer with another count is rejected.
    items: int | Literal["questions"] | None = None

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
            (all(label.strip() for label in self.labels),
             "--labels: a label is empty; write them comma-separated, e.g. --labels pos,neg"),
            (len(set(self.labels)) == len(self.labels), "--labels lists a label twice"),
            (self.items is None or self.items == "questions"
             or (type(self.items) is int and self.items >= 1),
             "--items must be a number of at least 1, or questions"),
            (self.items is None or self.parse == "json", "--items counts the items of a JSON "
             "list; it needs --parse json"),
            (self.items != "questions" or self.questions is not None,
             "--items questions counts the lines of --questions; give --questions too"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @classmethod
    def of(cls, values: Mapping[str, Any], spec: BackendSpec) -> DistillSettings:
        """The settings from keywords named like ``distill``'s flags, as the CLI and the
        library both give them: ``system_file`` read into ``system``, ``map`` ({new: key}
        or ``NEW=KEY`` strings) into ``renames``, ``stop`` one string or several,
        ``extra_body`` a dict or its JSON, ``thinking`` True/False or ``on``/``off``,
        ``thinking_style`` ``auto`` made concrete for ``spec``'s server. A keyword that is
        not a flag of ``distill`` is a ``TypeError`` naming it."""
        own = dict(values)
        system_file = own.pop("system_file", None)
        renames = own.pop("map", None)
        unknown = sorted(set(own) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"distill() got an unexpected keyword argument {unknown[0]!r}")
        if own.get("user_template") is None:
            raise TypeError("distill() needs user_template=, the prompt template file")
        own.update(
            user_template=Path(own["user_template"]),
            questions=Path(own["questions"]) if own.get("questions") else None,
            system=system_prompt(own.get("system"),
                                 Path(system_file) if system_file is not None else None),
            shard=Shard.of(own.get("shard")),
            stop=_strings(own.get("stop")),
            extra_body=_extra_body(own.get("extra_body")),
            thinking=_switch(own.get("thinking")),
            thinking_style=resolve_style(own.get("thinking_style", "auto"), spec.kind,
                                         spec.base_urls),
            renames=_renames(renames if renames is not None else own.get("renames")),
            labels=_labels(own.get("labels")),
            items=_items(own.get("items")),
        )
        return cls(**own)

    def answer_format(self, questions: int = 0) -> AnswerFormat:
        """How the answers are read (``questions``: how many question lines there are,
        the count ``items="questions"`` asks for)."""
        items = questions if self.items == "questions" else self.items
        return AnswerFormat(self.parse, dict(self.renames), self.separator, self.stop,
                            self.labels, items)

    def to_json(self) -> dict[str, Any]:
        """The settings as ``config.json`` keeps them."""
        data = asdict(self)
        data.update(user_template=str(self.user_template),
                    questions=str(self.questions) if self.questions else None,
                    shard=f"{self.shard.index}/{self.shard.count}",
                    stop=list(self.stop), extra_body=dict(self.extra_body),
                    renames=dict(self.renames), labels=list(self.labels))
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
    #: How many question lines ``--questions`` has (0 without it).
    questions: int = 0
    out_dir: Path = field(default_factory=Path)
    spec: BackendSpec = field(default_factory=BackendSpec)
    name: str = "distill"

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

    def plan(self) -> list[str]:
        """One request per row and sample without an answer yet: the count, the system
        prompt, the first rendered prompt and the request's other fields."""
        pending = self.undone(self.out_dir)
        if not pending:
            return Plan(self.name, 0, None).lines()
        request = self.request(pending[0][1])
        lines = Plan(self.name, len(pending), request).lines()
        if request.system:
            lines[1:1] = ["system prompt:", "-" * 40, request.system, "-" * 40]
        extra = {**request.extra_body}
        kwargs = template_kwargs(request)
        if kwargs:
            extra["chat_template_kwargs"] = kwargs
        temperature = "server default" if request.temperature is None else request.temperature
        lines.append(f"request: max_tokens {request.max_tokens}, temperature {temperature}, "
                     f"stop {list(request.stop)}, extra body {extra or 'none'}")
        lines += self.checks()
        return lines

    def checks(self) -> list[str]:
        """The user's checks on each answer, as the plan lists them."""
        answer_format = self.settings.answer_format(self.questions)
        lines = []
        if answer_format.labels:
            lines.append(f"checks: {label_field(answer_format)} must be one of "
                         f"{', '.join(answer_format.labels)}")
        if answer_format.items is not None:
            lines.append(f"checks: each answer must hold {answer_format.items} items")
        return lines

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Ask for every missing ``(row, sample)``."""
        return await distill_run(self, self.out_dir, client.backend, client.settings, stop,
                                 progress)

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, then where the records are and how many answers were rejected."""
        rejected = sum(stats.rejected.values())
        return [*stats.summary(),
                f"distill: {stats.seen.get('records', 0)} records written to "
                f"{self.out_dir / DISTILLED_FILE} this session, {rejected} answers or items "
                "rejected"]


def prepare_distill(source: Path, out_dir: Path, values: Mapping[str, Any],
                    backend: BackendSettings, *, force: bool = False) -> DistillJob:
    """Read and select ``source``'s rows, compile the template against their columns and
    check a resumed run (``values``: keywords named like the flags, see
    :meth:`DistillSettings.of`); nothing is sent or written."""
    spec = resolve_backend({}, backend)
    settings = DistillSettings.of(values, spec)
    job = load_distill_job(source, settings, out_dir, force=force)
    return dataclasses.replace(job, out_dir=out_dir, spec=spec)


async def distill_run(
    job: DistillJob,
    out_dir: Path,
    backend: Backend,
    stage: StageSettings,
    stop: asyncio.Event | None = None,
    progress: Callable[[StageStats], None] | None = None,
) -> StageStats:
    """Ask for every missing ``(row, sample)`` of ``job``; resumable by ``(id, sample)``.

    Build the job with :func:`prepare_distill`, which checks the template against the
    columns before anything is sent.
    """
    answer_format = job.settings.answer_format(job.questions)
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
         **({"item_text": rejection.text} if rejection.text is not None else {}),
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


#: Settings that change what a record means; a resume must not change them silently.
RECORD_DEFINING = ("input", "template_sha256", "questions_sha256", "system", "parse",
                   "renames", "separator", "id_field", "fill_na", "sheet", "labels", "items")


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
    questions = sum(1 for line in questions_text.splitlines() if line.strip())
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
    return DistillJob(source, settings, rows, template, switch, keys, config,
                      questions=questions)


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
    shared_check_resume(str(out_dir), saved if isinstance(saved, dict) else None, config,
                        RECORD_DEFINING, force=False,
                        consequence="resuming would mix two kinds of records")


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


def _strings(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``stop=``: one string or several."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _extra_body(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra_body=``: a dict, or the JSON the flag takes."""
    if value is None or isinstance(value, str):
        return parse_extra_body(value)
    return dict(value)


def _switch(value: bool | str | None) -> bool | None:
    """``thinking=``: True / False, or the flag's ``on`` / ``off``."""
    if value is None or isinstance(value, bool):
        return value
    if value not in ("on", "off"):
        raise UserError(f"--thinking {value}: expected on or off")
    return value == "on"


def _labels(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``labels=``: several strings, or the flag's comma-separated ones."""
    if value is None:
        return ()
    listed = value.split(",") if isinstance(value, str) else list(value)
    return tuple(label.strip() for label in listed)


def _items(value: int | str | None) -> int | Literal["questions"] | None:
    """``items=``: a count, or the flag's ``N`` / ``questions``."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip()
    if text == "questions":
        return "questions"
    if not text.isdigit():
        raise UserError(f"--items {value}: expected a number or questions")
    return int(text)


def _renames(value: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """``map=``: {new: key}, or the flag's ``NEW=KEY`` strings."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return parse_renames([f"{new}={old}" for new, old in value.items()])
    return parse_renames([value] if isinstance(value, str) else list(value))
