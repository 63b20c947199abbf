"""The runner never drops an answer that has arrived, even when a failure that arrives
with it stops the run."""

from __future__ import annotations

import asyncio

import pytest

from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.runner import Runner


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
    prompts = ["1", "2"] if order == "failure first" else ["2", "1"]
    handled: list[int] = []
    failed: list[int] = []
    runner: Runner[int] = Runner(SameMomentBackend(), concurrency=2, max_consecutive_failures=5,
                                 on_failure=lambda job, error: failed.append(job))

    def source() -> tuple[int, Request] | None:
        return (int(prompts[0]), Request(prompts.pop(0))) if prompts else None

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
    runner: Runner[int] = Runner(backend, concurrency=4, max_consecutive_failures=5,
                                 on_failure=lambda job, error: None)
    counter = iter(range(1000))
    seen_at_handle: list[tuple[int, int]] = []
    stop = asyncio.Event()

    def source() -> tuple[int, Request]:
        number = next(counter)
        return number, Request(str(number))

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
    # Answers 0 and 4 came together: both replacements were on the wire before the second
    # of them was handled (the first never waits for a request that might be cancelled).
    assert seen_at_handle[0] == (2, 4)
    assert [job for job, _ in seen_at_handle[1:]] in ([0, 4], [4, 0])
    assert seen_at_handle[2][1] == 7
    assert backend.cancelled == 4 and backend.in_flight == 0
    assert runner.stats.succeeded == 3 and runner.stats.sent == 7
