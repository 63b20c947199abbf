"""Run one request per record over a list of records, resumably.

The stages after the pool (classify, instances and reason) all have this
shape: a list of records, a prompt per record, an answer to turn into output records.
Records already answered in an earlier session are skipped by the caller; here a
request that fails is recorded and the record is tried again later, up to a bound, so
one bad moment of the server costs a retry, not a hole in the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import StageAborted, UserError
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, BackendError, Completion, Request
from selfinstruct.runs.layout import FAILURES_FILE, REJECTED_FILE, save_stats
from selfinstruct.runs.store import JsonlAppender, read_jsonl
from selfinstruct.stages.executor import Executor, Sender, local_executor
from selfinstruct.stages.ledger import RequestStats


@dataclass
class WorkItem:
    """One record to send, and how often it has failed so far."""

    record: dict[str, Any]
    attempts: int = 0


@dataclass
class StageStats:
    """Counts for the progress bar, the summary and ``stats.json``."""

    stage: str
    total: int
    done_before: int
    #: Records finished, this session's and earlier ones'; starts at ``done_before``.
    done: int = field(init=False)
    gave_up: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: Stage-specific observations that are not rejections (e.g. answers without a trace).
    seen: Counter[str] = field(default_factory=Counter)
    #: Answers read as JSON (structured output) and as text; reason reads no shape.
    parsed: Counter[str] = field(default_factory=Counter)
    requests: RequestStats = field(default_factory=RequestStats)
    elapsed: float = 0.0
    interrupted: bool = False

    def __post_init__(self) -> None:
        self.done = self.done_before

    def progress(self) -> tuple[int, str, int | None]:
        """(done, detail, total) for the progress bar."""
        return (self.done, f"{self.requests.failed} failed, "
                f"{sum(self.rejected.values())} rejected", self.total)

    def summary(self) -> list[str]:
        """The summary lines every row stage starts with: counts, requests, rejections."""
        return [
            f"{self.stage}: {self.done}/{self.total} done ({self.done - self.done_before} "
            f"now) in {self.elapsed:.1f}s; {self.gave_up} given up after repeated failures",
            requests_line(self.requests, self.elapsed),
            *rejected_lines(self.rejected),
        ]

    def to_json(self) -> dict[str, Any]:
        """This stage's part of ``stats.json``."""
        parsed = {"parsed": parsed_counts(self.parsed)} if self.parsed else {}
        return {
            "total": self.total,
            "done": self.done,
            "done_this_session": self.done - self.done_before,
            "gave_up": self.gave_up,
            "rejected": dict(self.rejected.most_common()),
            "seen": dict(self.seen.most_common()),
            **parsed,
            "requests": vars(self.requests),
            "elapsed_seconds": round(self.elapsed, 3),
            **throughput(self.requests, self.elapsed),
            "interrupted": self.interrupted,
        }


def parsed_counts(parsed: Counter[str]) -> dict[str, int]:
    """How many answers were read as JSON and how many as text, both always named so
    that a run's ``stats.json`` sections read alike."""
    return {"json": parsed["json"], "text": parsed["text"]}


def throughput(requests: RequestStats, elapsed: float) -> dict[str, float]:
    """This session's answers and completion tokens per second, for ``stats.json`` and
    the summary: what tells a user whether the server, not the client, sets the pace."""
    if elapsed <= 0:
        return {"requests_per_second": 0.0, "completion_tokens_per_second": 0.0}
    return {
        "requests_per_second": round(requests.succeeded / elapsed, 2),
        "completion_tokens_per_second": round(requests.completion_tokens / elapsed, 2),
    }


def requests_line(requests: RequestStats, elapsed: float) -> str:
    """Requests, tokens and this session's rates, one line of every summary."""
    rates = throughput(requests, elapsed)
    return (
        f"requests: {requests.sent} sent, {requests.succeeded} answered, "
        f"{requests.failed} failed; tokens: {requests.prompt_tokens} prompt, "
        f"{requests.completion_tokens} completion; {rates['requests_per_second']:g} "
        f"answers/s, {rates['completion_tokens_per_second']:g} completion tokens/s"
    )


