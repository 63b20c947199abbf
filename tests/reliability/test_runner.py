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
