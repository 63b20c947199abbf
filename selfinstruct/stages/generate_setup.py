"""Turn the options of ``selfinstruct generate`` into a ready run.

This is where the defaults that depend on other settings are decided (the language from
the seeds, sampling from the prompt style, length limits from the language), where a
resumed run is checked against the settings it was started with, and where the config
is saved, all before the first request is sent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from selfinstruct.config import (
    STYLE_DEFAULTS,
    GenerateConfig,
    GenerateOptions,
    check_resume,
    file_sha256,
)
from selfinstruct.errors import UserError
from selfinstruct.filters.instructions import FilterSettings
from selfinstruct.language import Language, detect_language
from selfinstruct.llm import Backend
from selfinstruct.runs.layout import CONFIG_FILE
from selfinstruct.runs.seeds import SeedTask, bundled_seed_path, load_seeds
from selfinstruct.runs.store import prepare_out_dir, read_json, write_json_atomic
from selfinstruct.runs.templates import load_template
from selfinstruct.stages.generate import Bootstrap
from selfinstruct.stages.pipeline import BackendFlags, open_backend, resolve_backend

#: How many seed examples each style shows when --seed-examples is not given.
STYLE_SEED_EXAMPLES = {"self-instruct": 6, "alpaca": 3}


def resolve_config(
    out: Path, options: GenerateOptions, backend: BackendFlags
) -> tuple[GenerateConfig, list[SeedTask]]:
    """Load the seeds and decide every setting the caller left open: the language from
    the seeds, sampling from the prompt style, length limits from the language, and the
    backend from its flags."""
    spec, drive = resolve_backend({}, backend)
    seeds_path = options.seeds or bundled_seed_path(
        "en" if options.language == "auto" else options.language)
    seeds = load_seeds(seeds_path)
    language: Language = (detect_language(seed.instruction for seed in seeds)
                          if options.language == "auto" else options.language)
    filters = FilterSettings.for_language(language)
    style = STYLE_DEFAULTS[options.prompt_style]
    config = GenerateConfig(
        out=out,
        num_instructions=options.num_instructions,
        seeds=str(seeds_path),
        seeds_sha256=file_sha256(seeds_path),
        language=language,
        prompt_style=options.prompt_style,
        backend=spec.kind,
        model=spec.model,
        base_urls=spec.base_urls,
        api=spec.api,
        concurrency=drive.concurrency,
        similarity_threshold=options.similarity_threshold,
        tokenizer=options.tokenizer,
        most_similar=options.most_similar,
        temperature=_given(options.temperature, float(style["temperature"])),
        top_p=_given(options.top_p, float(style["top_p"])),
        max_tokens=_given(options.max_tokens, int(style["max_tokens"])),
        num_seed_examples=_given(options.seed_examples,
                                 STYLE_SEED_EXAMPLES[options.prompt_style]),
        num_machine_examples=options.machine_examples,
        tasks_per_request=options.tasks_per_request,
        seed=options.seed,
        blacklist=tuple(filters.blacklist) + tuple(options.blacklist),
        min_length=_given(options.min_length, filters.min_length),
        max_length=_given(options.max_length, filters.max_length),
        timeout=spec.timeout,
        max_retries=spec.max_retries,
        max_consecutive_failures=drive.max_failures,
        prompt_dir=str(options.prompt_dir) if options.prompt_dir else None,
        tensor_parallel_size=spec.engine.tensor_parallel_size,
        dtype=spec.engine.dtype,
        max_model_len=spec.engine.max_model_len,
        gpu_memory_utilization=spec.engine.gpu_memory_utilization,
        structured=spec.structured,
    )
    return config, seeds


T = TypeVar("T")


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def filter_settings(config: GenerateConfig) -> FilterSettings:
    """The heuristic filters' settings for this run."""
    return dataclasses.replace(
        FilterSettings.for_language(config.language),  # type: ignore[arg-type]
        min_length=config.min_length,
        max_length=config.max_length,
        blacklist=config.blacklist,
    )


def create_run_backend(config: GenerateConfig, api_key: str | None) -> Backend:
    """The backend ``config`` names, its server checked (the key is passed through,
    never stored)."""
    spec, drive = resolve_backend(config.to_json(), BackendFlags())
    return open_backend(spec, api_key, drive.concurrency)


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
