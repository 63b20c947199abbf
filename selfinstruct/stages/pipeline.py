"""Wire the stages after ``generate`` to a run directory.

``classify``, ``instances`` and ``run`` reuse what the run was generated with (backend,
model, server, language, prompt folder) unless a flag says otherwise, so the usual call
is just ``selfinstruct classify RUN_DIR``. The API key is the one thing never saved, so
it always comes from the flag or the environment. Every stage's backend is made by
:func:`open_backend`, which checks its server before anything is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from selfinstruct.errors import UserError
from selfinstruct.filters.instances import InstanceSettings
from selfinstruct.filters.traces import TraceSettings
from selfinstruct.llm import (
    Backend,
    BackendError,
    BackendSpec,
    EngineOptions,
    create_backend,
    given_backend,
)
from selfinstruct.llm.base import preflight
from selfinstruct.runs.inputs import PromptRecord, load_prompts
from selfinstruct.runs.layout import load_run_config, save_config_section
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import prepare_out_dir
from selfinstruct.runs.templates import PromptTemplate, TemplateName, load_template
from selfinstruct.stages.classify import classify_run
from selfinstruct.stages.distill import DistillJob
from selfinstruct.stages.dryrun import plan_classify, plan_distill, plan_instances, plan_reason
from selfinstruct.stages.instances import InstanceOptions, instances_run
from selfinstruct.stages.per_record import StageSettings, StageStats
from selfinstruct.stages.reason import ReasonOptions, reason_run

#: Who sends a row stage's requests: this process, or Ray Data actors.
ExecutorName = Literal["local", "ray"]


@dataclass(frozen=True)
class ExecutorFlags:
    """``--executor`` and its Ray flags (the row stages: instances, reason, distill,
    score): who sends the requests, this process or Ray Data actors."""

    executor: ExecutorName = "local"
    ray_address: str | None = None
    ray_actors: int | None = None

    def __post_init__(self) -> None:
        if self.executor not in get_args(ExecutorName):
            raise UserError(f"--executor {self.executor}: expected local or ray")
        if self.executor != "ray" and (self.ray_address is not None
                                       or self.ray_actors is not None):
            raise UserError("--ray-address and --ray-actors need --executor ray")
        if self.ray_actors is not None and self.ray_actors < 1:
            raise UserError("--ray-actors must be at least 1")


@dataclass(frozen=True)
class BackendFlags:
    """Backend flags as given on the command line (None / empty: not given)."""

    backend: str | None = None
    base_url: tuple[str, ...] = ()
    base_url_file: Path | None = None
    model: str | None = None
    api_key: str | None = None
    api: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_failures: int | None = None
    tensor_parallel_size: int | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    structured: str | None = None
    executor: ExecutorFlags = dataclasses.field(default_factory=ExecutorFlags)

    def urls(self) -> tuple[str, ...]:
        """``--base-url`` values, then the lines of ``--base-url-file`` (``#`` comments)."""
        urls = list(self.base_url)
        if self.base_url_file is not None:
            try:
                lines = self.base_url_file.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise UserError(f"{self.base_url_file}: cannot read ({err.strerror})") from None
            urls += [line.split("#", 1)[0].strip() for line in lines]
        return tuple(url for url in urls if url)


@dataclass(frozen=True)
class Drive:
    """How hard to push the backend: requests in flight, failures in a row allowed."""

    concurrency: int
    max_failures: int


#: Requests in flight when nobody said: vLLM wants big rounds, servers a moderate load.
DEFAULT_CONCURRENCY = {"openai": 8, "vllm": 256, "local": 1}

#: What a backend setting nobody gave (on the command line, or in the run) becomes: the
#: one place these defaults are written (the CLI's help quotes them from here).
BACKEND_DEFAULTS: dict[str, Any] = {
    "api": "chat", "timeout": 600.0, "max_retries": 5, "max_failures": 20,
    "tensor_parallel_size": 1, "dtype": "auto", "gpu_memory_utilization": 0.9,
}


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs from its run directory."""

    run_dir: Path
    config: dict[str, Any]
    backend: Backend
    settings: StageSettings
    #: Whether the stage asks for JSON answers (``--structured`` is not ``off``).
    structured: bool = False

    def template(self, name: TemplateName) -> PromptTemplate:
        """A prompt template in the run's language, honouring its ``--prompt-dir``; the
        JSON variant when the stage asks for JSON."""
        return run_template(self.config, name, structured=self.structured)


def run_template(
    config: dict[str, Any], name: TemplateName, *, structured: bool = False
) -> PromptTemplate:
    """A prompt template in a run's language, honouring the run's ``--prompt-dir``."""
    prompt_dir = config.get("prompt_dir")
    return load_template(name, config["language"], Path(prompt_dir) if prompt_dir else None,
                         structured=structured)


def resolve_backend(saved: dict[str, Any], flags: BackendFlags) -> tuple[BackendSpec, Drive]:
    """The backend to use: flags first, then what the run was saved with, then defaults."""
    given_urls = flags.urls()
    urls = given_urls or tuple(saved.get("base_urls", ()))
    kind = flags.backend if flags.backend not in (None, "auto") else None
    if kind is None:
        kind = "openai" if given_urls else saved.get("backend") or ("openai" if urls else "local")
    if kind == "openai" and not urls:
        raise UserError("--backend openai needs --base-url URL (or --base-url-file)")
    same_kind = kind == saved.get("backend")
    model = flags.model or (saved.get("model", "") if same_kind else "")
    if kind == "openai" and not model:
        raise UserError("--base-url needs --model NAME (the name the server serves)")
    if kind == "vllm" and not model:
        raise UserError("--backend vllm needs --model (a Hugging Face id or a local path)")
    engine = EngineOptions(
        tensor_parallel_size=_first(flags.tensor_parallel_size,
                                    saved.get("tensor_parallel_size"),
                                    BACKEND_DEFAULTS["tensor_parallel_size"]),
        dtype=_first(flags.dtype, saved.get("dtype"), BACKEND_DEFAULTS["dtype"]),
        max_model_len=_first(flags.max_model_len, saved.get("max_model_len"), 0) or None,
        gpu_memory_utilization=_first(flags.gpu_memory_utilization,
                                      saved.get("gpu_memory_utilization"),
                                      BACKEND_DEFAULTS["gpu_memory_utilization"]),
        seed=saved.get("seed"),
    )
    spec = BackendSpec(
        kind=kind,  # type: ignore[arg-type]
        model=model,
        base_urls=urls if kind == "openai" else (),
        api=_first(flags.api, saved.get("api"), BACKEND_DEFAULTS["api"]),
        timeout=_first(flags.timeout, saved.get("timeout"), BACKEND_DEFAULTS["timeout"]),
        max_retries=_first(flags.max_retries, saved.get("max_retries"),
                           BACKEND_DEFAULTS["max_retries"]),
        seed=saved.get("seed"),
        engine=engine,
        structured=_first(flags.structured, saved.get("structured"), "auto"),
    )
    concurrency = _first(flags.concurrency, saved.get("concurrency") if same_kind else None,
                         DEFAULT_CONCURRENCY[kind])
    drive = Drive(
        concurrency=1 if kind == "local" and concurrency >= 1 else concurrency,
        max_failures=_first(flags.max_failures, saved.get("max_consecutive_failures"),
                            BACKEND_DEFAULTS["max_failures"]),
    )
    if drive.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    if drive.max_failures < 1:
        raise UserError("--max-failures must be at least 1")
    if spec.timeout <= 0:
        raise UserError("--timeout must be positive")
    if spec.max_retries < 0:
        raise UserError("--max-retries must not be negative")
    return spec, drive


def _first(*values: Any) -> Any:
    return next(value for value in values if value is not None)


def connect(
    saved: dict[str, Any], flags: BackendFlags, *, check: bool = True
) -> tuple[Backend, StageSettings]:
    """The backend a stage will use (its server checked unless ``check`` is False) and
    how hard to drive it."""
    spec, drive = resolve_backend(saved, flags)
    if flags.executor.executor == "ray":
        return _ray_backend(spec, flags, _drive(drive), check=check)
    return open_backend(spec, flags.api_key, drive.concurrency, check=check), _drive(drive)


def _drive(drive: Drive) -> StageSettings:
    """How hard a stage drives its backend."""
    return StageSettings(concurrency=drive.concurrency,
                         max_consecutive_failures=drive.max_failures)


def _ray_backend(spec: BackendSpec, flags: BackendFlags, settings: StageSettings, *,
                 check: bool) -> tuple[Backend, StageSettings]:
    """``--executor ray``: the server is checked from here as usual (an OpenAI-compatible
    one; an engine is only ever loaded in the actors), then the stage gets the actors'
    stand-in and an executor that sends from them."""
    from selfinstruct.cluster.executor import RayOptions, ray_stage

    options = RayOptions(flags.executor.ray_address, flags.executor.ray_actors)
    if check and spec.kind == "openai" and given_backend() is None:
        probe = create_backend(spec, flags.api_key, 1)
        _check_server(probe)
        _run_apart(probe.aclose())
    return ray_stage(spec, flags.api_key, options, settings)


def open_backend(
    spec: BackendSpec, api_key: str | None, concurrency: int, *, check: bool = True
) -> Backend:
    """Create a stage's backend and, unless ``check`` is False, check its server.

    Every stage's backend comes through here, so a server that is not there, a refused
    key or a model the server does not list stop the command in seconds with one line,
    instead of after minutes of request retries; ``run`` checks once, for its first
    stage. The check runs in an event loop of its own, before the stage's, and blocks
    until it is done (a few seconds at most), even when called from a running loop.
    """
    backend = create_backend(spec, api_key, concurrency)
    if check:
        _check_server(backend)
    return backend


def _check_server(backend: Backend) -> None:
    """Run the backend's check; when it fails, close the backend and stop with one line."""
    try:
        _run_apart(preflight(backend))
    except BackendError as err:
        _run_apart(backend.aclose())
        raise UserError(f"{backend.name}: {err.message}") from None


def _run_apart(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to the end in an event loop of its own: on this thread, or on a
    helper thread when this one already runs a loop (a notebook, an async caller of the
    library), since a loop cannot be started inside another."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work)
        return
    with ThreadPoolExecutor(max_workers=1) as helper:
        helper.submit(asyncio.run, work).result()


def open_stage(run_dir: Path, flags: BackendFlags, *, check: bool = True) -> StageContext:
    """Read the run's config and connect the backend a stage will use (its server checked
    unless ``check`` is False)."""
    config = load_run_config(run_dir)
    spec, drive = resolve_backend(config, flags)
    backend = open_backend(spec, flags.api_key, drive.concurrency, check=check)
    return StageContext(run_dir, config, backend, _drive(drive), spec.structured != "off")


@dataclass(frozen=True)
class ReasonJob:
    """A ``reason`` invocation, ready to run."""

    prompts: list[PromptRecord]
    out_dir: Path
    backend: Backend
    settings: StageSettings
    options: ReasonOptions
    traces: TraceSettings


def open_reason(
    source: Path,
    out_dir: Path | None,
    flags: BackendFlags,
    *,
    options: ReasonOptions,
    traces: TraceSettings,
    field: str,
    reference_field: str | None,
    shard: Shard = EVERYTHING,
) -> ReasonJob:
    """Read the prompts, prepare the output directory and connect the thinking model.

    The model is never taken from a run's config: the thinking model is usually not the
    one that wrote the instructions, so it comes from the flags (or the embedded model).
    """
    if options.samples < 1:
        raise UserError("--samples must be at least 1")
    if options.max_tokens < 16:
        raise UserError("--max-tokens must be at least 16")
    if out_dir is None:
        if not source.is_dir():
            raise UserError("-o OUT_DIR is needed when INPUT is a file")
        out_dir = source
    prompts = shard.select(load_prompts(source, field=field, reference_field=reference_field))
    prepare_out_dir(out_dir)
    backend, settings = connect({}, flags)
    save_config_section(
        out_dir,
        "reason",
        {"input": str(source), "model": backend.name, "field": field,
         "reference_field": reference_field, **dataclasses.asdict(options),
         **dataclasses.asdict(traces)},
    )
    return ReasonJob(prompts, out_dir, backend, settings, options, traces)


async def reason_stage(
    job: ReasonJob, stop: asyncio.Event, progress: Callable[[StageStats], None]
) -> StageStats:
    """Draw the traces of a prepared ``reason`` job."""
    return await reason_run(
        job.prompts, job.out_dir, job.backend, job.options, job.traces, job.settings,
        stop, progress,
    )


def dry_run_stage(
    run_dir: Path, stage: str, flags: BackendFlags, options: InstanceOptions | None = None
) -> list[str]:
    """``--dry-run`` of classify or instances: nothing is loaded, sent or written."""
    config = load_run_config(run_dir)
    spec, drive = resolve_backend(config, flags)
    structured = spec.structured != "off"
    if stage == "classify":
        template = run_template(config, "classify", structured=structured)
        plan = plan_classify(run_dir, template, structured)
    else:
        templates = (run_template(config, "input-first", structured=structured),
                     run_template(config, "output-first", structured=structured))
        options = dataclasses.replace(options or InstanceOptions(), structured=structured)
        plan = plan_instances(run_dir, templates, options)
    return [_destination(spec, drive), *plan.lines()]


def dry_run_reason(
    source: Path,
    out_dir: Path | None,
    flags: BackendFlags,
    *,
    options: ReasonOptions,
    field: str,
    reference_field: str | None,
    shard: Shard = EVERYTHING,
) -> list[str]:
    """``--dry-run`` of reason: nothing is loaded, sent or written."""
    spec, drive = resolve_backend({}, flags)
    prompts = shard.select(load_prompts(source, field=field, reference_field=reference_field))
    plan = plan_reason(prompts, out_dir or source, options)
    return [_destination(spec, drive), *plan.lines()]


def dry_run_distill(job: DistillJob, out_dir: Path, flags: BackendFlags) -> list[str]:
    """``--dry-run`` of distill: nothing is loaded, sent or written."""
    spec, drive = resolve_backend({}, flags)
    return [_destination(spec, drive), *plan_distill(job, out_dir)]


def _destination(spec: BackendSpec, drive: Drive) -> str:
    """The first line of a ``--dry-run``: which backend would get the requests."""
    return (f"would send to {spec.kind}:{spec.model or 'embedded model'} "
            f"({drive.concurrency} in flight)")


async def classify_stage(
    context: StageContext, stop: asyncio.Event, progress: Callable[[StageStats], None]
) -> StageStats:
    """Classify the run's instructions."""
    return await classify_run(
        context.run_dir, context.backend, context.template("classify"), context.settings,
        stop, progress, structured=context.structured,
    )


async def instances_stage(
    context: StageContext,
    options: InstanceOptions,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None],
) -> StageStats:
    """Generate instances for the run's classified instructions."""
    templates = (context.template("input-first"), context.template("output-first"))
    options = dataclasses.replace(options, seed=context.config.get("seed"),
                                  structured=context.structured)
    filters = InstanceSettings.for_language(context.config["language"])
    return await instances_run(
        context.run_dir, context.backend, templates, options, filters, context.settings,
        stop, progress,
    )
