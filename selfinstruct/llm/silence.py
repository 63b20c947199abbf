"""Notice a server that has gone silent while requests wait on it.

A server that takes connections and never answers (a hung process, a dead worker behind
a live port) would hold each request for its whole ``--timeout``, times its retries: an
hour of nothing before the run stops. A slow server is another matter: it still answers
``GET /models``, and streaming, it sends chunks. So the watch keeps the time the server
was last heard from (any answer, any chunk); once requests have waited ``limit``
seconds with nothing heard, it asks for the model list (``probe``), and only when that
goes unanswered too are the waiting requests ended with :class:`ServerSilent`.

The cost per request is a set insertion and removal, and a float per answer or chunk;
one timer task runs while requests are in flight, waking once per ``limit`` at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from selfinstruct.llm.base import ServerSilent
from selfinstruct.llm.streaming import uncancel

T = TypeVar("T")


class SilenceWatch:
    """One server's silence, over every request sent to it."""

    def __init__(self, url: str, limit: float, probe: Callable[[], Awaitable[bool]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._limit = limit
        self._probe = probe
        self._clock = clock
        self._heard_at = clock()
        #: When the check before the run found the server silent (and nothing was heard
        #: since): the silence has lasted since then, not since the first request.
        self._silent_since: float | None = None
        self._waiting: set[asyncio.Task[Any]] = set()
        self._silenced: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.Task[None] | None = None

    def heard(self) -> None:
        """The server sent something: an answer, an error, a chunk."""
        self._heard_at = self._clock()

    def silent_since(self, since: float) -> None:
        """The check that began at ``since`` (this clock) heard nothing back."""
        self._heard_at = since
        self._silent_since = since

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work`` (one request, in the current task); when the server is found
        silent meanwhile, raise :class:`ServerSilent` instead."""
        task = asyncio.current_task()
        assert task is not None, "a request runs in a task"
        self._wait(task)
        try:
            return await work
        except asyncio.CancelledError:
            if task not in self._silenced or uncancel(task) > 0:
                raise
            raise ServerSilent(self._url, self._limit) from None
        finally:
            self._waiting.discard(task)
            self._silenced.discard(task)

    async def aclose(self) -> None:
        """Stop the timer, if one runs."""
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()

    def _wait(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` as waiting; the first one starts the silence clock (unless the
        check already found the server silent) and the timer."""
        if not self._waiting:
            if self._silent_since is None or self._heard_at > self._silent_since:
                self._heard_at = max(self._heard_at, self._clock())
            self._silent_since = None
        self._waiting.add(task)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """While requests wait: sleep until ``limit`` after the server was last heard,
        then probe it; silence the waiting requests when the probe goes unanswered."""
        while self._waiting:
            left = self._heard_at + self._limit - self._clock()
            if left > 0:
                await asyncio.sleep(left)
                continue
            if await self._probe():
                self.heard()
                continue
            if self._clock() - self._heard_at >= self._limit:
                self._silence()

    def _silence(self) -> None:
        """End every waiting request; the next ones get a silence clock of their own."""
        for task in self._waiting:
            if task.cancel():
                self._silenced.add(task)
        self._heard_at = self._clock()