def rejected_lines(rejected: Counter[str]) -> list[str]:
    """Rejections by filter, most frequent first (none: no line)."""
    if not rejected:
        return []
    counts = ", ".join(f"{name} {count}" for name, count in rejected.most_common())
    return [f"rejected: {counts} (see rejected.jsonl)"]


@dataclass(frozen=True)
class StageFiles:
    """Where a stage appends: its results, its rejections and its failed requests, all
    in one directory, which also holds its ``stats.json``."""

    directory: Path
    results: JsonlAppender
    rejected: JsonlAppender
    failures: JsonlAppender


@contextlib.contextmanager
def stage_files(directory: Path, results_file: str) -> Iterator[StageFiles]:
    """Open a stage's three files (each repaired after a crash) and close them all."""
    with contextlib.ExitStack() as stack:
        results, rejected, failures = (
            stack.enter_context(JsonlAppender(directory / name))
            for name in (results_file, REJECTED_FILE, FAILURES_FILE)
        )
        yield StageFiles(directory, results, rejected, failures)


def unfinished(records: Sequence[dict[str, Any]], results: Path) -> list[dict[str, Any]]:
    """The records whose id is not in ``results`` yet: what a resumed stage still has to
    send (and what its ``--dry-run`` counts)."""
    done = {record["id"] for record in read_jsonl(results)}
    return [record for record in records if record["id"] not in done]


@dataclass(frozen=True)
class StageSettings:
    """How hard to push the backend, how often to retry one record, and who sends the
    requests (None: this process; ``--executor ray``: Ray Data actors)."""

    concurrency: int
    max_consecutive_failures: int = BackendSpec.max_failures
    max_attempts: int = 3
    executor: Executor | None = field(default=None, compare=False)


async def run_stage(
    pending: Sequence[dict[str, Any]],
    *,
    backend: Backend,
    settings: StageSettings,
    make_request: Callable[[dict[str, Any]], Request],
    handle: Callable[[dict[str, Any], Completion], dict[str, Any] | None],
    files: StageFiles,
    stats: StageStats,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None] | None = None,
    again_first: bool = False,
) -> StageStats:
    """Send every pending record once (retrying failures), calling ``handle`` per answer.

    ``handle`` may return a record to send again (an answer it could not use, asked once
    more); that record is not done yet and goes to the back of the queue, or with
    ``again_first`` to the front: a record that takes many requests (a conversation,
    one turn each) is then finished before new ones are started, so about C are under
    way at a time and finished ones come out all along.

    The stage's part of ``stats.json`` is saved however the run ends, so an interrupted
    session still leaves its counts for the next one to add to.
    """
    queue = deque(WorkItem(record) for record in pending)
    started = time.monotonic()

    def source() -> tuple[WorkItem, Request] | None:
        if not queue:
            return None
        item = queue.popleft()
        return item, make_request(item.record)

    def on_answer(item: WorkItem, completion: Completion) -> bool:
        again = handle(item.record, completion)
        if again is not None:
            (queue.appendleft if again_first else queue.append)(WorkItem(again))
            return False
        stats.done += 1
        if progress is not None:
            progress(stats)
        return False

    def on_failure(item: WorkItem, error: BackendError) -> None:
        item.attempts += 1
        files.failures.write(failure_record(stats.stage, item.record.get("id"), error))
        if item.attempts < settings.max_attempts:
            queue.append(item)
        else:
            stats.gave_up += 1

    executor = settings.executor or local_executor()
    runner: Sender[WorkItem] = executor.sender(
        backend,
        concurrency=settings.concurrency,
        max_consecutive_failures=settings.max_consecutive_failures,
        on_failure=on_failure,
    )
    stats.requests = runner.stats
    try:
        await runner.run(source, on_answer, stop)
        stats.interrupted = stop.is_set() and stats.done + stats.gave_up < stats.total
    except UserError as err:
        stats.interrupted = True
        raise StageAborted(err, stats) from None
    finally:
        stats.elapsed = time.monotonic() - started
        save_stats(files.directory, stats.stage, stats.to_json())
    return stats


def failure_record(stage: str, key: object, error: BackendError) -> dict[str, Any]:
    """The ``failures.jsonl`` line for a request that failed for good."""
    return {
        "stage": stage,
        "id": key,
        "error": error.message,
        "retryable": error.retryable,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
