"""The playground's work, without the page: distill's own job for the prompts being edited.

Everything a row goes through here is ``distill``'s code: the edited template and
system prompt become a :class:`~selfinstruct.stages.distill.DistillJob` through
:func:`~selfinstruct.stages.distill.prepare_distill` (the template is written to a file
and read back the way ``--user-template`` is), each row's request is the job's
:meth:`~selfinstruct.stages.distill.DistillJob.request`, and its answer is read by
:func:`~selfinstruct.text.row_answers.parse_answer` and
:func:`~selfinstruct.stages.distill.answer_records` into the very records ``distill``
would write. So what the product owner approves on the page is what the bulk run
makes. The page (:mod:`selfinstruct.ui.page`) and the API are thin over this.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm import BackendError, BackendSpec
from selfinstruct.llm.base import Completion, Request
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.readers import read_text
from selfinstruct.runs.rows import Row
from selfinstruct.stages.base import Client, Connection, connect
from selfinstruct.stages.distill import (
    DistillJob,
    answer_records,
    prepare_distill,
)
from selfinstruct.stages.teacher import Teacher
from selfinstruct.text.row_answers import AnswerFormat, parse_answer
from selfinstruct.ui.command import distill_command
from selfinstruct.ui.picker import pick_rows

#: How the edited template is named in messages (its file is a private temporary one).
TEMPLATE_NAME = "the template"


@dataclass(frozen=True)
class PlaygroundSettings:
    """What ``selfinstruct playground`` was started with."""

    #: The rows, any format ``distill`` reads.
    source: Path
    #: The template the page starts with (``--user-template``).
    user_template: Path
    #: ``distill``'s other flags, named like them (``parse``, ``map``, ``max_tokens`` …;
    #: the teacher's as a :class:`Teacher` under ``teacher``, or as its own keywords).
    values: Mapping[str, Any] = field(default_factory=dict)
    backend: BackendSettings = field(default_factory=BackendSettings)
    #: Where Save writes the prompt files.
    save_dir: Path = Path("playground")


@dataclass(frozen=True)
class RowResult:
    """One row's trip: what was sent, what came back, what ``distill`` keeps of it."""

    id: str
    columns: Mapping[str, Any]
    prompt: str
    #: The answer as the model wrote it (a ``<think>`` block included).
    answer: str = ""
    reasoning: str = ""
    #: The records ``distill`` would write to ``distilled.jsonl``.
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Why ``distill`` would reject it: ``{"filter", "detail"}`` (and ``item``) each.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: The request failed (the message), so there is no answer.
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """What ``/run`` returns for this row."""
        return {"id": self.id, "prompt": self.prompt, "answer": self.answer,
                "reasoning": self.reasoning, "records": self.records,
                "rejected": self.rejected, "error": self.error,
                "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
                "latency_s": round(self.latency_s, 3)}


@dataclass(frozen=True)
class RunPlan:
    """A run, checked: distill's job for the prompts and the rows picked."""

    job: DistillJob
    rows: list[tuple[str, Row]]


@dataclass(frozen=True)
class Saved:
    """A saved version of the prompts and the command that runs them over every row."""

    template: Path
    system: Path | None
    command: str


