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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request, Usage, template_kwargs
from selfinstruct.llm.pool import teacher_of
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.llm.teachers import resolve_teachers
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DISTILLED_FILE,
    REJECTED_FILE,
    save_config_section,
)
from selfinstruct.runs.readers import read_text
from selfinstruct.runs.rows import Row, RowTable, is_empty, read_rows
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import prepare_out_dir, read_json, read_jsonl, write_atomic
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.base import check_resume as shared_check_resume
from selfinstruct.stages.per_record import (
    StageFiles,
    StageSettings,
    StageStats,
    run_stage,
    stage_files,
)
from selfinstruct.stages.teacher import KEYWORDS as TEACHER_KEYWORDS
from selfinstruct.stages.teacher import Teacher
from selfinstruct.text.row_answers import (
    AnswerFormat,
    ParsedAnswer,
    ParseMode,
    find_json,
    label_field,
    parse_answer,
    parse_renames,
)
from selfinstruct.text.row_template import RowTemplate, compile_row_template
from selfinstruct.text.thinking import split_thinking

#: The temperature of ``--samples`` above 1 when none is given.
SAMPLES_TEMPERATURE = 0.8

#: Fields every distilled record has besides the row's columns and the parsed fields.
RESERVED = ("id", "item", "sample", "prompt", "response", "reasoning", "model",
            "finish_reason", "usage")


@dataclass(frozen=True)
class DistillSettings:
    """Everything that decides what ``distill`` sends and keeps.

    Defaults are the articles' bulk-annotation settings: 2048 answer tokens, the
    server's own temperature unless one is given (with several samples a row:
    :data:`SAMPLES_TEMPERATURE`), one answer per row.
    """

    #: The user's prompt template (``{column}``, ``{row}``, ``{questions}``).
    user_template: Path
    #: Question templates, one a line, listed where the template says ``{questions}``.
    questions: Path | None = None
    sheet: str | None = None
    fill_na: str | None = None
    #: A CSV/TSV file's encoding (``gbk``, ``utf-16`` …); None: found out from the bytes.
    encoding: str | None = None
    #: Stop on a spreadsheet's error cells and uncalculated formulas (else one warning).
    strict: bool = False
    id_field: str | None = None
    limit: int | None = None
    sample: int | None = None
    seed: int = 0
    shard: Shard = EVERYTHING
    temperature: float | None = None
    max_tokens: int = 2048
    samples: int = 1
    #: System prompt, stop strings, body fields, thinking switch (shared with reason).
    teacher: Teacher = field(default_factory=Teacher)
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
        library both give them: the teacher's (:meth:`Teacher.of`; its thinking style made
        concrete for ``spec``'s server), ``map`` ({new: key} or ``NEW=KEY`` strings) into
        ``renames``. A keyword that is not a flag of ``distill`` is a ``TypeError``
        naming it."""
        own = {name: value for name, value in values.items() if name not in TEACHER_KEYWORDS}
        given = values.get("teacher")
        teacher = (given if isinstance(given, Teacher) else Teacher.of(values)).resolved(spec)
        renames = own.pop("map", None)
        unknown = sorted(set(own) - {f.name for f in dataclasses.fields(cls)} - {"teacher"})
        if unknown:
            raise TypeError(f"distill() got an unexpected keyword argument {unknown[0]!r}")
        if own.get("user_template") is None:
            raise TypeError("distill() needs user_template=, the prompt template file")
        own.update(
            user_template=Path(own["user_template"]),
            questions=Path(own["questions"]) if own.get("questions") else None,
            shard=Shard.of(own.get("shard")),
            teacher=teacher,
            renames=_renames(renames if renames is not None else own.get("renames")),
            labels=_labels(own.get("labels")),
            items=_items(own.get("items")),
        )
        return cls(**own)

    def sampling_temperature(self) -> float | None:
        """``--temperature``, else the server's default for one answer a row and
        :data:`SAMPLES_TEMPERATURE` for several (K greedy answers would be one answer K
        times: nothing to pick the best of, no pair)."""
        if self.temperature is not None or self.samples == 1:
            return self.temperature
        return SAMPLES_TEMPERATURE

    def answer_format(self, questions: int = 0) -> AnswerFormat:
        """How the answers are read (``questions``: how many question lines there are,
        the count ``items="questions"`` asks for)."""
        items = questions if self.items == "questions" else self.items
        return AnswerFormat(self.parse, dict(self.renames), self.separator, self.teacher.stop,
                            self.labels, items)

    def to_json(self) -> dict[str, Any]:
        """The settings as ``config.json`` keeps them."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "teacher"}
        data.update(user_template=str(self.user_template),
                    questions=str(self.questions) if self.questions else None,
                    shard=f"{self.shard.index}/{self.shard.count}",
                    renames=dict(self.renames), labels=list(self.labels),
                    **self.teacher.to_json())
        return data


