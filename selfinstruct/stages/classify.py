"""Which instructions are classification tasks (a small, finite set of output labels)?

The answer picks the instance prompt: classification tasks get output-first generation
(labels first, then an input per label), which keeps labels balanced; the rest get
input-first. Decoding is greedy so the decision is stable across runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.layout import CLASSIFICATION_FILE, INSTRUCTIONS_FILE, load_run_config
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate, run_template
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.per_record import (
    StageSettings,
    StageStats,
    run_stage,
    stage_files,
    unfinished,
)
from selfinstruct.text.instances import parse_yes_no
from selfinstruct.text.schemas import answer_schema, classify_schema
from selfinstruct.text.structured import read_yes_no

#: Room for "Yes", "是", or a short "No, because…" that the parser still reads.
CLASSIFY_MAX_TOKENS = 32


@dataclass(frozen=True)
class ClassifyJob:
    """``classify`` over a run directory, ready to send: the run's own backend unless the
    caller named another, and its template in the run's language."""

    run_dir: Path
    spec: BackendSpec
    template: PromptTemplate
    name: str = "classify"

    @property
    def structured(self) -> bool:
        """Whether the answers are asked for as JSON (``--structured`` not ``off``)."""
        return self.spec.structured != "off"

    def plan(self) -> list[str]:
        """One request per instruction not classified yet."""
        pending = unfinished(list(read_jsonl(self.run_dir / INSTRUCTIONS_FILE)),
                             self.run_dir / CLASSIFICATION_FILE)
        sample = classify_request(self.template, pending[0], self.structured) if pending else None
        return Plan(self.name, len(pending), sample).lines()

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Classify every instruction not classified yet."""
        return await classify_run(self.run_dir, client.backend, self.template,
                                  client.settings, stop, progress, structured=self.structured)

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, requests and rejections."""
        return stats.summary()


def prepare_classify(run_dir: Path, backend: BackendSettings) -> ClassifyJob:
    """Read the run's config and resolve its backend; nothing is sent or written."""
    config = load_run_config(run_dir)
    spec = resolve_backend(config, backend)
    return ClassifyJob(run_dir, spec, run_template(config, "classify",
                                                   structured=spec.structured != "off"))


async def classify_run(
    run_dir: Path,
    backend: Backend,
    template: PromptTemplate,
    settings: StageSettings,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None] | None = None,
    *,
    structured: bool = False,
) -> StageStats:
    """Classify every instruction of ``run_dir`` not classified yet; with ``structured``
    the answer is asked for as JSON, and read as text when it is not."""
    tasks = list(read_jsonl(run_dir / INSTRUCTIONS_FILE))
    with stage_files(run_dir, CLASSIFICATION_FILE) as files:
        pending = unfinished(tasks, files.results.path)
        stats = StageStats("classify", total=len(tasks), done_before=len(tasks) - len(pending))

        def make_request(task: dict[str, Any]) -> Request:
            return classify_request(template, task, structured)

        def handle(task: dict[str, Any], completion: Completion) -> None:
            decision = decide_classification(task, completion, structured)
            stats.parsed[decision.parsed_as] += 1
            if decision.rejection is not None:
                name, detail = decision.rejection
                stats.rejected[name] += 1
                files.rejected.write({"stage": "classify", "id": task["id"], "filter": name,
                                      "detail": detail})
            files.results.write(decision.record)

        return await run_stage(
            pending, backend=backend, settings=settings, make_request=make_request,
            handle=handle, files=files, stats=stats, stop=stop, progress=progress,
        )


@dataclass(frozen=True)
class ClassifyDecision:
    """What one answer becomes: its ``classification.jsonl`` record, whether it was read
    as JSON or as text (for ``stats.json``), and why it is rejected (None: it was read)."""

    record: dict[str, Any]
    parsed_as: Literal["json", "text"]
    rejection: tuple[str, str] | None


def decide_classification(task: dict[str, Any], completion: Completion,
                          structured: bool) -> ClassifyDecision:
    """Read the yes/no answer (as JSON first when it was asked for as JSON). Pure: the
    stage writes what this decides, so it is tested on answer texts alone.

    An answer nobody can read is still a record, as not-classification: input-first is
    the safe default for a task we cannot place, and the rejection says why.
    """
    answer = read_yes_no(completion.text) if structured else None
    parsed_as: Literal["json", "text"] = "text" if answer is None else "json"
    if answer is None:
        answer = parse_yes_no(completion.text)
    rejection = None
    if answer is None:
        rejection = ("unparsed_answer", completion.text.strip()[:500])
    record = {
        "id": task["id"],
        "is_classification": bool(answer),
        "answer": completion.text.strip()[:200],
        "parsed": answer is not None,
    }
    return ClassifyDecision(record, parsed_as, rejection)


def classify_request(
    template: PromptTemplate, task: dict[str, Any], structured: bool = False
) -> Request:
    """The yes/no question for one instruction, decoded greedily; with ``structured``,
    asked for as ``{"answer": "Yes" | "No"}``."""
    schema = classify_schema(template.language) if structured else None
    return Request(
        prompt=template.render(instruction=task["instruction"]),
        max_tokens=CLASSIFY_MAX_TOKENS,
        temperature=0.0,
        top_p=1.0,
        **answer_schema(schema),
    )


def load_classification(run_dir: Path) -> dict[str, bool]:
    """``id -> is_classification`` for every classified instruction."""
    return {
        record["id"]: bool(record["is_classification"])
        for record in read_jsonl(run_dir / CLASSIFICATION_FILE)
    }
