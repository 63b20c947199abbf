"""Generate input/output instances for every instruction of the pool.

Non-classification tasks use the input-first prompt (invent an input when the task
needs one, then answer it). Classification tasks use the output-first prompt (list the
labels, then write an input for each), because input-first lets the model favour one
label. Every example then goes through the instance filters, and each rejection is
recorded with its reason in ``rejected.jsonl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.filters.instances import (
    InstanceRejection,
    InstanceSettings,
    filter_instances,
)
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.layout import INSTANCES_FILE, INSTRUCTIONS_FILE, load_run_config
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate, run_template
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.classify import load_classification
from selfinstruct.stages.per_record import (
    StageSettings,
    StageStats,
    run_stage,
    stage_files,
    unfinished,
)
from selfinstruct.text.instances import Example, parse_input_first, parse_output_first
from selfinstruct.text.schemas import answer_schema, input_first_schema, output_first_schema
from selfinstruct.text.structured import read_input_first, read_output_first


@dataclass(frozen=True)
class InstanceOptions:
    """What to ask for per task and how to sample it."""

    per_task: int = 5
    max_tokens: int = 1024
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    shard: Shard = EVERYTHING
    #: Ask for the examples as JSON (``--structured`` not ``off``); text is still read.
    structured: bool = False

    def __post_init__(self) -> None:
        if self.per_task < 1:
            raise UserError("--per-task must be at least 1")
        if self.max_tokens < 16:
            raise UserError("--instance-max-tokens must be at least 16")

    def request_seed(self, key: str) -> int | None:
        """A per-record sampling seed, so a seeded run samples each task the same way."""
        return None if self.seed is None else zlib.crc32(f"{self.seed}/{key}".encode())


@dataclass(frozen=True)
class InstancesJob:
    """``instances`` over a run directory, ready to send."""

    run_dir: Path
    spec: BackendSpec
    options: InstanceOptions
    #: ``(input_first, output_first)`` in the run's language.
    templates: tuple[PromptTemplate, PromptTemplate]
    filters: InstanceSettings
    name: str = "instances"

    def plan(self) -> list[str]:
        """One request per classified instruction without instances yet."""
        tasks = self.options.shard.select(list(read_jsonl(self.run_dir / INSTRUCTIONS_FILE)))
        classification = classification_of(self.run_dir, tasks)
        pending = unfinished(tasks, self.run_dir / INSTANCES_FILE)
        sample = None
        if pending:
            sample = instance_request(self.templates, self.options,
                                      classification[pending[0]["id"]], pending[0])
        return Plan(self.name, len(pending), sample).lines()

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Generate instances for the run's classified instructions."""
        return await instances_run(self.run_dir, client.backend, self.templates,
                                   self.options, self.filters, client.settings, stop, progress)

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, requests and rejections."""
        return stats.summary()


def prepare_instances(run_dir: Path, options: InstanceOptions,
                      backend: BackendSettings) -> InstancesJob:
    """Read the run's config and resolve its backend; the run's seed and ``--structured``
    choice go into the options. Nothing is sent or written."""
    config = load_run_config(run_dir)
    spec = resolve_backend(config, backend)
    structured = spec.structured != "off"
    templates = (run_template(config, "input-first", structured=structured),
                 run_template(config, "output-first", structured=structured))
    options = dataclasses.replace(options, seed=config.get("seed"), structured=structured)
    return InstancesJob(run_dir, spec, options, templates,
                        InstanceSettings.for_language(config["language"]))


async def instances_run(
    run_dir: Path,
    backend: Backend,
    templates: tuple[PromptTemplate, PromptTemplate],
    options: InstanceOptions,
    filters: InstanceSettings,
    settings: StageSettings,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None] | None = None,
) -> StageStats:
    """Generate instances for each classified instruction that has none yet.

    ``templates`` is ``(input_first, output_first)``.
    """
    tasks = options.shard.select(list(read_jsonl(run_dir / INSTRUCTIONS_FILE)))
    classification = classification_of(run_dir, tasks)
    with stage_files(run_dir, INSTANCES_FILE) as files:
        pending = unfinished(tasks, files.results.path)
        stats = StageStats("instances", total=len(tasks), done_before=len(tasks) - len(pending))

        def make_request(task: dict[str, Any]) -> Request:
            return instance_request(templates, options, classification[task["id"]], task)

        def handle(task: dict[str, Any], completion: Completion) -> None:
            decision = decide_instances(task, completion, classification[task["id"]],
                                        options, filters)
            stats.parsed[decision.parsed_as] += 1
            for rejection in decision.rejections:
                stats.rejected[rejection.filter] += 1
                files.rejected.write(
                    {"stage": "instances", "id": task["id"], "filter": rejection.filter,
                     "detail": rejection.detail, "input": rejection.example.input,
                     "output": rejection.example.output}
                )
            files.results.write(decision.record)

        return await run_stage(
            pending, backend=backend, settings=settings, make_request=make_request,
            handle=handle, files=files, stats=stats, stop=stop, progress=progress,
        )


@dataclass(frozen=True)
class InstanceDecision:
    """What one answer becomes: the task's ``instances.jsonl`` record (its kept examples),
    every example dropped and why, in the order found, and whether the answer was read as
    JSON or as text (for ``stats.json``)."""

    record: dict[str, Any]
    rejections: tuple[InstanceRejection, ...]
    parsed_as: Literal["json", "text"]


def decide_instances(task: dict[str, Any], completion: Completion, is_classification: bool,
                     options: InstanceOptions, filters: InstanceSettings) -> InstanceDecision:
    """Parse the answer's examples, run the instance filters and keep up to ``per_task``.
    Pure: the stage writes what this decides, so it is tested on answer texts alone.

    An answer with no example at all still gets its (empty) record, so the task counts
    as done rather than being asked again every session, and an ``unparseable``
    rejection that carries the start of the answer for a person to read.
    """
    labels, examples, parsed_as = parse_examples(
        completion.text, is_classification, options.structured
    )
    rejections: list[InstanceRejection] = []
    if not examples:
        rejections.append(InstanceRejection(Example("", completion.text[:500]), "unparseable",
                                            "no example found in the answer"))
    kept, dropped = filter_instances(
        examples, filters, labels=labels, truncated=completion.finish_reason == "length"
    )
    record: dict[str, Any] = {
        "id": task["id"],
        "instruction": task["instruction"],
        "is_classification": is_classification,
        "instances": [
            {"input": example.input, "output": example.output}
            for example in kept[: options.per_task]
        ],
    }
    if labels is not None:
        record["labels"] = labels
    return InstanceDecision(record, (*rejections, *dropped), parsed_as)


def parse_examples(
    text: str, is_classification: bool, structured: bool
) -> tuple[list[str] | None, list[Example], Literal["json", "text"]]:
    """``(labels, examples, "json" | "text")`` of one answer: read as JSON first when it
    was asked for as JSON, as text otherwise or when it is not JSON of that shape.
    ``labels`` is None for input-first answers, which list none."""
    if is_classification:
        reading = read_output_first(text) if structured else None
        if reading is not None:
            return *reading, "json"
        return *parse_output_first(text), "text"
    examples = read_input_first(text) if structured else None
    if examples is not None:
        return None, examples, "json"
    return None, parse_input_first(text), "text"


def classification_of(run_dir: Path, tasks: list[dict[str, Any]]) -> dict[str, bool]:
    """``id -> is_classification`` of the run; an error unless all of ``tasks`` have one,
    since the instance prompt depends on it."""
    classification = load_classification(run_dir)
    unclassified = [task["id"] for task in tasks if task["id"] not in classification]
    if unclassified:
        raise UserError(
            f"{run_dir}: {len(unclassified)} instructions are not classified yet; run "
            f"selfinstruct classify {run_dir} first"
        )
    return classification


def instance_request(
    templates: tuple[PromptTemplate, PromptTemplate],
    options: InstanceOptions,
    is_classification: bool,
    task: dict[str, Any],
) -> Request:
    """Output-first for classification tasks, input-first for the rest; with
    ``options.structured``, asked for as JSON of up to ``per_task`` examples."""
    template = templates[1] if is_classification else templates[0]
    schema = None
    if options.structured:
        shape = output_first_schema if is_classification else input_first_schema
        schema = shape(options.per_task)
    return Request(
        prompt=template.render(instruction=task["instruction"], count=options.per_task),
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        seed=options.request_seed(task["id"]),
        **answer_schema(schema),
    )
