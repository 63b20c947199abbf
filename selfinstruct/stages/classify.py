"""Which instructions are classification tasks (a small, finite set of output labels)?

The answer picks the instance prompt: classification tasks get output-first generation
(labels first, then an input per label), which keeps labels balanced; the rest get
input-first. Decoding is greedy so the decision is stable across runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.runs.layout import CLASSIFICATION_FILE, INSTRUCTIONS_FILE
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate
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
            answer = read_yes_no(completion.text) if structured else None
            stats.parsed["text" if answer is None else "json"] += 1
            if answer is None:
                answer = parse_yes_no(completion.text)
            if answer is None:
                # Input-first is the safe default for a task we cannot place.
                stats.rejected["unparsed_answer"] += 1
                files.rejected.write(
                    {"stage": "classify", "id": task["id"], "filter": "unparsed_answer",
                     "detail": completion.text.strip()[:500]}
                )
            files.results.write(
                {
                    "id": task["id"],
                    "is_classification": bool(answer),
                    "answer": completion.text.strip()[:200],
                    "parsed": answer is not None,
                }
            )

        return await run_stage(
            pending, backend=backend, settings=settings, make_request=make_request,
            handle=handle, files=files, stats=stats, stop=stop, progress=progress,
        )


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
