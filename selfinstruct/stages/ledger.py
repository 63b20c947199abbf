"""What every sender counts, and when failures stop the run, whoever sends the requests.

The local runner (C requests in flight from this event loop) and ``--executor ray``
(batches sent from Ray actors) only move requests and answers; the run-level view of
what came back is this one :class:`Ledger`, so both count the same, stop on the same
failures and say the same thing when they do:

* an answer is counted (with its tokens), ends a run of failures and goes to the stage;
* a failure is counted and recorded; one that can never succeed (a refused key) stops
  the run at once;
* failures that were sent together, as when a server goes away under every request in
  flight, count once after the server has answered; until it has, every one counts, so
  a wrong address stops the run quickly rather than after C rounds;
* N failures in a row stop the run with one line that says how to resume.

"Sent together" is an *epoch*: how many failures had been counted when a request went
out. A request whose epoch is behind the ledger's failed in a burst already counted.
The local runner reads the epoch as each request goes out; the Ray runner reads it once
per batch, so a batch's failures count once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion

J = TypeVar("J")

#: A request's outcome as a sender hands it to the ledger: its job, the answer or
#: failure, and the epoch it was sent in.
Outcome = tuple[J, Completion | BackendError, int]

#: Longest pause before sending again after failures in a row, in seconds.
MAX_BACKOFF = 30.0


@dataclass
class RequestStats:
    """What a sender sent and got back, for the progress bar and ``stats.json``."""

    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def backoff(failures_in_a_row: int, longest: float) -> float:
    """The pause before sending again: half a second after one failure, doubling with
    each one more in a row, never longer than ``longest``."""
    return min(longest, 0.5 * 2.0 ** (failures_in_a_row - 1))


def is_failure(outcome: tuple[object, Completion | BackendError, int]) -> bool:
    """Whether an outcome is a failure: the sort key that puts a batch's answers first,
    since an answer that arrives with the failure that stops the run was paid for."""
    return isinstance(outcome[1], BackendError)


class Ledger(Generic[J]):
    """The counts and the stop rules of one stage's requests (see the module).

    ``name`` is the backend's, the first word of every message; ``on_failure`` records a
    failed request (the stage may queue it again); ``counted(n)`` is told each failure
    that counts and does not stop the run, with the failures now in a row: the local
    runner pauses its sending for :func:`backoff` of it.
    """

    def __init__(
        self,
        name: str,
        *,
        max_in_a_row: int,
        on_failure: Callable[[J, BackendError], None],
        counted: Callable[[int], None] = lambda in_a_row: None,
    ) -> None:
        self.name = name
        self.max_in_a_row = max_in_a_row
        self.on_failure = on_failure
        self.counted = counted
        self.stats = RequestStats()
        self.in_a_row = 0
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """The failures counted so far: the epoch of a request sent now."""
        return self._epoch

    def sent(self) -> None:
        """Count one request sent."""
        self.stats.sent += 1

    def settle(self, outcome: Outcome[J], handle: Callable[[J, Completion], bool]) -> bool:
        """Count one outcome; an answer goes to ``handle``, whose verdict (the stage is
        complete) is returned. A failure returns False, or raises :class:`UserError`
        when it stops the run."""
        job, result, epoch = outcome
        if isinstance(result, BackendError):
            self._fail(job, result, epoch)
            return False
        self.stats.succeeded += 1
        self.stats.prompt_tokens += result.usage.prompt_tokens
        self.stats.completion_tokens += result.usage.completion_tokens
        self.in_a_row = 0
        return handle(job, result)

    def _fail(self, job: J, error: BackendError, epoch: int) -> None:
        self.stats.failed += 1
        self.on_failure(job, error)
        if not error.retryable:
            raise UserError(f"{self.name}: {error.message}")
        if self.stats.succeeded and epoch < self._epoch:
            return  # part of a burst already counted, and the server has answered
        self._epoch += 1
        self.in_a_row += 1
        if self.in_a_row >= self.max_in_a_row:
            raise UserError(
                f"{self.name}: {self.in_a_row} requests in a row failed; the last error: "
                f"{error.message}. Check that the server is up and answering, then run "
                "the same command again to resume"
            )
        self.counted(self.in_a_row)
