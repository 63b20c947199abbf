"""Distil reasoning: ask a thinking model each prompt, keep clean traces and answers.

Each prompt is sent ``samples`` times. Every answer is split into reasoning and final
answer (wherever the server put the trace), checked by the trace filters and, with a
reference answer, compared with it so only correct traces are kept (rejection
sampling). Kept traces go to ``reasoning.jsonl``; every rejection, with its filter and
reason, to ``rejected.jsonl``; with references, the pass rate of each prompt to
``pass_rates.jsonl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.filters.traces import Trace, TraceSettings, check_trace
from selfinstruct.language import Language
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.pool import teacher_of
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.llm.teachers import resolve_teachers
from selfinstruct.runs.inputs import PromptRecord, load_prompts
from selfinstruct.runs.layout import (
    PASS_RATES_FILE,
    REASONING_FILE,
    REJECTED_FILE,
    save_config_section,
)
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.store import prepare_out_dir, read_jsonl, write_atomic
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.per_record import StageSettings, StageStats, run_stage, stage_files
from selfinstruct.stages.teacher import Teacher
from selfinstruct.text.answers import matches_reference
from selfinstruct.text.thinking import split_thinking


@dataclass(frozen=True)
class ReasonSettings:
    """What ``reason`` reads, how it samples the thinking model (defaults suit
    DeepSeek-R1 / Qwen3 / QwQ) and which traces it keeps."""

    samples: int = 1
    max_tokens: int = 8192
    temperature: float = 0.6
    top_p: float = 0.95
    enable_thinking: bool | None = None
    seed: int | None = None
    #: The field (or CSV column) holding the prompt.
    field: str = "instruction"
    #: A field with a reference answer: only traces whose answer matches it are kept.
    reference_field: str | None = None
    #: Reject reasoning in another language (None: any language).
    language: Language | None = None
    max_reasoning_chars: int = 100_000
    shard: Shard = EVERYTHING
    #: System prompt, stop strings, body fields, thinking switch (shared with distill).
    teacher: Teacher = dataclasses.field(default_factory=Teacher)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UserError("--samples must be at least 1")
        if self.max_tokens < 16:
            raise UserError("--max-tokens must be at least 16")

    def traces(self) -> TraceSettings:
        """The trace filters' settings."""
        return TraceSettings(language=self.language,
                             max_reasoning_chars=self.max_reasoning_chars)

    def to_json(self) -> dict[str, Any]:
        """The ``reason`` section of ``config.json``."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "teacher"}
        data.update(shard=f"{self.shard.index}/{self.shard.count}", **self.teacher.to_json())
        return data

    def request_seed(self, key: str, sample: int) -> int | None:
        """A per-sample seed, so a seeded run draws the same K traces again."""
        if self.seed is None:
            return None
        return zlib.crc32(f"{self.seed}/{key}/{sample}".encode())


def user_message(instruction: str, input_text: str) -> str:
    """The user turn: the instruction, then the input when there is one."""
    return f"{instruction}\n\n{input_text}" if input_text else instruction


@dataclass(frozen=True)
class ReasonJob:
    """A ``reason`` run, ready to send: the prompts read, the thinking model resolved.

    The model is never taken from a run's config: the thinking model is usually not the
    one that wrote the instructions, so it comes from the flags (or the embedded model).
    """

    source: Path
    out_dir: Path
    prompts: list[PromptRecord]
    settings: ReasonSettings
    spec: BackendSpec
    name: str = "reason"

    def plan(self) -> list[str]:
        """One request per sample of each prompt not drawn yet."""
        pending = undrawn(self.prompts, self.settings.samples, self.out_dir)
        sample = reason_request(self.settings, *pending[0]) if pending else None
        return Plan(self.name, len(pending), sample).lines()

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Draw every missing sample, recording what the run was made with."""
        prepare_out_dir(self.out_dir)
        save_config_section(self.out_dir, "reason", {
            "input": str(self.source), "model": client.backend.name,
            **self.settings.to_json()})
        return await reason_run(self.prompts, self.out_dir, client.backend, self.settings,
                                self.settings.traces(), client.settings, stop, progress)

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, then what was kept, and a hint when the model never reasoned."""
        kept = sum(1 for _ in read_jsonl(self.out_dir / REASONING_FILE))
        lines = [*stats.summary(),
                 f"reason: {kept} traces in {self.out_dir / REASONING_FILE}, "
                 f"{sum(stats.rejected.values())} rejected this session"]
        without = stats.seen.get("without_reasoning", 0)
        if without:
            lines.append(
                f"{without} answers had no reasoning trace; is the model a thinking model "
                "(DeepSeek-R1, Qwen3, QwQ)? For Qwen3 pass --enable-thinking; behind vLLM, "
                "--reasoning-parser is optional (the trace is read from <think> tags too)"
            )
        return lines


def prepare_reason(source: Path, out_dir: Path | None, settings: ReasonSettings,
                   backend: BackendSettings) -> ReasonJob:
    """Read the prompts (a run directory or any dataset file) and resolve the thinking
    model; nothing is sent or written."""
    if out_dir is None:
        if not source.is_dir():
            raise UserError("-o OUT_DIR is needed when INPUT is a file")
        out_dir = source
    prompts = settings.shard.select(load_prompts(source, field=settings.field,
                                                 reference_field=settings.reference_field))
    spec = resolve_teachers(backend, settings.samples)
    settings = replace(settings, teacher=settings.teacher.resolved(spec))
    return ReasonJob(source, out_dir, prompts, settings, spec)


async def reason_run(
    prompts: Sequence[PromptRecord],
    out_dir: Path,
    backend: Backend,
    options: ReasonSettings,
    traces: TraceSettings,
    settings: StageSettings,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None] | None = None,
) -> StageStats:
    """Draw every missing sample of every prompt; resumable by ``(id, sample)``."""
    with stage_files(out_dir, REASONING_FILE) as files:
        pending = [
            {"id": prompt.id, "sample": sample, "prompt": prompt}
            for prompt, sample in undrawn(prompts, options.samples, out_dir)
        ]
        total = len(prompts) * options.samples
        stats = StageStats("reason", total=total, done_before=total - len(pending))

        def make_request(item: dict[str, Any]) -> Request:
            return teacher_of(reason_request(options, item["prompt"], item["sample"]),
                              backend, item["sample"])

        def handle(item: dict[str, Any], completion: Completion) -> None:
            decision = decide_trace(item["prompt"], item["sample"], completion, traces,
                                    completion.model or backend.name)
            if decision.without_reasoning:
                stats.seen["without_reasoning"] += 1
            if decision.rejection is None:
                files.results.write(decision.record)
                return
            name, detail = decision.rejection
            stats.rejected[name] += 1
            files.rejected.write({"stage": "reason", "filter": name, "detail": detail,
                                  **decision.record})

        try:
            return await run_stage(
                pending, backend=backend, settings=settings, make_request=make_request,
                handle=handle, files=files, stats=stats, stop=stop, progress=progress,
            )
        finally:
            if any(prompt.reference is not None for prompt in prompts):
                write_pass_rates(out_dir)


@dataclass(frozen=True)
class TraceDecision:
    """What one answer becomes: its record, and why it is rejected (None: kept)."""

    record: dict[str, Any]
    rejection: tuple[str, str] | None
    without_reasoning: bool


def decide_trace(prompt: PromptRecord, sample: int, completion: Completion,
                 traces: TraceSettings, model: str) -> TraceDecision:
    """Split the answer into trace and final answer, run the trace filters and, with a
    reference, compare the answer with it. Pure: the stage writes what this decides."""
    thought = split_thinking(completion.text, completion.reasoning)
    verdict = check_trace(Trace(thought, completion.finish_reason), traces)
    record: dict[str, Any] = {
        "id": prompt.id,
        "sample": sample,
        "instruction": prompt.instruction,
        "input": prompt.input,
        "reasoning": thought.reasoning or "",
        "answer": thought.answer,
        "model": model,
        "finish_reason": completion.finish_reason,
        "usage": asdict(completion.usage),
    }
    if verdict is None and prompt.reference is not None:
        record["reference"] = prompt.reference
        record["correct"] = matches_reference(thought.answer, prompt.reference)
        if not record["correct"]:
            verdict = ("wrong_answer", f"the answer does not match {prompt.reference!r}")
    return TraceDecision(record, verdict, not thought.reasoning)


def reason_request(options: ReasonSettings, prompt: PromptRecord, sample: int) -> Request:
    """One draw of one prompt, with the teacher's system prompt, stops and switch."""
    return options.teacher.apply(Request(
        prompt=user_message(prompt.instruction, prompt.input),
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        enable_thinking=options.enable_thinking,
        seed=options.request_seed(prompt.id, sample),
    ))


