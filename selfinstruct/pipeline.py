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
from selfinstruct.prompts import PromptTemplate, TemplateName, load_template
from selfinstruct.rundir import load_run_config
from selfinstruct.stage import StageSettings, StageStats


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


def open_stage(run_dir: Path, flags: BackendFlags) -> StageContext:
    """Read the run's config and connect the backend a stage will use."""
    config = load_run_config(run_dir)
    chosen = backend_settings(config, flags)
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
    return StageContext(run_dir, config, backend, settings)


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