@dataclass(frozen=True)
class DistillJob:
    """A distill run, checked and ready: the rows to send (with their ids), the compiled
    template."""

    source: Path
    settings: DistillSettings
    rows: list[tuple[str, Row]]
    template: RowTemplate
    #: Record key of each input column (``row_NAME`` where a column's name is taken).
    keys: Mapping[str, str]
    #: What ``config.json`` gets (the settings plus the template texts' fingerprints).
    config: Mapping[str, Any]
    #: How many question lines ``--questions`` has (0 without it).
    questions: int = 0
    out_dir: Path = field(default_factory=Path)
    spec: BackendSpec = field(default_factory=BackendSpec)
    #: Remake the records of every answered row from its stored answer first (no request).
    reparse: bool = False
    #: Ask the rows whose answers were all rejected again.
    retry_rejected: bool = False
    name: str = "distill"

    def render(self, row: Row) -> str:
        """The user's template filled from ``row``: the prompt records keep."""
        return self.template.render(row.values)

    def request(self, row: Row, prompt: str | None = None) -> Request:
        """The request for one row (its rendered ``prompt``, if already made), the same
        for each of its samples, with the teacher's settings."""
        settings = self.settings
        return settings.teacher.apply(Request(
            prompt=self.render(row) if prompt is None else prompt,
            max_tokens=settings.max_tokens,
            temperature=settings.sampling_temperature(),
            top_p=None,
        ))

    def undone(self, out_dir: Path) -> list[tuple[str, Row, int]]:
        """Each ``(id, row, sample)`` with no answer recorded in ``out_dir`` yet (with
        ``retry_rejected``: also those whose answer kept nothing). An answer is settled
        once recorded, kept or rejected: a rerun does not pay for it again."""
        done = {(r["id"], r["sample"]) for r in read_jsonl(out_dir / DISTILLED_FILE)}
        if not self.retry_rejected:
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
        reparsed = ([f"--reparse: {stats.seen['reparsed']} stored answers read again, "
                     f"{stats.seen['reparsed_records']} records made from them, no request"]
                    if self.reparse else [])
        return [*stats.summary(), *reparsed,
                f"distill: {stats.seen.get('records', 0)} records written to "
                f"{self.out_dir / DISTILLED_FILE} this session, {rejected} answers or items "
                "rejected"]


