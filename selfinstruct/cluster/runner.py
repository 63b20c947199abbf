"""The coordinator's side of ``--executor ray``: send the work as Ray Data passes, and
handle every answer here, as the local runner does.

A pass takes everything the stage has to send, makes it a dataset whose ``map_batches``
runs on the actor pool, and reads the outcomes as they come back, batch by batch: each
answer goes to the stage's ``handle`` (parse, filter, write, in this process), each
failure to its ``on_failure``, which queues the record again while it has attempts
left; what was queued again (failures, answers a stage asks once more) is the next
pass. The run stops as the local one does: at once on an error that can never succeed,
after too many failures in a row (once the server has answered, the failures of one
batch count once, like a burst in the local runner), and on ``stop``, after handling
the answers that have arrived.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from selfinstruct.cluster.plan import ActorPlan
from selfinstruct.cluster.session import ray_session
from selfinstruct.cluster.stream import BlockStream
from selfinstruct.cluster.wire import Outcome, decode_outcome
from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.stages.runner import RequestStats

if TYPE_CHECKING:
    from selfinstruct.cluster.executor import RayExecutor

J = TypeVar("J")

log = logging.getLogger(__name__)

#: Seconds a stopped pass waits for its dataset's execution to shut down.
CLOSE_WAIT = 2.0


class RayRunner(Generic[J]):
    """Drives one stage over Ray Data; the same contract as the local runner."""

    def __init__(
        self,
        executor: RayExecutor,
        name: str,
        *,
        concurrency: int,
        max_consecutive_failures: int,
        on_failure: Callable[[J, BackendError], None],
    ) -> None:
        self.executor = executor
        self.name = name
        self.concurrency = concurrency
        self.max_consecutive_failures = max_consecutive_failures
        self.on_failure = on_failure
        self.stats = RequestStats()
        self.plan: ActorPlan | None = None
        self._failures_in_a_row = 0

    async def run(
        self,
        source: Callable[[], tuple[J, Request] | None],
        handle: Callable[[J, Completion], bool],
        stop: asyncio.Event,
    ) -> None:
        """Pass after pass until nothing is left to send, ``handle`` says done, or
        ``stop`` is set."""
        work = take_all(source)
        if not work or stop.is_set():
            return
        with ray_session(self.executor.options.address) as ray:
            self.plan = self.executor.plan(ray, self.concurrency)
            log.info("sending from %s", self.plan.describe())
            while work and not stop.is_set():
                if await self._pass(ray, self.plan, work, handle, stop):
                    return
                work = take_all(source)

    async def _pass(self, ray: Any, plan: ActorPlan, work: Sequence[tuple[J, Request]],
                    handle: Callable[[J, Completion], bool], stop: asyncio.Event) -> bool:
        """One dataset of ``work``; True when ``handle`` said the stage is done."""
        jobs = [job for job, _ in work]
        requests = [request for _, request in work]
        stream = BlockStream(lambda: self.executor.blocks(ray, plan, requests))
        try:
            while (block := await stream.next(stop)) is not None:
                if self._settle(block, jobs, handle):
                    return True
                await asyncio.sleep(0)
            return False
        except ray.exceptions.RayError as err:
            raise user_error(err) from None
        finally:
            stream.close()
            # A stop or an error leaves the execution running until its next block; give
            # it a moment to end before Ray is shut down (or left to the caller).
            await asyncio.to_thread(stream.join, CLOSE_WAIT)

    def _settle(self, block: Mapping[str, Any], jobs: Sequence[J],
                handle: Callable[[J, Completion], bool]) -> bool:
        """Handle one batch's outcomes, answers first (an answer that comes with the
        failure that stops the run has been paid for); True when ``handle`` says done.
        Failures after that point are dropped: the stage is complete."""
        outcomes: list[tuple[J, Outcome]] = [
            (jobs[int(key)], decode_outcome(bytes(data)))
            for key, data in zip(block["key"], block["outcome"], strict=True)
        ]
        outcomes.sort(key=lambda pair: isinstance(pair[1], BackendError))
        done = counted = False
        for job, outcome in outcomes:
            self.stats.sent += 1
            if isinstance(outcome, BackendError):
                if not done:
                    self._fail(job, outcome, counted)
                    counted = True
                continue
            self.stats.succeeded += 1
            self.stats.prompt_tokens += outcome.usage.prompt_tokens
            self.stats.completion_tokens += outcome.usage.completion_tokens
            self._failures_in_a_row = 0
            done = handle(job, outcome) or done
        return done

    def _fail(self, job: J, error: BackendError, same_batch: bool) -> None:
        self.stats.failed += 1
        self.on_failure(job, error)
        if not error.retryable:
            raise UserError(f"{self.name}: {error.message}")
        if self.stats.succeeded and same_batch:
            return
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self.max_consecutive_failures:
            raise UserError(
                f"{self.name}: {self._failures_in_a_row} requests in a row failed; the last "
                f"error: {error.message}. Check that the server is up and answering, then "
                "run the same command again to resume"
            )


def take_all(source: Callable[[], tuple[J, Request] | None]) -> list[tuple[J, Request]]:
    """Everything ``source`` has to send right now."""
    work: list[tuple[J, Request]] = []
    while (item := source()) is not None:
        work.append(item)
    return work


#: The last line of an actor's traceback when it raised one of our errors.
_OUR_ERROR = re.compile(r"^selfinstruct\.errors\.\w+: (.+)$", re.MULTILINE)
#: Terminal colours in Ray's messages.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def user_error(err: BaseException) -> UserError:
    """A failure of the Ray job as one line: the :class:`UserError` an actor raised
    (vLLM missing on a node, a bad model name), else what Ray says went wrong. What was
    handled before it is in the run directory, so the same command resumes.

    An actor that fails while it starts comes back as an ``ActorDiedError`` that keeps
    only the text of its traceback, so our error is read from that text.
    """
    cause: BaseException | None = err
    while cause is not None:
        found = _OUR_ERROR.findall(str(cause))
        if found:
            return UserError(found[-1].strip())
        if isinstance(cause, UserError):
            return UserError(str(cause), cause.exit_code)
        cause = cause.__cause__ or getattr(cause, "cause", None)
    text = _ANSI.sub("", str(err)).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return UserError(f"Ray: {first}; run the same command again to resume")
