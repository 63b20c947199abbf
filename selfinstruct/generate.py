"""Turn the options of ``selfinstruct generate`` into a ready run.

This is where the defaults that depend on other settings are decided (the language from
the seeds, sampling from the prompt style, length limits from the language), where a
resumed run is checked against the settings it was started with, and where the config
is saved, all before the first request is sent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from selfinstruct.bootstrap import Bootstrap
from selfinstruct.config import STYLE_DEFAULTS, GenerateConfig, check_resume, file_sha256
from selfinstruct.errors import UserError
from selfinstruct.filters import FilterSettings
from selfinstruct.language import Language, detect_language
from selfinstruct.llm import Backend, create_backend
from selfinstruct.pipeline import BackendFlags, resolve_backend
from selfinstruct.prompts import PromptStyle, load_template
from selfinstruct.rundir import CONFIG_FILE
from selfinstruct.seeds import SeedTask, bundled_seed_path, load_seeds
from selfinstruct.store import prepare_out_dir, read_json, write_json_atomic

#: How many seed examples each style shows when --seed-examples is not given.
STYLE_SEED_EXAMPLES = {"self-instruct": 6, "alpaca": 3}


def resolve_config(
    *,
    out: Path,
    seeds_path: Path | None,
    language: str,
    prompt_style: PromptStyle,
    options: dict[str, Any],
) -> tuple[GenerateConfig, list[SeedTask]]:
    """Load the seeds and fill every setting the user left open."""
    if language not in ("auto", "en", "zh"):
        raise ValueError(f"unknown language {language!r}")
    if seeds_path is None:
        resolved: Language = "en" if language == "auto" else language  # type: ignore[assignment]
        seeds_path = bundled_seed_path(resolved)
    seeds = load_seeds(seeds_path)
    if language == "auto":
        resolved = detect_language(seed.instruction for seed in seeds)
    else:
        resolved = language  # type: ignore[assignment]
    filters = FilterSettings.for_language(resolved)
    given = {key: value for key, value in options.items() if value is not None}
    settings: dict[str, Any] = {
        **STYLE_DEFAULTS[prompt_style],
        "num_seed_examples": STYLE_SEED_EXAMPLES[prompt_style],
        "min_length": filters.min_length,
        "max_length": filters.max_length,
        **given,
        "blacklist": tuple(filters.blacklist) + tuple(given.get("blacklist", ())),
    }
    config = GenerateConfig(
        out=out,
        seeds=str(seeds_path),
        seeds_sha256=file_sha256(seeds_path),
        language=resolved,
        prompt_style=prompt_style,
        **settings,
    )
    return config, seeds


def filter_settings(config: GenerateConfig) -> FilterSettings:
    """The heuristic filters' settings for this run."""
    return dataclasses.replace(
        FilterSettings.for_language(config.language),  # type: ignore[arg-type]
        min_length=config.min_length,
        max_length=config.max_length,
        blacklist=config.blacklist,
    )


def create_run_backend(config: GenerateConfig, api_key: str | None) -> Backend:
    """The backend ``config`` names (the key is passed through, never stored)."""
    spec, drive = resolve_backend(config.to_json(), BackendFlags())
    return create_backend(spec, api_key, drive.concurrency)


def open_run(
    config: GenerateConfig, seeds: list[SeedTask], backend: Backend, *, force: bool
) -> Bootstrap:
    """Check a resumed run, save the config and load the template."""
    prepare_out_dir(config.out)
    saved = read_json(config.out / CONFIG_FILE)
    if saved is not None:
        check_resume(saved, config, force=force)
    template = load_template(
        config.prompt_style,
        config.language,  # type: ignore[arg-type]
        Path(config.prompt_dir) if config.prompt_dir else None,
        structured=config.asks_for_json,
    )
    if config.prompt_style == "alpaca" and not any(
        seed.instances and seed.instances[0].output for seed in seeds
    ):
        raise UserError(
            f"{config.seeds}: --prompt-style alpaca shows seed tasks with their output, and "
            "none of these seeds has one; use seeds with instances or --prompt-style "
            "self-instruct"
        )
    write_json_atomic(config.out / CONFIG_FILE, config.to_json())
    return Bootstrap(config, seeds, backend, template, filter_settings(config))