def prepare_distill(source: Path, out_dir: Path, values: Mapping[str, Any],
                    backend: BackendSettings, *, force: bool = False, reparse: bool = False,
                    retry_rejected: bool = False) -> DistillJob:
    """Read and select ``source``'s rows, compile the template against their columns and
    check a resumed run (``values``: keywords named like the flags, see
    :meth:`DistillSettings.of`); nothing is sent or written. ``reparse`` lets the way
    answers are read change (``--parse``, ``--map``, ``--separator``…): the stored
    answers are read again that way before anything is sent."""
    spec = resolve_teachers(backend, int(values.get("samples") or 1))
    settings = DistillSettings.of(values, spec)
    teachers = tuple(teacher.model for teacher in spec.teachers)
    job = load_distill_job(source, settings, out_dir, force=force, reparse=reparse,
                           teachers=teachers)
    return dataclasses.replace(job, out_dir=out_dir, spec=spec, reparse=reparse,
                               retry_rejected=retry_rejected)


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
    reparsed = reparse_answers(job, out_dir, backend.name) if job.reparse else None
    with stage_files(out_dir, DISTILLED_FILE) as files:
        pending = [{"id": key, "row": row, "sample": sample}
                   for key, row, sample in job.undone(out_dir)]
        total = len(job.rows) * job.settings.samples
        stats = StageStats("distill", total=total, done_before=total - len(pending))
        if reparsed is not None:
            stats.seen.update(reparsed)
        watch = MistakeWatch(job.settings)

        def make_request(item: dict[str, Any]) -> Request:
            item["prompt"] = job.render(item["row"])
            return teacher_of(job.request(item["row"], item["prompt"]), backend, item["sample"])

        def handle(item: dict[str, Any], completion: Completion) -> None:
            parsed = parse_answer(completion.text, completion.reasoning,
                                  completion.finish_reason, answer_format)
            write_answer(files, stats, job, item, completion, parsed, backend.name)
            watch.observe(completion.text, parsed)

        return await run_stage(
            pending, backend=backend, settings=stage, make_request=make_request,
            handle=handle, files=files, stats=stats, stop=stop or asyncio.Event(),
            progress=progress,
        )


#: The first answers of a session that decide whether it is making a mistake, and the
#: share of them one rule must reject to stop the run.
FIRST_ANSWERS = 20
MISTAKE_SHARE = 0.9


class MistakeWatch:
    """Stops a run whose first answers are nearly all rejected by the same rule.

    A wrong ``--map``, ``--parse`` or ``--separator`` rejects every answer, and the run
    would pay for every row before anyone looks. After :data:`FIRST_ANSWERS` answers, if
    one rule rejected at least :data:`MISTAKE_SHARE` of them, the run stops (exit 2) and
    says what the answers hold; the answers already paid for stay in ``rejected.jsonl``
    and ``--reparse`` reads them again with the corrected flags, without a request.
    """

    def __init__(self, settings: DistillSettings) -> None:
        self.settings = settings
        self.answers = 0
        self.rejected: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def observe(self, text: str, parsed: ParsedAnswer) -> None:
        """Count one answer; raise :class:`UserError` when the first ones show a mistake."""
        if self.answers >= FIRST_ANSWERS:
            return
        self.answers += 1
        if not parsed.items and parsed.rejections:
            rule = parsed.rejections[0].filter
            self.rejected[rule] += 1
            self.first.setdefault(rule, text)
            self.keys.update(_item_keys(text))
        if self.answers == FIRST_ANSWERS and self.rejected:
            rule, count = self.rejected.most_common(1)[0]
            if count >= MISTAKE_SHARE * FIRST_ANSWERS:
                raise UserError(self.message(rule, count))

    def message(self, rule: str, count: int) -> str:
        """What went wrong, what the answers hold, and how to go on without paying again."""
        return (f"the first {FIRST_ANSWERS} answers: {count} rejected as {rule}; "
                f"{self.hint(rule)}. Stopped before paying for the other rows; fix the flags "
                "and run again with --reparse, which reads the answers already received "
                "again without a request (see rejected.jsonl)")

    def hint(self, rule: str) -> str:
        """The change that would have kept those answers."""
        settings = self.settings
        sample = " ".join(self.first[rule].split())[:80]
        if rule == "missing_key":
            keys = ", ".join(repr(key) for key, _ in self.keys.most_common(8)) or "none"
            wanted = ", ".join(f"--map {new}={old} names {old!r}"
                               for new, old in settings.renames.items()
                               if old not in self.keys) or "the keys mapped"
            return f"the answers' items have keys {keys}; {wanted}"
        if rule == "unparseable":
            return (f"the answers hold no JSON (one starts {sample!r}); ask for JSON in the "
                    "template or use --parse text")
        if rule == "no_separator":
            return (f"the answers hold no {settings.separator!r} (one starts {sample!r}); "
                    "check --separator, and that --stop does not cut the answer before it")
        if rule == "truncated":
            return f"the answers were cut by the token limit; raise --max-tokens " \
                   f"(now {settings.max_tokens})"
        if rule == "empty":
            return ("the answers are empty; a --stop string the model writes first ends "
                    "the answer before it starts")
        return f"one of them starts {sample!r}"


