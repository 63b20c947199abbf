"""The ledger both senders count in (the local runner and ``--executor ray``): checked
once here, outcome by outcome, so a change to the stop rules shows for both."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from selfinstruct.cluster.runner import RayRunner
from selfinstruct.cluster.wire import encode_outcome
from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.stages.ledger import MAX_BACKOFF, Ledger, backoff
from selfinstruct.stages.runner import Runner

BUSY = BackendError("HTTP 503: busy", retryable=True)
CLUSTER = Path(__file__).resolve().parents[2] / "selfinstruct" / "cluster"


class Book:
    """A ledger that stops after ``limit`` failures in a row, with what it reported."""

    def __init__(self, limit: int) -> None:
        self.failed: list[tuple[int, str]] = []
        self.counted: list[int] = []
        self.handled: list[int] = []
        self.ledger: Ledger[int] = Ledger(
            "fake", max_in_a_row=limit,
            on_failure=lambda job, error: self.failed.append((job, error.message)),
            counted=self.counted.append)

    def answer(self, job: int, *, done: bool = False) -> bool:
        self.ledger.sent()
        return self.ledger.settle((job, Completion("ok", usage=Usage(3, 5)), self.ledger.epoch),
                                  self.handle_returning(done))

    def fail(self, job: int, epoch: int | None = None, error: BackendError = BUSY) -> bool:
        self.ledger.sent()
        sent_in = self.ledger.epoch if epoch is None else epoch
        return self.ledger.settle((job, error, sent_in), self.handle_returning(False))

    def handle_returning(self, done: bool):
        def handle(job: int, completion: Completion) -> bool:
            self.handled.append(job)
            return done
        return handle


STOP = ("fake: 3 requests in a row failed; the last error: HTTP 503: busy. Check that the "
        "server is up and answering, then run the same command again to resume")


def test_the_run_stops_at_exactly_n_failures_in_a_row():
    book = Book(limit=3)
    assert not book.fail(1) and not book.fail(2)  # two in a row: the run goes on
    with pytest.raises(UserError) as stopped:
        book.fail(3)
    assert str(stopped.value) == STOP
    assert book.failed == [(1, "HTTP 503: busy"), (2, "HTTP 503: busy"), (3, "HTTP 503: busy")]
    assert book.counted == [1, 2]  # the failure that stops the run sets no backoff


def test_an_answer_ends_a_run_of_failures():
    book = Book(limit=3)
    book.fail(1)
    book.fail(2)
    book.answer(3)
    book.fail(4)
    book.fail(5)  # two in a row again, not four
    assert book.counted == [1, 2, 1, 2]
    with pytest.raises(UserError, match="3 requests in a row failed"):
        book.fail(6)


def test_an_error_that_can_never_succeed_stops_at_once_after_it_is_recorded():
    book = Book(limit=3)
    with pytest.raises(UserError) as stopped:
        book.fail(1, error=BackendError("HTTP 401: the API key was refused", retryable=False))
    assert str(stopped.value) == "fake: HTTP 401: the API key was refused"
    assert book.failed == [(1, "HTTP 401: the API key was refused")]
    assert book.counted == [] and book.ledger.stats.failed == 1


def test_failures_sent_together_count_once_after_the_server_has_answered():
    """The Ray runner gives a batch one epoch; the local runner gives each request the
    epoch it went out in: either way, a burst counts once once an answer has come."""
    book = Book(limit=2)
    book.answer(0)
    burst = book.ledger.epoch
    for job in (1, 2, 3, 4):
        book.fail(job, epoch=burst)
    assert book.counted == [1] and book.ledger.in_a_row == 1
    assert len(book.failed) == 4
    with pytest.raises(UserError, match="2 requests in a row failed"):
        book.fail(5)  # sent after the burst was counted: a new failure


def test_before_any_answer_every_failure_of_a_burst_counts():
    """A server that never answered (a wrong address) stops the run after one round."""
    book = Book(limit=3)
    burst = book.ledger.epoch
    book.fail(1, epoch=burst)
    book.fail(2, epoch=burst)
    with pytest.raises(UserError, match="3 requests in a row failed"):
        book.fail(3, epoch=burst)


def test_the_counts_and_tokens_add_up_and_handle_decides_when_done():
    book = Book(limit=5)
    assert not book.answer(1)
    book.fail(2)
    assert book.answer(3, done=True)
    stats = book.ledger.stats
    assert (stats.sent, stats.succeeded, stats.failed) == (3, 2, 1)
    assert (stats.prompt_tokens, stats.completion_tokens) == (6, 10)
    assert book.handled == [1, 3]


def test_the_backoff_doubles_up_to_its_cap():
    assert [backoff(n, MAX_BACKOFF) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff(3, 0.0) == 0.0


def test_the_cluster_takes_from_the_stages_only_the_ledger():
    """``--executor ray`` is an executor below the stages: it shares their bookkeeping and
    nothing else (the pipeline imports the cluster, never the other way round)."""
    taken = {
        node.module
        for path in CLUSTER.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "selfinstruct.stages")
    }
    assert taken == {"selfinstruct.stages.ledger"}


def local_failures(limit: int) -> tuple[int, str]:
    """How many requests the local runner sent to a server that fails them all, one at a
    time, before it stopped, and the line it stopped with."""
    backend = FakeBackend(lambda request, number: BUSY)
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    runner: Runner[int] = Runner(backend, concurrency=1, max_consecutive_failures=limit,
                                 on_failure=lambda job, error: None,
                                 clock=lambda: 0.0, pause=pause)
    jobs = iter(range(100))
    with pytest.raises(UserError) as stopped:
        asyncio.run(runner.run(lambda: (job := next(jobs), Request(str(job))),
                               lambda job, answer: False, asyncio.Event()))
    assert pauses == [backoff(n, MAX_BACKOFF) for n in range(1, limit)]
    return len(backend.requests), str(stopped.value)


def ray_failures(limit: int) -> tuple[int, str]:
    """The same for the Ray runner's side of it: a batch of one failure at a time."""
    runner: RayRunner[int] = RayRunner(None, "fake", concurrency=1,  # type: ignore[arg-type]
                                       max_consecutive_failures=limit,
                                       on_failure=lambda job, error: None)
    with pytest.raises(UserError) as stopped:
        for job in range(100):
            runner._settle({"key": [0], "outcome": [encode_outcome(BUSY)]}, [job],
                           lambda job, answer: False)
    return runner.stats.sent, str(stopped.value)


@pytest.mark.parametrize("sender", [local_failures, ray_failures], ids=["local", "ray"])
def test_both_senders_stop_at_the_third_failure_in_a_row_with_the_same_line(sender):
    assert sender(3) == (3, STOP)
