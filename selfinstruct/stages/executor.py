"""Who sends a row stage's requests: this process, or actors somewhere else.

``run_stage`` decides what to ask (a request per record) and what an answer means (its
``handle``, which parses, filters and writes in this process). Between the two sits a
*sender* that only moves requests to a model and answers back: the local one is the
:class:`~selfinstruct.stages.runner.Runner` (C requests in flight from this event loop);
``--executor ray`` (:mod:`selfinstruct.cluster`) sends them from Ray Data actors that
each hold a backend. Both count what comes back in the same
:class:`~selfinstruct.stages.ledger.Ledger` and call the same ``handle`` and
``on_failure``, so the run directory's files, ids and stats, and the failures that stop
a run, do not depend on where the requests went.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol, TypeVar

from selfinstruct.llm.base import Backend, BackendError, Completion, Request
from selfinstruct.stages.ledger import RequestStats
from selfinstruct.stages.runner import Runner

J = TypeVar("J")


class Sender(Protocol[J]):
    """Sends the work ``source`` gives and hands every outcome back (the Runner's shape).

    ``source()`` returns the next ``(job, request)`` or None when there is nothing to
    send right now; ``handle(job, completion)`` returns True when the stage is complete;
    the ``on_failure`` given at construction records a failed request. ``run`` returns
    when the source has run dry and nothing is in flight, when ``handle`` says done, or
    soon after ``stop`` is set (the answers that have arrived are still handled).
    """

    stats: RequestStats

    async def run(
        self,
        source: Callable[[], tuple[J, Request] | None],
        handle: Callable[[J, Completion], bool],
        stop: asyncio.Event,
    ) -> None:
        """Send until done; see the class."""
        ...


class Executor(Protocol):
    """Makes the sender of one stage."""

    def sender(
        self,
        backend: Backend,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
    ) -> Sender[J]:
        """A sender for ``concurrency`` requests in flight that stops the run after
        ``max_consecutive_failures`` failures in a row."""
        ...


class LocalExecutor:
    """The default: this process sends every request through ``backend``.

    ``clock`` and ``pause`` are where the backoff after failures reads the time and waits
    it out (the monotonic clock and ``asyncio.sleep``); a test gives a pause that returns
    at once, through :func:`use_executor`, instead of patching the backoff's limit.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clock = clock
        self.pause = pause

    def sender(
        self,
        backend: Backend,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
    ) -> Sender[J]:
        """The :class:`Runner`."""
        return Runner(backend, concurrency=concurrency,
                      max_consecutive_failures=max_consecutive_failures, on_failure=on_failure,
                      clock=self.clock, pause=self.pause)


#: What :func:`use_executor` was given, innermost last.
_GIVEN: list[Executor] = []


@contextlib.contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Every stage that sends from this process inside the block sends through
    ``executor`` (``--executor ray`` still names its own): the seam through which tests run
    the CLI and the library with a backoff that does not wait, as :func:`use_backend` is
    for the model."""
    _GIVEN.append(executor)
    try:
        yield executor
    finally:
        _GIVEN.pop()


def local_executor() -> Executor:
    """The executor of a stage whose settings name none: :func:`use_executor`'s, else a
    plain :class:`LocalExecutor`."""
    return _GIVEN[-1] if _GIVEN else LocalExecutor()
