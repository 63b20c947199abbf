"""The coordinator's side of ``--executor ray``: send the work as Ray Data passes, and
handle every answer here, as the local runner does.

A pass takes everything the stage has to send, makes it a dataset whose ``map_batches``
runs on the actor pool, and reads the outcomes as they come back, batch by batch: each
answer goes to the stage's ``handle`` (parse, filter, write, in this process), each
failure to its ``on_failure``, which queues the record again while it has attempts
left; what was queued again (failures, answers a stage asks once more) is the next
pass. What comes back is counted by the :class:`~selfinstruct.stages.ledger.Ledger`
the local runner uses, so the run stops as the local one does: at once on an error that
can never succeed, after too many failures in a row (once the server has answered, the
failures of one batch count once, like a burst in the local runner), and on ``stop``,
after handling the answers that have arrived.
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
from selfinstruct.cluster.wire import decode_outcome
from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.stages.ledger import Ledger, Outcome, RequestStats, is_failure

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
        self.concurrency = concurrency
        self.ledger: Ledger[J] = Ledger(name, max_in_a_row=max_consecutive_failures,
                                        on_failure=on_failure)
        self.stats: RequestStats = self.ledger.stats
        self.plan: ActorPlan | None = None

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
        Failures after that point are dropped: the stage is complete.

        The batch was sent together, so all of it is in the epoch the ledger is in when
        the batch arrives: its failures count once after the server has answered.
        """
        epoch = self.ledger.epoch
        outcomes: list[Outcome[J]] = [
            (jobs[int(key)], decode_outcome(bytes(data)), epoch)
            for key, data in zip(block["key"], block["outcome"], strict=True)
        ]
        outcomes.sort(key=is_failure)
        done = False
        for outcome in outcomes:
            self.ledger.sent()
            if not (done and is_failure(outcome)):
                done = self.ledger.settle(outcome, handle) or done
        return done


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
