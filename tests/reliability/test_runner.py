"""The runner keeps every slot busy, never drops an answer that has arrived (even when a
failure that arrives with it stops the run) and never hangs on a bug."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from selfinstruct.errors import UserError
from selfinstruct.llm.base import Backend, BackendError, Completion, Request
from selfinstruct.stages.runner import Runner


def runner_for(backend: Backend, concurrency: int) -> Runner[int]:
    """A runner over ``backend`` that ignores failures."""
    return Runner(backend, concurrency=concurrency, max_consecutive_failures=5,
                  on_failure=lambda job, error: None)


def endless_source() -> Callable[[], tuple[int, Request]]:
    """Jobs 0, 1, 2, ... whose prompt is their number."""
    counter = itertools.count()

    def source() -> tuple[int, Request]:
        number = next(counter)
        return number, Request(str(number))

    return source


def list_source(jobs: list[int]) -> Callable[[], tuple[int, Request] | None]:
    """The jobs of ``jobs`` in order (more may be appended while it runs), then None."""

    def source() -> tuple[int, Request] | None:
        return (jobs[0], Request(str(jobs.pop(0)))) if jobs else None

    return source


class SameMomentBackend:
    """Answers request 1 with a fatal error and request 2 normally, both at once."""

    name = "fake"

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(0.01)
        if request.prompt == "1":
            raise BackendError("HTTP 401: the API key was refused", retryable=False)
        return Completion(text="an answer")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("order", ["failure first", "answer first"])
def test_an_answer_arriving_with_a_fatal_failure_is_handled(order):
    source = list_source([1, 2] if order == "failure first" else [2, 1])
    handled: list[int] = []
    failed: list[int] = []
    runner: Runner[int] = Runner(SameMomentBackend(), concurrency=2, max_consecutive_failures=5,
                                 on_failure=lambda job, error: failed.append(job))

    def handle(job: int, completion: Completion) -> bool:
        handled.append(job)
        return False

    with pytest.raises(UserError, match="HTTP 401"):
        asyncio.run(runner.run(source, handle, asyncio.Event()))
    assert handled == [2] and failed == [1]
    assert runner.stats.succeeded == 1 and runner.stats.failed == 1


class GatedBackend:
    """Each request waits until the test opens its gate; counts what is in flight."""

    name = "gated"

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.in_flight = 0
        self.cancelled = 0

    async def complete(self, request: Request) -> Completion:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.in_flight += 1
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        return Completion(text=request.prompt)

    async def aclose(self) -> None:
        return None


def test_finished_slots_are_refilled_during_a_burst_and_stop_cancels_the_rest():
    backend = GatedBackend()
    runner = runner_for(backend, 4)
    source = endless_source()
    seen_at_handle: list[tuple[int, int]] = []
    stop = asyncio.Event()

    def handle(job: int, completion: Completion) -> bool:
        assert completion.text == str(job)
        seen_at_handle.append((job, len(backend.gates)))
        return False

    async def scenario() -> None:
        run = asyncio.create_task(runner.run(source, handle, stop))
        for _ in range(3):
            await asyncio.sleep(0.01)
        assert len(backend.gates) == 4 and backend.in_flight == 4
        backend.gates[2].set()  # answers out of order, one, then two at once
        await asyncio.sleep(0.01)
        backend.gates[0].set()
        backend.gates[4].set()
        await asyncio.sleep(0.01)
        assert backend.in_flight == 4  # every finished slot has a new request
        stop.set()
        await asyncio.wait_for(run, 1)

    asyncio.run(scenario())
    # A lone answer is handled before its slot sends again (it might have ended the run).
    # When answers come back together (0 and 4), both slots send again before the last of
    # them is handled: no slot waits for the rest of a burst to be handled. (How far the
    # slots get before the first of them is handled is up to the event loop.)
    assert seen_at_handle[0] == (2, 4)
    assert sorted(job for job, _ in seen_at_handle[1:]) == [0, 4]
    assert seen_at_handle[-1][1] == 7
    assert backend.cancelled == 4 and backend.in_flight == 0
    assert runner.stats.succeeded == 3 and runner.stats.sent == 7


class BrokenBackend:
    """Fails with an error that is not a BackendError: a bug, not a server problem."""

    name = "broken"

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(0)
        raise RuntimeError(f"bug on {request.prompt}")

    async def aclose(self) -> None:
        return None


def test_a_bug_in_a_backend_is_raised_not_hung_on():
    runner = runner_for(BrokenBackend(), 3)
    source = endless_source()

    async def scenario() -> None:
        await asyncio.wait_for(runner.run(source, lambda job, c: False, asyncio.Event()), 5)

    with pytest.raises(RuntimeError, match="bug on"):
        asyncio.run(scenario())


def test_slots_start_again_when_work_comes_back():
    # A source that runs dry while requests are in flight, then has work again (a retry):
    # the slots that ended start again, and every job is sent.
    backend = GatedBackend()
    runner = runner_for(backend, 2)
    waiting = [0, 1, 2]
    source = list_source(waiting)
    handled: list[int] = []

    def handle(job: int, completion: Completion) -> bool:
        handled.append(job)
        if job == 0:
            waiting.extend([10, 11])  # work that appears only once an answer is handled
        return False

    async def scenario() -> None:
        run = asyncio.create_task(runner.run(source, handle, asyncio.Event()))
        for _ in range(50):
            await asyncio.sleep(0.005)
            for gate in backend.gates:
                gate.set()
        await asyncio.wait_for(run, 1)

    asyncio.run(scenario())
    assert sorted(handled) == [0, 1, 2, 10, 11]
    assert runner.stats.sent == 5 and backend.in_flight == 0


def test_answers_that_arrive_while_stopping_are_handled():
    backend = GatedBackend()
    runner = runner_for(backend, 4)
    source = endless_source()
    stop = asyncio.Event()
    handled: list[int] = []

    def handle(job: int, completion: Completion) -> bool:
        handled.append(job)
        if job == 0:
            stop.set()  # Ctrl-C while the other three answers come in
            for gate in backend.gates[1:4]:
                gate.set()
        return False

    async def scenario() -> None:
        run = asyncio.create_task(runner.run(source, handle, stop))
        await asyncio.sleep(0.01)
        backend.gates[0].set()
        await asyncio.wait_for(run, 1)

    asyncio.run(scenario())
    assert sorted(handled) == [0, 1, 2, 3]
    assert backend.in_flight == 0 and runner.stats.succeeded == 4


class InstantBackend:
    """Answers at once; counts the requests it was sent."""

    name = "instant"

    def __init__(self) -> None:
        self.sent = 0

    async def complete(self, request: Request) -> Completion:
        self.sent += 1
        await asyncio.sleep(0)
        return Completion(text=request.prompt)

    async def aclose(self) -> None:
        return None


def test_slots_wait_when_handling_falls_behind():
    backend = InstantBackend()
    runner = runner_for(backend, 3)
    source = list_source(list(range(60)))
    backlog: list[int] = []

    def handle(job: int, completion: Completion) -> bool:
        time.sleep(0.002)  # handling is slower than the server
        backlog.append(backend.sent - len(backlog))
        return False

    asyncio.run(asyncio.wait_for(runner.run(source, handle, asyncio.Event()), 10))
    assert len(backlog) == 60
    assert max(backlog) <= 2 * 3  # taken and not yet handled: never more than 2C


class LostCancelBackend:
    """Answers instead of being cancelled, as asyncio.wait_for before Python 3.12 does
    when the answer and the cancel arrive together."""

    name = "lost-cancel"

    async def complete(self, request: Request) -> Completion:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return Completion(text=request.prompt)
        return Completion(text=request.prompt)

    async def aclose(self) -> None:
        return None


@pytest.mark.timeout(20)  # a slot that keeps running hangs the run's clean-up
def test_a_lost_cancel_does_not_keep_a_slot_running():
    runner = runner_for(LostCancelBackend(), 3)
    source = endless_source()
    stop = asyncio.Event()
    handled: list[int] = []

    def handle(job: int, completion: Completion) -> bool:
        handled.append(job)
        return False

    async def scenario() -> None:
        run = asyncio.create_task(runner.run(source, handle, stop))
        await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(run, 2)

    asyncio.run(scenario())
    # The three answers that came back instead of the cancel are kept; nothing more is sent.
    assert sorted(handled) == [0, 1, 2] and runner.stats.sent == 3


class TogetherBackend:
    """Answers every request after the same short delay, so requests sent together come
    back together; request "fail" fails for good."""

    name = "together"

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(0.01)
        if request.prompt == "fail":
            raise BackendError("HTTP 401: the API key was refused", retryable=False)
        return Completion(text=request.prompt)

    async def aclose(self) -> None:
        return None


def test_answers_after_the_one_that_completes_the_stage_are_still_handled():
    # Four answers and a fatal failure arrive together; the first answer completes the
    # stage. The other answers were paid for: they reach handle. The failure comes after
    # the end and changes nothing.
    runner = runner_for(TogetherBackend(), 5)
    jobs = ["0", "1", "fail", "2", "3"]

    def source() -> tuple[int, Request] | None:
        if not jobs:
            return None
        prompt = jobs.pop(0)
        return len(jobs), Request(prompt)

    handled: list[str] = []

    def handle(job: int, completion: Completion) -> bool:
        handled.append(completion.text)
        return True

    asyncio.run(asyncio.wait_for(runner.run(source, handle, asyncio.Event()), 5))
    assert sorted(handled) == ["0", "1", "2", "3"]
    assert runner.stats.sent == 5 and runner.stats.failed == 0


def test_a_source_that_waits_for_answers_is_asked_again_and_the_run_goes_on():
    # A pacing source: at most ``allowed`` jobs out at once, one until the first answer,
    # then three; None in between means "not now". The run must not end while it waits,
    # must ask again when answers are handled (refilling the free slots), and must not
    # spin asking it while nothing has changed.
    backend = TogetherBackend()
    runner = runner_for(backend, 8)
    remaining = list(range(12))
    out = [0]
    allowed = [1]
    calls = [0]
    most_out = [0]

    def source() -> tuple[int, Request] | None:
        calls[0] += 1
        if not remaining or out[0] >= allowed[0]:
            return None
        out[0] += 1
        most_out[0] = max(most_out[0], out[0])
        job = remaining.pop(0)
        return job, Request(str(job))

    handled: list[int] = []

    def handle(job: int, completion: Completion) -> bool:
        handled.append(job)
        out[0] -= 1
        allowed[0] = 3
        return False

    asyncio.run(asyncio.wait_for(runner.run(source, handle, asyncio.Event()), 5))
    assert sorted(handled) == list(range(12))
    assert most_out[0] == 3
    assert calls[0] <= 4 * len(handled) + 8  # a few asks per answer, never a busy loop
