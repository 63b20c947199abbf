"""Wire the stages after ``generate`` to a run directory.

``classify``, ``instances`` and ``run`` reuse what the run was generated with (backend,
model, server, language, prompt folder) unless a flag says otherwise, so the usual call
is just ``selfinstruct classify RUN_DIR``. The API key is the one thing never saved, so
it always comes from the flag or the environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.classify import classify_run
from selfinstruct.errors import UserError
from selfinstruct.instance_filters import InstanceSettings
from selfinstruct.instances import InstanceOptions, instances_run
from selfinstruct.llm import Backend, create_backend
from selfinstruct.prompt_sources import PromptRecord, load_prompts
from selfinstruct.prompts import PromptTemplate, TemplateName, load_template
from selfinstruct.reasoning import ReasonOptions, reason_run
from selfinstruct.rundir import load_run_config, save_config_section
from selfinstruct.stage import StageSettings, StageStats
from selfinstruct.store import prepare_out_dir
from selfinstruct.trace_filters import TraceSettings


@dataclass(frozen=True)
class BackendFlags:
    """Backend flags as given on the command line (None: not given)."""

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    api: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_failures: int | None = None


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs from its run directory."""

    run_dir: Path
    config: dict[str, Any]
    backend: Backend
    settings: StageSettings

    def template(self, name: TemplateName) -> PromptTemplate:
        """A prompt template in the run's language, honouring its ``--prompt-dir``."""
        prompt_dir = self.config.get("prompt_dir")
        return load_template(
            name, self.config["language"], Path(prompt_dir) if prompt_dir else None
        )


def backend_settings(saved: dict[str, Any], flags: BackendFlags) -> dict[str, Any]:
    """The backend to use: flags first, then what the run was generated with."""
    if flags.base_url:
        if not (flags.model or saved.get("backend") == "openai"):
            raise UserError("--base-url needs --model NAME (the name the server serves)")
        kind, base_url = "openai", flags.base_url
    elif saved.get("backend") == "openai":
        kind, base_url = "openai", saved.get("base_url")
    else:
        kind, base_url = "local", None
    model = flags.model or (saved.get("model", "") if kind == saved.get("backend") else "")
    concurrency = _first(flags.concurrency, saved.get("concurrency"), 8)
    return {
        "kind": kind,
        "model": model,
        "base_url": base_url,
        "api": _first(flags.api, saved.get("api"), "chat"),
        "concurrency": 1 if kind == "local" else concurrency,
        "timeout": _first(flags.timeout, saved.get("timeout"), 600.0),
        "max_retries": _first(flags.max_retries, saved.get("max_retries"), 5),
        "max_failures": _first(flags.max_failures, saved.get("max_consecutive_failures"), 20),
    }


def _first(*values: Any) -> Any:
    return next(value for value in values if value is not None)


def connect(saved: dict[str, Any], flags: BackendFlags) -> tuple[Backend, StageSettings]:
    """The backend a stage will use and how hard to drive it."""
    chosen = backend_settings(saved, flags)
    if chosen["concurrency"] < 1:
        raise UserError("--concurrency must be at least 1")
    backend = create_backend(
        chosen["kind"],
        model=chosen["model"],
        base_url=chosen["base_url"],
        api_key=flags.api_key,
        api=chosen["api"],
        timeout=chosen["timeout"],
        max_retries=chosen["max_retries"],
    )
    settings = StageSettings(
        concurrency=chosen["concurrency"], max_consecutive_failures=chosen["max_failures"]
    )
    return backend, settings


def open_stage(run_dir: Path, flags: BackendFlags) -> StageContext:
    """Read the run's config and connect the backend a stage will use."""
    config = load_run_config(run_dir)
    backend, settings = connect(config, flags)
    return StageContext(run_dir, config, backend, settings)


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
    prompts = load_prompts(source, field=field, reference_field=reference_field)
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


async def classify_stage(
    context: StageContext, stop: asyncio.Event, progress: Callable[[StageStats], None]
) -> StageStats:
    """Classify the run's instructions."""
    return await classify_run(
        context.run_dir, context.backend, context.template("classify"), context.settings,
        stop, progress,
    )


async def instances_stage(
    context: StageContext,
    options: InstanceOptions,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None],
) -> StageStats:
    """Generate instances for the run's classified instructions."""
    templates = (context.template("input-first"), context.template("output-first"))
    options = dataclasses.replace(options, seed=context.config.get("seed"))
    filters = InstanceSettings.for_language(context.config["language"])
    return await instances_run(
        context.run_dir, context.backend, templates, options, filters, context.settings,
        stop, progress,
    )
