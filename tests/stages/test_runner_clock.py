"""Failures, backoff and resuming, in microseconds: the library's fake backend (or the
OpenAI client on a mock transport) and a fake clock stand in for the fault server and
real waiting, so each bug the slow tests of ``tests/reliability`` catch by timing is
caught here by a plain assert. No test depends on the order the event loop runs the
slots in: answers are chosen by prompt, and a burst is held until all of it is in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

import selfinstruct
from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.fake import FakeBackend, completion
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.stages.runner import Runner
from tests.helpers import answer, chat_body


class FakeClock:
    """Time that moves only when the runner pauses: every pause is recorded, none waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class HeldTogether:
    """Holds the requests whose prompt is in ``burst`` until all of them are in flight,
    then lets them through to ``inner``: the burst is sent together, as when a server
    goes away under C requests, whatever order the slots run in."""

    def __init__(self, inner: FakeBackend, burst: set[str]) -> None:
        self.name = inner.name
        self.inner = inner
        self.burst = burst
        self.waiting = 0
        self.all_in_flight = asyncio.Event()

    async def complete(self, request: Request) -> Completion:
        if request.prompt in self.burst:
            self.waiting += 1
            if self.waiting == len(self.burst):
                self.all_in_flight.set()
            await self.all_in_flight.wait()
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def fails_for(prompts: set[str]) -> Callable[[Request, int], Completion | BackendError]:
    """A script: a retryable 503 for each prompt of ``prompts``, an answer for the rest."""

    def script(request: Request, number: int) -> Completion | BackendError:
        if request.prompt in prompts:
            return BackendError("HTTP 503: busy", retryable=True)
        return completion(f"answer to {request.prompt}")

    return script


def jobs_after(first: list[int], then: list[int], handled: list[int]
               ) -> Callable[[], tuple[int, Request] | None]:
    """Jobs ``first``, then, once all of those are handled, jobs ``then``."""
    needed = len(first)

    def source() -> tuple[int, Request] | None:
        if first:
            job = first.pop(0)
        elif then and len(handled) >= needed:
            job = then.pop(0)
        else:
            return None
        return job, Request(str(job))

    return source


def run(runner: Runner[int], source: Callable[[], tuple[int, Request] | None],
        handled: list[int]) -> None:
    def handle(job: int, answer: Completion) -> bool:
        handled.append(job)
        return False

    asyncio.run(runner.run(source, handle, asyncio.Event()))


def test_each_failure_in_a_row_doubles_the_pause_up_to_the_cap_and_an_answer_resets_it():
    fake = FakeBackend()
    busy = BackendError("HTTP 503: busy", retryable=True)
    fake.enqueue(*[busy] * 7, "an answer", busy, "another answer")
    clock = FakeClock()
    jobs = [0, 1]
    runner: Runner[int] = Runner(fake, concurrency=1, max_consecutive_failures=10,
                                 on_failure=lambda job, error: jobs.append(job),
                                 clock=clock, pause=clock.pause)
    handled: list[int] = []
    run(runner, lambda: (jobs[0], Request(str(jobs.pop(0)))) if jobs else None, handled)
    assert sorted(handled) == [0, 1]
    assert clock.pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 0.5]
    assert (runner.stats.sent, runner.stats.failed) == (10, 8)


def test_a_burst_sent_together_after_an_answer_counts_as_one_failure():
    """Four requests in flight fail together (a server went away): once the server has
    answered, that is one failed round, not four failures in a row."""
    handled: list[int] = []
    backend = HeldTogether(FakeBackend(fails_for({"1", "2", "3", "4"})), {"1", "2", "3", "4"})
    clock = FakeClock()
    runner: Runner[int] = Runner(backend, concurrency=4, max_consecutive_failures=2,
                                 on_failure=lambda job, error: None,
                                 clock=clock, pause=clock.pause)
    run(runner, jobs_after([0], [1, 2, 3, 4, 5], handled), handled)
    assert sorted(handled) == [0, 5]
    assert runner.stats.failed == 4
    assert clock.pauses == [0.5]  # one failure counted: one half-second backoff


def test_before_any_answer_every_failure_of_a_burst_counts():
    """A server that never answered (a wrong address): a burst is as many failures in a
    row as it has requests, so the run stops after one round, not after C rounds."""
    handled: list[int] = []
    burst = {"1", "2", "3", "4"}
    fake = FakeBackend(fails_for(burst))
    clock = FakeClock()
    runner: Runner[int] = Runner(HeldTogether(fake, burst), concurrency=4,
                                 max_consecutive_failures=4,
                                 on_failure=lambda job, error: None,
                                 clock=clock, pause=clock.pause)
    with pytest.raises(UserError, match="4 requests in a row failed"):
        run(runner, jobs_after([1, 2, 3, 4], [], handled), handled)
    assert len(fake.requests) == 4 and handled == []


def test_a_rate_limit_the_client_did_not_retry_away_is_recorded_and_tried_again():
    """A 429 is the server asking to slow down, never a reason to stop the run."""
    statuses = [429, 200]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if statuses.pop(0) == 429:
            return httpx2.Response(429, json={"error": {"message": "Rate limit reached"}})
        return httpx2.Response(200, json=chat_body("an answer"))

    backend = OpenAIBackend(
        base_url="http://127.0.0.1:9/v1", model="m", api_key="sk-test", max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    jobs = [0]
    failures: list[BackendError] = []

    def on_failure(job: int, error: BackendError) -> None:
        failures.append(error)
        jobs.append(job)

    clock = FakeClock()
    runner: Runner[int] = Runner(backend, concurrency=1, max_consecutive_failures=3,
                                 on_failure=on_failure, clock=clock, pause=clock.pause)
    handled: list[int] = []
    run(runner, lambda: (jobs[0], Request(str(jobs.pop(0)))) if jobs else None, handled)
    assert handled == [0]
    assert [(f.message, f.retryable) for f in failures] == [("HTTP 429: Rate limit reached",
                                                             True)]
    assert clock.pauses == [0.5]


def test_resumed_instances_count_the_tasks_done_before(tmp_path: Path, seed_file: Path):
    """A session that resumes instances reports the whole stage (3/3 done, 1 now), not
    only what it did itself."""
    out = tmp_path / "run"
    fake = FakeBackend(answer)
    selfinstruct.run(out, num_instructions=3, seeds=seed_file, backend=fake, per_task=2)
    results = out / "instances.jsonl"
    lines = results.read_text(encoding="utf-8").splitlines(keepends=True)
    results.write_text("".join(lines[:2]), encoding="utf-8")  # the third was never written
    stats = selfinstruct.instances(out, backend=fake, per_task=2)
    assert (stats.total, stats.done_before, stats.done) == (3, 2, 3)
    assert stats.to_json()["done_this_session"] == 1
    saved = json.loads((out / "stats.json").read_text(encoding="utf-8"))["instances"]
    assert (saved["done"], saved["done_this_session"]) == (3, 1)