def _item_keys(text: str) -> list[str]:
    """The keys of the JSON items an answer holds (none when it holds no JSON)."""
    found = find_json(split_thinking(text, None).answer)
    items = found if isinstance(found, list) else [found] if found is not None else []
    return sorted({key for item in items if isinstance(item, dict) for key in item})


def reparse_answers(job: DistillJob, out_dir: Path, backend_name: str) -> Counter[str]:
    """``--reparse``: every stored answer of the job's rows read again with the current
    flags, ``distilled.jsonl`` and the distill part of ``rejected.jsonl`` rewritten from
    them; no request. Answers of rows the job does not select are kept as they were.
    Returns ``{"reparsed": answers, "reparsed_records": kept records}``."""
    rows = dict(job.rows)
    answers: dict[tuple[str, int], dict[str, Any]] = {}
    kept_lines: list[dict[str, Any]] = []  # records of rows the job does not select
    other_lines: list[dict[str, Any]] = []
    for record in read_jsonl(out_dir / DISTILLED_FILE):
        if record["id"] in rows:
            answers[record["id"], record["sample"]] = record
        else:
            kept_lines.append(record)
    for record in read_jsonl(out_dir / REJECTED_FILE):
        if record.get("stage") == "distill" and record.get("id") in rows and "response" in record:
            answers.setdefault((record["id"], record["sample"]), record)
        else:
            other_lines.append(record)
    answer_format = job.settings.answer_format(job.questions)
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for (key, sample), stored in answers.items():
        completion = Completion(text=stored["response"], finish_reason=stored["finish_reason"],
                                reasoning=stored.get("reasoning") or None,
                                usage=Usage(**stored["usage"]), model=stored["model"])
        parsed = parse_answer(completion.text, completion.reasoning, completion.finish_reason,
                              answer_format)
        item = {"id": key, "row": rows[key], "sample": sample, "prompt": stored["prompt"]}
        records, rejections = answer_records(job, item, completion, parsed, backend_name)
        kept += records
        rejected += rejections
    _rewrite(out_dir / REJECTED_FILE, [*other_lines, *rejected])
    _rewrite(out_dir / DISTILLED_FILE, [*kept_lines, *kept])
    return Counter(reparsed=len(answers), reparsed_records=len(kept))


def _rewrite(path: Path, records: Sequence[dict[str, Any]]) -> None:
    write_atomic(path, lambda fp: fp.write("".join(
        json.dumps(record, ensure_ascii=False) + "\n" for record in records)))


def write_answer(files: StageFiles, stats: StageStats, job: DistillJob, item: dict[str, Any],
                 completion: Completion, parsed: ParsedAnswer, backend_name: str) -> None:
    """Record one answer: its kept items in one write, then its rejections in one write.

    One write each, so ``kill -9`` leaves an answer's kept records all there or none of
    them (a resumed run asks again only in the second case, so no ``(id, item, sample)``
    is written twice); the rejections of an answer that also kept items are written
    after, and are the only thing a kill at that instant can cost.
    """
    kept, rejected = answer_records(job, item, completion, parsed, backend_name)
    files.results.write_many(kept)
    files.rejected.write_many(rejected)
    stats.seen["records"] += len(kept)
    for rejection in parsed.rejections:
        stats.rejected[rejection.filter] += 1


