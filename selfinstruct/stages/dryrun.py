"""``--dry-run``: what a command would send, without sending or writing anything.

People check a prompt and a token budget before paying for 50,000 requests. Each plan
uses the same code that builds the real requests, so the sample prompt is exactly what
the model would see; token counts are estimates (no tokenizer is loaded).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.config import GenerateConfig
from selfinstruct.language import is_cjk_char
from selfinstruct.llm.base import Request, template_kwargs
from selfinstruct.runs.inputs import PromptRecord
from selfinstruct.runs.layout import (
    CLASSIFICATION_FILE,
    INSTANCES_FILE,
    INSTRUCTIONS_FILE,
    REJECTED_FILE,
)
from selfinstruct.runs.seeds import SeedTask
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate
from selfinstruct.stages.classify import classify_request
from selfinstruct.stages.distill import DistillJob
from selfinstruct.stages.generate import PromptSampler
from selfinstruct.stages.instances import InstanceOptions, classification_of, instance_request
from selfinstruct.stages.over_target import pending_over_target
from selfinstruct.stages.per_record import unfinished
from selfinstruct.stages.reason import ReasonOptions, reason_request, undrawn

#: Tasks a self-instruct answer usually adds: the list runs to about 16 from 9.
SELF_INSTRUCT_TASKS_PER_ANSWER = 8


@dataclass(frozen=True)
class Plan:
    """What a command would send."""

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
    """About one token per CJK character and per four other characters."""
    cjk = sum(1 for char in text if is_cjk_char(char))
    return cjk + math.ceil((len(text) - cjk) / 4)


def plan_generate(config: GenerateConfig, seeds: list[SeedTask], template: PromptTemplate) -> Plan:
    """The first prompt of a generate run and a lower bound on its requests."""
    path = config.out / INSTRUCTIONS_FILE
    machine = [record["instruction"] for record in read_jsonl(path)]
    remaining = max(0, config.num_instructions - len(machine))
    if remaining == 0:
        return Plan("generate", 0, None, f"{path} already holds {len(machine)}")
    per_answer = (
        config.tasks_per_request if config.prompt_style == "alpaca"
        else SELF_INSTRUCT_TASKS_PER_ANSWER
    )
    _, request = PromptSampler(config, seeds, template, machine).next()
    note = (f" at least, for {remaining} more instructions at up to {per_answer} per answer "
            "before filtering")
    # Candidates an earlier session set aside past its -n are filtered before any
    # request goes out; each may cover one missing instruction.
    waiting = len(pending_over_target(config.out / REJECTED_FILE, machine))
    if waiting:
        note += f", after the {waiting} candidates set aside over an earlier -n"
    requests = math.ceil(max(0, remaining - waiting) / per_answer)
    return Plan("generate", requests, request, note)


def plan_classify(run_dir: Path, template: PromptTemplate, structured: bool = False) -> Plan:
    """One request per instruction not classified yet."""
    pending = unfinished(_tasks(run_dir), run_dir / CLASSIFICATION_FILE)
    sample = classify_request(template, pending[0], structured) if pending else None
    return Plan("classify", len(pending), sample)


def plan_instances(
    run_dir: Path, templates: tuple[PromptTemplate, PromptTemplate], options: InstanceOptions
) -> Plan:
    """One request per classified instruction without instances yet."""
    tasks = options.shard.select(_tasks(run_dir))
    classification = classification_of(run_dir, tasks)
    pending = unfinished(tasks, run_dir / INSTANCES_FILE)
    sample = None
    if pending:
        sample = instance_request(templates, options, classification[pending[0]["id"]],
                                  pending[0])
    return Plan("instances", len(pending), sample)


def plan_reason(prompts: list[PromptRecord], out_dir: Path, options: ReasonOptions) -> Plan:
    """One request per sample of each prompt not drawn yet."""
    pending = undrawn(prompts, options.samples, out_dir)
    sample = reason_request(options, *pending[0]) if pending else None
    return Plan("reason", len(pending), sample)


def _tasks(run_dir: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(run_dir / INSTRUCTIONS_FILE))


def plan_distill(job: DistillJob, out_dir: Path) -> list[str]:
    """One request per row and sample without an answer yet: the count, the system
    prompt, the first rendered prompt and the request's other fields."""
    pending = job.undone(out_dir)
    if not pending:
        return Plan("distill", 0, None).lines()
    request = job.request(pending[0][1])
    lines = Plan("distill", len(pending), request).lines()
    if request.system:
        lines[1:1] = ["system prompt:", "-" * 40, request.system, "-" * 40]
    extra = {**request.extra_body}
    kwargs = template_kwargs(request)
    if kwargs:
        extra["chat_template_kwargs"] = kwargs
    temperature = "server default" if request.temperature is None else request.temperature
    lines.append(f"request: max_tokens {request.max_tokens}, temperature {temperature}, "
                 f"stop {list(request.stop)}, extra body {extra or 'none'}")
    return lines
