"""The shape every model stage has, and the machinery they share.

A stage is one module: its typed settings (defaults and checks there only), a
``prepare_*`` function that reads its inputs and checks a resumed run without sending or
writing anything, and the :class:`Job` that function returns: ``plan()`` is what
``--dry-run`` prints, ``run()`` sends (through the runner), ``summary()`` is what the
person reads at the end. The library's stage functions and the CLI's commands are a
few lines over that, through :func:`execute` here: the backend is connected once (its
server checked), handed to the job, and released however the job ends.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from selfinstruct.errors import UserError
from selfinstruct.language import is_cjk_char
from selfinstruct.llm import Backend, BackendError, BackendSpec, create_backend, given_backend
from selfinstruct.llm.base import Request, preflight
from selfinstruct.llm.settings import BackendSettings, ExecutorSettings, destination
from selfinstruct.stages.per_record import StageSettings


@dataclass(frozen=True)
class Plan:
    """What a stage would send: the ``--dry-run`` report."""

    stage: str
    requests: int
    sample: Request | None
    note: str = ""

    def lines(self) -> list[str]:
        """The report printed for ``--dry-run``."""
        if self.sample is None:
            return [f"{self.stage}: nothing to send ({self.note or 'all done'})"]
        prompt_tokens = estimate_tokens(self.sample.prompt)
        lines = [
            f"{self.stage}: {self.requests} requests{self.note}; each about {prompt_tokens} "
            f"prompt tokens (estimated) and at most {self.sample.max_tokens} answer tokens; "
            f"about {self.requests * prompt_tokens:,} prompt tokens and at most "
            f"{self.requests * self.sample.max_tokens:,} answer tokens in all",
            "sample prompt:",
            "-" * 40,
            self.sample.prompt,
            "-" * 40,
        ]
        if self.sample.schema is not None:
            lines.append(f"answers asked for as JSON (schema {self.sample.schema_name!r}: "
                         f"{json.dumps(self.sample.schema, ensure_ascii=False)})")
        return lines


def estimate_tokens(text: str) -> int:
    """About one token per CJK character and per four other characters (no tokenizer is
    loaded for a dry run)."""
    cjk = sum(1 for char in text if is_cjk_char(char))
    return cjk + math.ceil((len(text) - cjk) / 4)


class Stats(Protocol):
    """What every stage's stats tell the progress bar."""

    def progress(self) -> tuple[int, str, int | None]:
        """(done, detail, total) for the progress bar."""
        ...


S = TypeVar("S", bound=Stats)


class Job(Protocol[S]):
    """A stage prepared: inputs read and checked, nothing sent or written yet."""

    @property
    def name(self) -> str:
        """The stage's name (progress label, ``stats.json`` section)."""
        ...

    @property
    def spec(self) -> BackendSpec:
        """The backend it will use, resolved once."""
        ...

    def plan(self) -> list[str]:
        """What ``--dry-run`` prints after the destination line."""
        ...

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[S], None]) -> S:
        """Send, keep, write; resumable. The client is the caller's to release."""
        ...

    def summary(self, stats: S) -> list[str]:
        """What the person reads at the end."""
        ...


@dataclass(frozen=True)
class Client:
    """A connected backend and how hard a stage may drive it."""

    backend: Backend
    settings: StageSettings


@dataclass(frozen=True)
class Connection:
    """How a stage reaches its model: the settings as given (the key among them) and a
    ready backend object, if the caller gave one (then the caller closes it)."""

    settings: BackendSettings = field(default_factory=BackendSettings)
    given: Backend | None = None
    #: Whether to check the server before the first request (``run`` checks once).
    check: bool = True


def dry_run_lines(job: Job[Any]) -> list[str]:
    """``--dry-run``: which backend would get the requests, then the stage's plan."""
    return [destination(job.spec), *job.plan()]


async def execute(job: Job[S], connection: Connection, stop: asyncio.Event | None = None,
                  progress: Callable[[S], None] | None = None) -> S:
    """Connect the job's backend (its server checked), run the job, release the backend
    (unless the caller gave it)."""
    client = await connect(job.spec, connection)
    try:
        return await job.run(client, stop or asyncio.Event(), progress or _no_progress)
    finally:
        if client.backend is not connection.given:
            await client.backend.aclose()


def _no_progress(stats: Any) -> None:
    """No progress report."""


async def connect(spec: BackendSpec, connection: Connection) -> Client:
    """The backend a stage will use and how hard to drive it.

    Every stage's backend comes through here, so a server that is not there, a refused
    key or a model the server does not list stop the command in seconds with one line,
    instead of after minutes of request retries.
    """
    settings = StageSettings(concurrency=spec.concurrency,
                             max_consecutive_failures=spec.max_failures)
    if connection.given is not None:
        return Client(connection.given, settings)
    api_key = connection.settings.api_key
    executor = connection.settings.executor
    if executor.executor == "ray":
        return await _ray_client(spec, api_key, executor, settings, check=connection.check)
    backend = create_backend(spec, api_key, spec.concurrency)
    if connection.check:
        await check_server(backend)
    return Client(backend, settings)


async def check_server(backend: Backend) -> None:
    """Run the backend's check; when it fails, close the backend and stop with one line."""
    try:
        await preflight(backend)
    except BackendError as err:
        await backend.aclose()
        raise UserError(f"{backend.name}: {err.message}") from None


async def _ray_client(spec: BackendSpec, api_key: str | None, executor: ExecutorSettings,
                      settings: StageSettings, *, check: bool) -> Client:
    """``--executor ray``: the server is checked from here as usual (an OpenAI-compatible
    one; an engine is only ever loaded in the actors), then the stage gets the actors'
    stand-in and an executor that sends from them."""
    from selfinstruct.cluster.executor import RayOptions, ray_stage

    if check and spec.kind == "openai" and given_backend() is None:
        probe = create_backend(spec, api_key, 1)
        await check_server(probe)
        await probe.aclose()
    backend, stage = ray_stage(spec, api_key,
                               RayOptions(executor.ray_address, executor.ray_actors), settings)
    return Client(backend, stage)


def check_resume(where: str, saved: Mapping[str, Any] | None, current: Mapping[str, Any],
                 defining: tuple[str, ...], *, force: bool, consequence: str) -> None:
    """Refuse to resume with a setting that defines the output changed, naming it and
    both values (``--force`` overrides): the one resume check of every stage."""
    if force or not saved:
        return
    for key in defining:
        if key in saved and saved[key] != current.get(key):
            raise UserError(
                f"{where}: this run was started with {key}={saved[key]!r}, now {key}="
                f"{current.get(key)!r}; {consequence}. Use the same settings, a new "
                "--out directory, or --force to resume anyway"
            )

