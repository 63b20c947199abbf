"""The silence watch: requests waiting on a server that sends nothing, and does not
answer GET /models either, end with ServerSilent; a server that is heard from, or that
answers the probe, is never cut off."""

from __future__ import annotations

import asyncio
import time

import pytest

from selfinstruct.llm.base import ServerSilent
from selfinstruct.llm.silence import SilenceWatch

URL = "http://127.0.0.1:9/v1"


class Probe:
    """A GET /models that answers (or not), counting how often it was asked."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.asked = 0

    async def __call__(self) -> bool:
        self.asked += 1
        await asyncio.sleep(0.01)
        return self.answers


def test_requests_on_a_silent_server_end_after_the_limit():
    probe = Probe(answers=False)
    watch = SilenceWatch(URL, 0.3, probe)

    async def run() -> list[BaseException | str]:
        started = time.monotonic()
        outcomes = await asyncio.gather(*(watch.guard(asyncio.sleep(30, "late"))
                                          for _ in range(3)), return_exceptions=True)
        assert 0.3 <= time.monotonic() - started < 1.5
        await watch.aclose()
        return outcomes

    outcomes = asyncio.run(run())
    assert all(isinstance(outcome, ServerSilent) for outcome in outcomes)
    assert outcomes[0].message.startswith(f"{URL} has sent nothing for 0.3s")
    assert not outcomes[0].retryable
    assert probe.asked == 1


def test_a_server_that_answers_the_probe_is_slow_not_silent():
    probe = Probe(answers=True)
    watch = SilenceWatch(URL, 0.2, probe)

    async def run() -> str:
        answer = await watch.guard(asyncio.sleep(0.9, "done"))
        await watch.aclose()
        return answer

    assert asyncio.run(run()) == "done"
    assert probe.asked >= 2


def test_a_server_heard_from_is_not_even_probed():
    probe = Probe(answers=False)
    watch = SilenceWatch(URL, 0.3, probe)

    async def streaming() -> str:
        for _ in range(10):  # 1s of chunks, 0.1s apart
            await asyncio.sleep(0.1)
            watch.heard()
        return "done"

    async def run() -> str:
        answer = await watch.guard(streaming())
        await watch.aclose()
        return answer

    assert asyncio.run(run()) == "done"
    assert probe.asked == 0


def test_a_server_silent_at_the_check_is_judged_from_the_check_on():
    """The check heard nothing 0.4s ago: with a limit of 0.5s the first request ends
    after about 0.1s, not 0.5s."""
    watch = SilenceWatch(URL, 0.5, Probe(answers=False))

    async def run() -> float:
        watch.silent_since(time.monotonic() - 0.4)
        started = time.monotonic()
        with pytest.raises(ServerSilent):
            await watch.guard(asyncio.sleep(30))
        await watch.aclose()
        return time.monotonic() - started

    assert asyncio.run(run()) < 0.4


def test_requests_after_a_quiet_spell_start_a_clock_of_their_own():
    """Nothing was in flight for a while: a new request is not judged by that pause."""
    watch = SilenceWatch(URL, 0.3, Probe(answers=False))

    async def run() -> str:
        await asyncio.sleep(0.5)
        answer = await watch.guard(asyncio.sleep(0.2, "done"))
        await watch.aclose()
        return answer

    assert asyncio.run(run()) == "done"


def test_a_cancel_from_elsewhere_is_not_taken_for_silence():
    watch = SilenceWatch(URL, 5.0, Probe(answers=False))

    async def run() -> None:
        task = asyncio.ensure_future(watch.guard(asyncio.sleep(30)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await watch.aclose()

    asyncio.run(run())