class Playground:
    """Runs rows, chats and saves for the page; one per ``selfinstruct playground``."""

    def __init__(self, settings: PlaygroundSettings) -> None:
        self.settings = settings
        self.spec: BackendSpec = resolve_backend({}, settings.backend)
        given = settings.values.get("teacher")
        #: The teacher as given (its flags go into the saved command unchanged).
        self.teacher = given if isinstance(given, Teacher) else Teacher.of(settings.values)
        self._values = {name: value for name, value in settings.values.items()
                        if name not in ("teacher", "system", "system_file")}
        self._scratch = tempfile.TemporaryDirectory(prefix="selfinstruct-playground-")
        self._client: Client | None = None
        self.initial_template = read_text(settings.user_template, "--user-template")
        self.initial_system = self.teacher.system or ""
        #: distill's settings (bad flags or a bad starting template stop the start).
        self.distill_settings = self.job(self.initial_system, self.initial_template).settings

    # --- distill's job for the page's prompts ---------------------------------------

    def job(self, system: str, template: str) -> DistillJob:
        """``distill``'s job with these prompts, checked (a template that names no column
        is a :class:`UserError` that names it); nothing is sent."""
        scratch = Path(self._scratch.name)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=scratch,
                                         suffix=".txt", delete=False) as file:
            file.write(template)
        path = Path(file.name)
        values = {**self._values, "user_template": path,
                  "teacher": dataclasses.replace(self.teacher, system=system_text(system))}
        try:
            return prepare_distill(self.settings.source, scratch / "run", values,
                                   self.settings.backend, force=True)
        except UserError as err:
            raise UserError(str(err).replace(str(path), TEMPLATE_NAME),
                            err.exit_code) from None
        finally:
            path.unlink()

    def rows(self, system: str, template: str, spec: str, seed: int
             ) -> list[tuple[str, Row]]:
        """The rows ``spec`` picks (see :func:`~selfinstruct.ui.picker.pick_rows`)."""
        return self.plan(system, template, spec, seed).rows

    async def check(self) -> None:
        """Reach the server once (a wrong URL, key or model: one line, before serving)."""
        client = await connect(self.spec, Connection(self.settings.backend))
        await client.backend.aclose()

    async def client(self) -> Client:
        """The backend, connected on first use in the page's event loop and kept."""
        if self._client is None:
            self._client = await connect(self.spec,
                                         Connection(self.settings.backend, check=False))
        return self._client

    # --- what the page does ---------------------------------------------------------

    def plan(self, system: str, template: str, spec: str, seed: int = 0) -> RunPlan:
        """distill's job with these prompts and the rows ``spec`` picks; nothing sent."""
        job = self.job(system, template)
        return RunPlan(job, pick_rows(job.rows, spec, seed, job.settings))

    async def answers(self, plan: RunPlan) -> AsyncIterator[RowResult]:
        """Send the plan's rows as ``distill`` would (up to its concurrency at once) and
        yield each row's result as its answer arrives."""
        client = await self.client()
        limit = asyncio.Semaphore(max(1, client.settings.concurrency))
        answer_format = plan.job.settings.answer_format()

        async def one(key: str, row: Row) -> RowResult:
            async with limit:
                return await answer_row(plan.job, key, row, client, answer_format)

        tasks = [asyncio.ensure_future(one(key, row)) for key, row in plan.rows]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()

    async def chat(self, system: str, message: str) -> Completion:
        """One free message with the page's system prompt and distill's other request
        settings (stop strings, sampling, thinking switch)."""
        settings = self.distill_settings
        teacher = dataclasses.replace(settings.teacher, system=system_text(system))
        request = teacher.apply(Request(prompt=message, max_tokens=settings.max_tokens,
                                        temperature=settings.temperature, top_p=None))
        client = await self.client()
        try:
            return await client.backend.complete(request)
        except BackendError as err:
            raise UserError(f"{client.backend.name}: {err.message}") from None

    def save(self, system: str, template: str) -> Saved:
        """Write the prompts to the next free version in ``save_dir`` (never over an
        earlier one) and return the ``distill`` command over all rows that uses them."""
        job = self.job(system, template)  # a template distill would refuse is not saved
        folder = self.settings.save_dir
        folder.mkdir(parents=True, exist_ok=True)
        text = system_text(system)
        version = next_version(folder)
        while True:
            template_path = folder / f"template-{version:03d}.txt"
            system_path = folder / f"system-{version:03d}.txt" if text else None
            try:
                _create(template_path, template)
            except FileExistsError:
                version += 1
                continue
            if system_path is not None and text is not None:
                _create(system_path, text + "\n")
            break
        command = distill_command(self.settings.source, folder / f"distill-{version:03d}",
                                  template_path, system_path, job.settings, self.teacher,
                                  self.settings.backend)
        return Saved(template_path, system_path, command)


async def answer_row(job: DistillJob, key: str, row: Row, client: Client,
                     answer_format: AnswerFormat) -> RowResult:
    """One row sent and read exactly as ``distill`` sends and reads it (sample 0)."""
    prompt = job.render(row)
    request = job.request(row, prompt)
    started = time.monotonic()
    try:
        completion = await client.backend.complete(request)
    except BackendError as err:
        return RowResult(key, row.values, prompt, error=err.message,
                         latency_s=time.monotonic() - started)
    latency = time.monotonic() - started
    parsed = parse_answer(completion.text, completion.reasoning, completion.finish_reason,
                          answer_format)
    item = {"id": key, "row": row, "sample": 0, "prompt": prompt}
    kept, rejected = answer_records(job, item, completion, parsed, client.backend.name)
    reasons: list[dict[str, Any]] = [
        {name: record[name] for name in ("filter", "detail", "item") if name in record}
        for record in rejected]
    return RowResult(key, row.values, prompt, completion.text, parsed.reasoning, kept, reasons,
                     prompt_tokens=completion.usage.prompt_tokens,
                     completion_tokens=completion.usage.completion_tokens, latency_s=latency)


def system_text(system: str) -> str | None:
    """The system prompt as ``distill`` reads it back from the saved ``--system-file``:
    stripped, and none when empty."""
    return system.strip() or None


_VERSIONED = re.compile(r"(?:template|system|distill)-(\d+)(?:\.txt)?$")


def next_version(folder: Path) -> int:
    """One past the highest version in ``folder`` (1 for a new folder)."""
    numbers = [int(match.group(1)) for path in folder.iterdir()
               if (match := _VERSIONED.match(path.name))]
    return max(numbers, default=0) + 1


def _create(path: Path, text: str) -> None:
    """Write a new file; an existing one is never replaced (``FileExistsError``)."""
    with path.open("x", encoding="utf-8", newline="") as file:
        file.write(text)
