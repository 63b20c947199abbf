"""The library: one function per stage, for Python users and for the CLI alike.

Every stage function takes its run directory (or input) and keyword arguments named like
the command's flags: ``generate("runs/x", num_instructions=50, base_url=URL,
model="m")``. A keyword that is not a setting is a ``TypeError`` at the call, naming
it. ``backend=`` takes a kind (``"openai"``, ``"local"``, ``"vllm"``) or a ready
:class:`~selfinstruct.llm.base.Backend` object (a fake in tests, a model built
beforehand), which the caller keeps and closes. The API key comes from ``api_key=`` or
``OPENAI_API_KEY`` and is never saved. Each ``a``-prefixed function is the coroutine
for callers that already run an event loop (a notebook); the plain one runs it to the
end. A problem the caller can fix is a :class:`~selfinstruct.errors.UserError` whose
message says what to do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from selfinstruct.config import GenerateConfig, GenerateOptions, MinHashDedupSettings
from selfinstruct.errors import UserError
from selfinstruct.filters.traces import TraceSettings
from selfinstruct.llm import Backend, use_backend
from selfinstruct.runs.seeds import SeedTask
from selfinstruct.runs.shard import Shard
from selfinstruct.stages.dedup import DedupSummary, MinHashSummary, dedup_file, dedup_minhash
from selfinstruct.stages.export import ExportResult, export_run
from selfinstruct.stages.generate import Bootstrap, GenerateStats
from selfinstruct.stages.generate_setup import create_run_backend, open_run, resolve_config
from selfinstruct.stages.instances import InstanceOptions
from selfinstruct.stages.per_record import StageStats
from selfinstruct.stages.pipeline import (
    BackendFlags,
    ExecutorFlags,
    classify_stage,
    instances_stage,
    open_reason,
    open_stage,
    reason_stage,
)
from selfinstruct.stages.reason import ReasonOptions

T = TypeVar("T")

#: The backend keywords every stage function takes (the CLI's backend flags).
BACKEND_KEYWORDS = frozenset(f.name for f in dataclasses.fields(BackendFlags))


def run_sync(work: Awaitable[T]) -> T:
    """Run a stage's coroutine to the end from plain synchronous code."""
    async def wrapped() -> T:
        return await work

    return asyncio.run(wrapped())


@dataclass(frozen=True)
class Connection:
    """The backend flags a stage resolves, and a ready backend object if one was given."""

    flags: BackendFlags
    given: Backend | None = None

    def given_or(self, create: Callable[[], Backend]) -> Backend:
        """The given backend, else a new one (which the stage then owns and closes)."""
        return self.given if self.given is not None else create()

    async def release(self, backend: Backend) -> None:
        """Close ``backend`` unless the caller gave it (then the caller closes it)."""
        if backend is not self.given:
            await backend.aclose()


def connection(settings: Mapping[str, Any]) -> Connection:
    """The backend part of a stage's keyword arguments: a kind or a backend object, the
    servers (``base_url``: one URL or several), and the key, explicit → environment."""
    values = {name: settings[name] for name in BACKEND_KEYWORDS if name in settings}
    given = values.get("backend")
    if given is not None and not isinstance(given, str):
        values["backend"] = None
    urls = values.get("base_url")
    values["base_url"] = (urls,) if isinstance(urls, str) else tuple(urls or ())
    if values.get("base_url_file") is not None:
        values["base_url_file"] = Path(values["base_url_file"])
    if values.get("api_key") is None:
        values["api_key"] = os.environ.get("OPENAI_API_KEY")
    if isinstance(values.get("executor"), str):  # "ray": ExecutorFlags for its address
        values["executor"] = ExecutorFlags(values["executor"])
    flags = BackendFlags(**values)
    return Connection(flags, None if given is None or isinstance(given, str) else given)


def split_settings(settings: Mapping[str, Any], own: type[Any],
                   function: str) -> dict[str, Any]:
    """The keywords of ``settings`` that belong to ``own`` (a settings class); any that is
    neither its nor the backend's is a ``TypeError`` naming it and the ones allowed."""
    names = {f.name for f in dataclasses.fields(own)}
    unknown = sorted(set(settings) - names - BACKEND_KEYWORDS)
    if unknown:
        raise TypeError(
            f"{function}() got an unexpected keyword argument {unknown[0]!r}; its settings "
            f"are {', '.join(sorted(names | BACKEND_KEYWORDS))}"
        )
    return {name: value for name, value in settings.items() if name in names}


def generate_options(settings: Mapping[str, Any]) -> GenerateOptions:
    """:class:`GenerateOptions` from keywords named like ``generate``'s flags."""
    own = split_settings(settings, GenerateOptions, "generate")
    for name in ("seeds", "prompt_dir"):
        if own.get(name) is not None:
            own[name] = Path(own[name])
    if "blacklist" in own:
        own["blacklist"] = tuple(own["blacklist"] or ())
    return GenerateOptions(**own)


