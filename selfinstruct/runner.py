"""Keep C requests in flight and hand each answer to the stage as soon as it arrives.

There is no batch barrier: the moment one request returns, its answer is processed (on
the event loop, so processing never interleaves) and the next request goes out. HTTP
retries with backoff belong to the backend; what the runner adds is the run-level view:
a failed request is recorded and replaced, a burst of failures slows the sending down,
too many failures in a row or an error that can never succeed stops the run with one
clear message, and a stop request (Ctrl-C, enough results) cancels what is in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from selfinstruct.errors import UserError
from selfinstruct.llm.base import Backend, BackendError, Completion, Request

J = TypeVar("J")

#: What a request task returns: its job, the answer or failure, and the failure epoch
#: (how many failures had been counted) when it was sent.
Outcome = tuple[J, Completion | BackendError, int]

#: Longest pause before sending again after consecutive failures, in seconds.
MAX_BACKOFF = 30.0


@dataclass
class RequestStats:
    """What the runner sent and got back, for the progress bar and ``stats.json``."""

    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Runner(Generic[J]):
    """Drives one stage: ``source`` makes work, ``handle`` consumes answers.

    ``source()`` returns the next ``(job, request)`` or None when no more work is wanted
    right now; ``handle(job, completion)`` returns True when the stage is complete;
    ``on_failure(job, error)`` records a request that failed for good.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
    ) -> None:
        self.backend = backend
        self.concurrency = concurrency
        self.max_consecutive_failures = max_consecutive_failures
        self.on_failure = on_failure
        self.stats = RequestStats()
        self._consecutive_failures = 0
        self._epoch = 0
        self._resume_at = 0.0

    async def run(
        self,
        source: Callable[[], tuple[J, Request] | None],
        handle: Callable[[J, Completion], bool],
        stop: asyncio.Event,
    ) -> None:
        """Run until ``handle`` says done, ``source`` runs dry, or ``stop`` is set.

        Finished requests announce themselves on a queue (a done-callback set once per
        request), so each answer costs O(1) however many requests are in flight;
        ``asyncio.wait`` over the in-flight set would cost O(C) per wake-up.
        """
        in_flight: set[asyncio.Task[Outcome[J]]] = set()
        finished: asyncio.Queue[asyncio.Task[Outcome[J]] | None] = asyncio.Queue()
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: finished.put_nowait(None))
        try:
            while not stop.is_set():
                self._fill(in_flight, source, finished)
                if not in_flight:
                    return
                batch = [await finished.get()]
                while not finished.empty():
                    batch.append(finished.get_nowait())
                done = [task for task in batch if task is not None]  # None: stop was set
                # Answers before failures: an answer that arrives together with the failure
                # that stops the run has been paid for, so it is handled first.
                done.sort(key=_is_failure)
                in_flight.difference_update(done)
                # Refill first, and yield after each answer, so new requests reach the wire
                # while a burst of CPU-heavy answers is processed (measured in BENCHMARKS.md).
                # (Not before the first: the answer that completes the run would start one
                # more request, only to cancel it.)
                self._fill(in_flight, source, finished)
                for task in done:
                    job, outcome, epoch = task.result()
                    if self._settle(job, outcome, epoch, handle):
                        return
                    await asyncio.sleep(0)
        finally:
            stopper.cancel()
            for task in in_flight:
                task.cancel()
            await asyncio.gather(stopper, *in_flight, return_exceptions=True)

    def _fill(
        self,
        in_flight: set[asyncio.Task[Outcome[J]]],
        source: Callable[[], tuple[J, Request] | None],
        finished: asyncio.Queue[asyncio.Task[Outcome[J]] | None],
    ) -> None:
        while len(in_flight) < self.concurrency:
            work = source()
            if work is None:
                return
            task = asyncio.create_task(self._send(*work))
            task.add_done_callback(finished.put_nowait)
            in_flight.add(task)

    async def _send(self, job: J, request: Request) -> Outcome[J]:
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.stats.sent += 1
        epoch = self._epoch
        try:
            return job, await self.backend.complete(request), epoch
        except BackendError as err:
            return job, err, epoch

    def _settle(
        self,
        job: J,
        outcome: Completion | BackendError,
        epoch: int,
        handle: Callable[[J, Completion], bool],
    ) -> bool:
        if isinstance(outcome, BackendError):
            self._fail(job, outcome, epoch)
            return False
        self.stats.succeeded += 1
        self.stats.prompt_tokens += outcome.usage.prompt_tokens
        self.stats.completion_tokens += outcome.usage.completion_tokens
        self._consecutive_failures = 0
        return handle(job, outcome)

    def _fail(self, job: J, error: BackendError, epoch: int) -> None:
        self.stats.failed += 1
        self.on_failure(job, error)
        if not error.retryable:
            raise UserError(f"{self.backend.name}: {error.message}")
        # When a server goes away, every request in flight fails with it. Once the server
        # has answered, such a burst (sent before the last counted failure) counts once,
        # so an outage is waited out at any concurrency; until it has, every failure
        # counts, so a wrong address stops the run quickly.
        if self.stats.succeeded and epoch < self._epoch:
            return
        self._epoch += 1
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.max_consecutive_failures:
            raise UserError(
                f"{self.backend.name}: {self._consecutive_failures} requests in a row failed; "
                f"the last error: {error.message}. Check that the server is up and answering, "
                "then run the same command again to resume"
            )
        backoff = min(MAX_BACKOFF, 0.5 * 2 ** (self._consecutive_failures - 1))
        self._resume_at = max(self._resume_at, time.monotonic() + backoff)


def _is_failure(task: asyncio.Future[Any]) -> bool:
    """Whether a finished request failed (the sort key that puts answers first)."""
    return isinstance(task.result()[1], BackendError)
