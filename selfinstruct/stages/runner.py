"""Keep C requests in flight and hand each answer to the stage as soon as it arrives.

There is no batch barrier: the moment one request returns, the next one goes out and
its answer is queued to be processed (on the event loop, so processing never
interleaves). HTTP retries with backoff belong to the backend; what the runner adds is
the run-level view: a failed request is recorded and replaced, a burst of failures slows
the sending down, too many failures in a row or an error that can never succeed stops
the run with one clear message, and a stop request (Ctrl-C, enough results) cancels
what is in flight, after handling the answers that have already arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, Union

from selfinstruct.llm.base import Backend, BackendError, Completion, Request
from selfinstruct.stages.ledger import (
    MAX_BACKOFF,
    Ledger,
    Outcome,
    RequestStats,
    backoff,
    is_failure,
)

__all__ = ["Runner"]

J = TypeVar("J")

#: What a slot tells the loop: an outcome, a worker that ended (it found no more work, or
#: failed), or None (the stop event was set).
_Report = Union[Outcome[J], "asyncio.Task[None]", None]


class Runner(Generic[J]):
    """Drives one stage: ``source`` makes work, ``handle`` consumes answers.

    ``source()`` returns the next ``(job, request)`` or None when no more work is wanted
    right now; ``handle(job, completion)`` returns True when the stage is complete;
    ``on_failure(job, error)`` records a request that failed for good. What came back is
    counted, and the run stopped on failures, by the :class:`Ledger` the Ray runner
    shares; this class only sends, and pauses its sending after failures.

    None from the source means "nothing right now", not "never again": a source that
    paces itself (``generate`` holds requests back while those in flight are expected to
    reach its target) says None while answers are on their way, and is asked again each
    time answers have been handled, which refills the free slots. The run ends only when
    the source has nothing while no job is in flight or waiting to be handled: then no
    answer can arrive that would change its mind.

    ``clock`` and ``pause`` are where the backoff reads the time and waits it out: the
    monotonic clock and ``asyncio.sleep`` unless a test gives a fake clock, so that the
    backoff after failures is checked in microseconds, not in seconds of real waiting.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.backend = backend
        self.concurrency = concurrency
        self._clock = clock
        self._pause = pause
        self.ledger: Ledger[J] = Ledger(backend.name, max_in_a_row=max_consecutive_failures,
                                        on_failure=on_failure, counted=self._back_off)
        self.stats: RequestStats = self.ledger.stats
        self._resume_at = 0.0
        # The state of one run(): the slots, what they report, and the work taken but
        # not handled yet (in flight, or answered and waiting in the queue).
        self._source: Callable[[], tuple[J, Request] | None] = lambda: None
        self._workers: set[asyncio.Task[None]] = set()
        self._finished: asyncio.Queue[_Report[J]] = asyncio.Queue()
        self._unsettled = 0
        self._stopping = False
        self._most_unsettled = 2 * concurrency
        self._room = asyncio.Event()

    async def run(
        self,
        source: Callable[[], tuple[J, Request] | None],
        handle: Callable[[J, Completion], bool],
        stop: asyncio.Event,
    ) -> None:
        """Run until ``handle`` says done, ``source`` runs dry, or ``stop`` is set.

        Each of the C slots is a worker task that sends a request, queues the outcome and
        takes its next job from ``source`` itself, without waiting for its answer to be
        handled. So when a burst of answers arrives together, every slot's next request
        is on the wire while the burst is still being handled, and bursts spread out
        instead of coming back together every round (BENCHMARKS.md, C=256). The answers
        are handled here, one at a time, from the queue: O(1) per answer whatever C is.

        A slot takes new work only while fewer than 2C jobs are taken and not yet
        handled: when handling falls behind (a CPU-bound client), the slots wait rather
        than pile up answers. When ``stop`` is set or ``handle`` says done, the answers
        that have arrived are still handled, since they have been paid for (``handle``
        decides what an answer after the end is worth); only what is in flight is
        cancelled.
        """
        self._source = source
        self._workers, self._finished, self._unsettled = set(), asyncio.Queue(), 0
        self._stopping = False
        self._room.set()
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: self._finished.put_nowait(None))
        try:
            while not stop.is_set():
                self._spawn()
                if not self._workers and self._finished.empty():
                    return
                batch = [await self._finished.get()]
                if await self._settle_all(batch, handle):
                    break
            await self._cancel_workers()
            await self._settle_all([], handle)
        finally:
            stopper.cancel()
            await self._cancel_workers()
            await asyncio.gather(stopper, return_exceptions=True)

    async def _settle_all(
        self, batch: list[_Report[J]], handle: Callable[[J, Completion], bool]
    ) -> bool:
        """Settle ``batch`` and whatever else is queued; True when ``handle`` says done.

        Every answer of the batch goes to ``handle``, also those after the one that
        completed the stage: they arrived, so they were paid for. Failures after that
        point are dropped: the stage is complete, and a late failure must not stop it
        with an error.
        """
        while not self._finished.empty():
            batch.append(self._finished.get_nowait())
        outcomes = _outcomes(batch, self._workers)
        outcomes.sort(key=is_failure)  # answers first: they have been paid for
        done = False
        for outcome in outcomes:
            self._unsettled -= 1
            if self._unsettled < self._most_unsettled:
                self._room.set()
            if done and is_failure(outcome):
                continue
            if self.ledger.settle(outcome, handle):
                done = self._stopping = True  # no slot takes new work from here on
            await asyncio.sleep(0)
        return done

    async def _cancel_workers(self) -> None:
        """Cancel every slot and its request in flight; wait until they have ended."""
        self._stopping = True
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    def _spawn(self) -> None:
        """Start a worker for each free slot that has work (a retry may have brought some)."""
        while len(self._workers) < self.concurrency and self._unsettled < self._most_unsettled:
            work = self._take()
            if work is None:
                return
            worker = asyncio.create_task(self._work(work))
            worker.add_done_callback(self._finished.put_nowait)
            self._workers.add(worker)

    def _take(self) -> tuple[J, Request] | None:
        """The next job from the source, counted as taken and not yet handled; none once
        the run is ending."""
        if self._stopping:
            return None
        work = self._source()
        if work is not None:
            self._unsettled += 1
        return work

    async def _work(self, work: tuple[J, Request] | None) -> None:
        """One slot: send, queue the outcome, take the next job, until there is none.

        Before taking the next job the slot yields once, so that a lone answer is handled
        first (it may complete the run, and then no request goes out only to be
        cancelled), while in a burst the slot sends again after the first answer of the
        burst is handled, not the last. After a failure the slot ends instead: the loop
        starts it again once the failure is counted, so the next request waits out the
        backoff it sets.
        """
        while work is not None:
            outcome = await self._send(*work)
            self._finished.put_nowait(outcome)
            # A cancel can be lost: before Python 3.12, asyncio.wait_for (the deadline on
            # each attempt) returns an answer that arrives together with the cancel.
            if is_failure(outcome) or self._stopping:
                return
            await asyncio.sleep(0)
            while self._unsettled >= self._most_unsettled:
                self._room.clear()
                await self._room.wait()
            work = self._take()

    async def _send(self, job: J, request: Request) -> Outcome[J]:
        delay = self._resume_at - self._clock()
        if delay > 0:
            await self._pause(delay)
        self.ledger.sent()
        epoch = self.ledger.epoch
        try:
            return job, await self.backend.complete(request), epoch
        except BackendError as err:
            return job, err, epoch

    def _back_off(self, failures_in_a_row: int) -> None:
        """Send nothing more until the backoff of a failure that counted has passed."""
        pause = backoff(failures_in_a_row, MAX_BACKOFF)
        self._resume_at = max(self._resume_at, self._clock() + pause)


def _outcomes(batch: list[_Report[J]], workers: set[asyncio.Task[None]]) -> list[Outcome[J]]:
    """The answers and failures of ``batch``; forget the workers that have ended.

    A worker that ended with an error (a bug in a backend or a source) raises it here;
    one cancelled when the run stopped is just forgotten.
    """
    outcomes: list[Outcome[J]] = []
    for event in batch:
        if isinstance(event, asyncio.Task):
            workers.discard(event)
            if not event.cancelled():
                event.result()
        elif event is not None:
            outcomes.append(event)
    return outcomes