@dataclass(frozen=True)
class GenerateJob:
    """A ``generate`` run resolved, its seeds read, not started: what ``--dry-run`` shows."""

    config: GenerateConfig
    seeds: list[SeedTask]
    connection: Connection

    def open(self, *, force: bool = False) -> Bootstrap:
        """Check a resumed run, save the config, connect the model (checking its server)."""
        backend = self.connection.given_or(
            lambda: create_run_backend(self.config, self.connection.flags.api_key))
        try:
            return open_run(self.config, self.seeds, backend, force=force)
        except BaseException:
            run_sync(self.connection.release(backend))
            raise


def prepare_generate(out: str | Path, **settings: Any) -> GenerateJob:
    """Resolve a ``generate`` run's settings and read its seeds; nothing is written."""
    options = generate_options(settings)
    link = connection(settings)
    config, seeds = resolve_config(Path(out), options, link.flags)
    return GenerateJob(config, seeds, link)


async def agenerate(
    out: str | Path,
    *,
    force: bool = False,
    progress: Callable[[GenerateStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> GenerateStats:
    """Grow the pool in ``out`` to ``num_instructions`` kept instructions (resuming what
    is there); settings as ``selfinstruct generate``'s flags."""
    job = prepare_generate(out, **settings)
    bootstrap = job.open(force=force)
    try:
        return await bootstrap.run(interrupt or asyncio.Event(), progress)
    finally:
        await job.connection.release(bootstrap.backend)


def generate(out: str | Path, **settings: Any) -> GenerateStats:
    """:func:`agenerate`, run to the end."""
    return run_sync(agenerate(out, **settings))


async def run_with_backend(link: Connection, opened: Callable[[Backend | None], Any],
                     work: Callable[[Any], Awaitable[StageStats]]) -> StageStats:
    """Open a stage (with the given backend, if any), run it, release its backend."""
    if link.given is not None:
        with use_backend(link.given):
            context = opened(link.given)
    else:
        context = opened(None)
    try:
        return await work(context)
    finally:
        await link.release(context.backend)


async def aclassify(
    run_dir: str | Path,
    *,
    progress: Callable[[StageStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    check: bool = True,
    **settings: Any,
) -> StageStats:
    """Mark which instructions of ``run_dir`` are classification tasks; the backend is the
    run's unless the keywords say otherwise."""
    split_settings(settings, BackendFlags, "classify")
    link = connection(settings)
    return await run_with_backend(
        link, lambda _: open_stage(Path(run_dir), link.flags, check=check),
        lambda context: classify_stage(context, interrupt or asyncio.Event(),
                                       progress or no_progress),
    )


def classify(run_dir: str | Path, **settings: Any) -> StageStats:
    """:func:`aclassify`, run to the end."""
    return run_sync(aclassify(run_dir, **settings))


async def ainstances(
    run_dir: str | Path,
    *,
    per_task: int = 5,
    instance_max_tokens: int = 1024,
    shard: str | Shard | None = None,
    progress: Callable[[StageStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    check: bool = True,
    **settings: Any,
) -> StageStats:
    """Write ``per_task`` input/output instances for every classified instruction."""
    split_settings(settings, BackendFlags, "instances")
    options = InstanceOptions(per_task=per_task, max_tokens=instance_max_tokens,
                              shard=as_shard(shard))
    link = connection(settings)
    return await run_with_backend(
        link, lambda _: open_stage(Path(run_dir), link.flags, check=check),
        lambda context: instances_stage(context, options, interrupt or asyncio.Event(),
                                        progress or no_progress),
    )


def instances(run_dir: str | Path, **settings: Any) -> StageStats:
    """:func:`ainstances`, run to the end."""
    return run_sync(ainstances(run_dir, **settings))


async def areason(
    source: str | Path,
    out: str | Path | None = None,
    *,
    field: str = "instruction",
    reference_field: str | None = None,
    language: str | None = None,
    max_reasoning_chars: int = 100_000,
    shard: str | Shard | None = None,
    progress: Callable[[StageStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> StageStats:
    """Distil reasoning traces for every prompt of ``source`` into ``out`` (samples,
    max_tokens, temperature, top_p, enable_thinking, seed as ``reason``'s flags)."""
    options = ReasonOptions(**split_settings(settings, ReasonOptions, "reason"))
    traces = TraceSettings(language=language if language in ("en", "zh") else None,  # type: ignore[arg-type]
                           max_reasoning_chars=max_reasoning_chars)
    link = connection(settings)
    return await run_with_backend(
        link,
        lambda _: open_reason(Path(source), Path(out) if out else None, link.flags,
                              options=options, traces=traces, field=field,
                              reference_field=reference_field, shard=as_shard(shard)),
        lambda job: reason_stage(job, interrupt or asyncio.Event(), progress or no_progress),
    )


def reason(source: str | Path, out: str | Path | None = None, **settings: Any) -> StageStats:
    """:func:`areason`, run to the end."""
    return run_sync(areason(source, out, **settings))


def export(
    run_dir: str | Path,
    format: str = "alpaca",
    output: str | Path | None = None,
    *,
    include_seeds: bool = False,
    data: str = "auto",
    think: str = "inline",
    min_score: float | None = None,
    fields: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write ``run_dir`` as training data (alpaca, sharegpt, messages, text) and register
    it in ``dataset_info.json`` for LLaMA-Factory."""
    return export_run(Path(run_dir), format, Path(output) if output else None,  # type: ignore[arg-type]
                      include_seeds=include_seeds, data=data, think=think,  # type: ignore[arg-type]
                      min_score=min_score, fields=fields)


def dedup(
    input: str | Path,
    output: str | Path,
    *,
    method: str = "rouge",
    similarity_threshold: float = 0.7,
    tokenizer: str = "multilingual",
    field: str = "instruction",
    against: str | Path | None = None,
    **minhash: Any,
) -> DedupSummary | MinHashSummary:
    """Drop near-duplicates from ``input`` into ``output``, keeping the first of each:
    exact ROUGE-L against everything kept (``method="rouge"``), or MinHash/LSH for long
    documents (``method="minhash"``, with ``ngram``, ``bands``, ``rows``, ``seed``,
    ``removed``, ``id_field`` as ``dedup``'s flags)."""
    if method == "minhash":
        extra: dict[str, Any] = dict(minhash)
        if extra.get("removed") is not None:
            extra["removed"] = Path(extra["removed"])
        return dedup_minhash(MinHashDedupSettings(
            input=Path(input), output=Path(output), field=field,
            tokenizer=tokenizer, **extra))  # type: ignore[arg-type]
    if method != "rouge":
        raise UserError(f"unknown dedup method {method!r}; use rouge or minhash")
    if minhash:
        raise TypeError(f"dedup() got MinHash settings {sorted(minhash)} with method='rouge'")
    if not 0.0 <= similarity_threshold <= 1.0:
        raise UserError("--similarity-threshold must be between 0 and 1")
    return dedup_file(Path(input), Path(output), threshold=similarity_threshold,
                      tokenizer=tokenizer, field=field,
                      against=Path(against) if against else None)


@dataclass(frozen=True)
class RunResult:
    """What ``run`` did, stage by stage (classify and instances: None for an Alpaca-style
    pool, whose tasks carry their own output)."""

    generate: GenerateStats
    classify: StageStats | None
    instances: StageStats | None
    export: ExportResult


def later_stages(prompt_style: str) -> Sequence[str]:
    """The stages ``run`` goes through after ``generate``, before ``export``: none for an
    Alpaca-style pool, whose tasks carry their own input and output."""
    return () if prompt_style == "alpaca" else ("classify", "instances")


async def arun(
    out: str | Path,
    *,
    per_task: int = 5,
    instance_max_tokens: int = 1024,
    format: str = "alpaca",
    include_seeds: bool = False,
    force: bool = False,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> RunResult:
    """generate → classify → instances → export, each stage resuming; the server is
    checked once, before generate."""
    stop = interrupt or asyncio.Event()
    job = prepare_generate(out, **settings)
    bootstrap = job.open(force=force)
    try:
        generated = await bootstrap.run(stop, None)
    finally:
        await job.connection.release(bootstrap.backend)
    backend_settings = {k: v for k, v in settings.items() if k in BACKEND_KEYWORDS}
    results: dict[str, StageStats] = {}
    for stage in later_stages(job.config.prompt_style):
        if stop.is_set():
            break
        if stage == "classify":
            results[stage] = await aclassify(out, interrupt=stop, check=False, **backend_settings)
        else:
            results[stage] = await ainstances(out, per_task=per_task, interrupt=stop, check=False,
                                              instance_max_tokens=instance_max_tokens,
                                              **backend_settings)
    exported = export(out, format, include_seeds=include_seeds)
    return RunResult(generated, results.get("classify"), results.get("instances"), exported)


def run(out: str | Path, **settings: Any) -> RunResult:
    """:func:`arun`, run to the end."""
    return run_sync(arun(out, **settings))


def as_shard(value: str | Shard | None) -> Shard:
    """``shard=``: a :class:`Shard`, or the flag's ``I/N`` (None: everything)."""
    return value if isinstance(value, Shard) else Shard.parse(value)


def no_progress(stats: Any) -> None:
    """No progress report."""