def undrawn(prompts: Sequence[PromptRecord], samples: int,
            out_dir: Path) -> list[tuple[PromptRecord, int]]:
    """Each ``(prompt, sample)`` with no kept or rejected trace in ``out_dir`` yet: what a
    resumed run still has to draw (and what its ``--dry-run`` counts)."""
    done = {(record["id"], record["sample"]) for record in read_jsonl(out_dir / REASONING_FILE)}
    done.update(
        (record["id"], record["sample"])
        for record in read_jsonl(out_dir / REJECTED_FILE)
        if record.get("stage") == "reason"
    )
    return [(prompt, sample) for prompt in prompts for sample in range(samples)
            if (prompt.id, sample) not in done]


def write_pass_rates(out_dir: Path) -> None:
    """Per prompt: samples drawn, samples correct, and their ratio (rewritten whole)."""
    drawn: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for record in read_jsonl(out_dir / REASONING_FILE):
        drawn[record["id"]] += 1
        correct[record["id"]] += bool(record.get("correct"))
    for record in read_jsonl(out_dir / REJECTED_FILE):
        if record.get("stage") == "reason":
            drawn[record["id"]] += 1
    lines = [
        json.dumps({"id": key, "samples": drawn[key], "correct": correct[key],
                    "pass_rate": round(correct[key] / drawn[key], 4)}, ensure_ascii=False)
        for key in drawn
    ]
    write_atomic(out_dir / PASS_RATES_FILE, lambda fp: fp.write("".join(f"{x}\n" for x in lines)))