def answer_records(job: DistillJob, item: dict[str, Any], completion: Completion,
                   parsed: ParsedAnswer, backend_name: str
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The kept records and the rejection records of one answer; each carries the raw
    answer, so that ``--reparse`` can read it again."""
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
    return kept, rejected


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


#: Settings that only decide how answers are read: ``--reparse`` may change them.
READ_DEFINING = ("parse", "renames", "separator", "labels", "items")

#: Settings that change what a record means; a resume must not change them silently.
RECORD_DEFINING = ("input", "template_sha256", "questions_sha256", "system", "parse",
                   "renames", "separator", "id_field", "fill_na", "sheet", "encoding",
                   "labels", "items", "teachers")


def load_distill_job(source: Path, settings: DistillSettings, out_dir: Path | None = None,
                     *, force: bool = False, reparse: bool = False,
                     teachers: tuple[str, ...] = ()) -> DistillJob:
    """Read and select the rows, compile the template against their columns, and (with
    ``out_dir``) refuse to resume a run made with other record-defining settings."""
    table = read_rows(source, sheet=settings.sheet, fill_na=settings.fill_na,
                      encoding=settings.encoding, strict=settings.strict)
    id_field = settings.id_field or ("id" if "id" in table.columns else None)
    if settings.id_field is not None and settings.id_field not in table.columns:
        raise UserError(f"--id-field {settings.id_field!r} is not a column of {source} "
                        f"(columns: {', '.join(table.columns)})")
    rows = select(with_ids(table, id_field), settings)
    template_text = read_text(settings.user_template, "--user-template")
    questions_text = read_text(settings.questions, "--questions") if settings.questions else ""
    template = _compile(settings, source, table.columns, template_text, questions_text)
    questions = sum(1 for line in questions_text.splitlines() if line.strip())
    settings.teacher.switch()  # a switch the backend cannot send: an error before any request
    config = {
        **settings.to_json(),
        "input": str(source),
        "id_field": id_field,
        "template_sha256": _sha256(template_text),
        "questions_sha256": _sha256(questions_text) if settings.questions else None,
        "template_text": template_text,
        "questions_text": questions_text if settings.questions else None,
        # Sample k goes to teacher k mod n: other teachers would answer other samples.
        "teachers": list(teachers) or None,
    }
    if out_dir is not None and not force:
        check_resume(out_dir, config, reparse=reparse)
    keys = column_keys(table.columns, id_field)
    return DistillJob(source, settings, rows, template, keys, config, questions=questions)


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


def check_resume(out_dir: Path, config: Mapping[str, Any], *, reparse: bool = False) -> None:
    """Refuse to add records made another way to an existing run (``--force`` skips this).

    A changed template or questions file is named with its first changed line; with
    ``reparse``, the settings that only decide how answers are read may change (the
    stored answers are read again).
    """
    saved = (read_json(out_dir / CONFIG_FILE) or {}).get("distill")
    if not isinstance(saved, dict):
        return
    for key, flag, text in (("template_sha256", "--user-template", "template_text"),
                            ("questions_sha256", "--questions", "questions_text")):
        if key in saved and saved[key] != config[key]:
            raise UserError(
                f"{out_dir}: {flag} {config[flag[2:].replace('-', '_')]} is not the file this "
                f"run was started with: {first_difference(saved.get(text), config[text])}; "
                "resuming would mix records of two prompts. Restore it, use a new -o "
                "directory, or --force to resume anyway")
    defining = tuple(key for key in RECORD_DEFINING if not (reparse and key in READ_DEFINING))
    shared_check_resume(str(out_dir), saved, config, defining, force=False,
                        consequence="resuming would mix two kinds of records")


def first_difference(before: str | None, now: str | None) -> str:
    """The first line that differs between two versions of a prompt file."""
    if before is None:
        return "its text changed (the run did not keep the earlier text)"
    old, new = (before or "").splitlines(), (now or "").splitlines()
    for number, (was, is_now) in enumerate(zip(old, new, strict=False), start=1):
        if was != is_now:
            return f"line {number} was {was!r}, now {is_now!r}"
    if len(old) != len(new):
        number = min(len(old), len(new)) + 1
        return (f"line {number} was {old[number - 1]!r}, now missing" if len(old) > len(new)
                else f"line {number} is new: {new[number - 1]!r}")
    return "only its line endings or trailing spaces changed"


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


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
