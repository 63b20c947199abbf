"""Spread requests over several servers of the same model.

A user with eight vLLM servers on eight nodes runs one job: each request goes to the
healthy server with the fewest requests in flight; a server that fails is taken out
for a cool-down (doubling while it keeps failing) and tried again after it, and the
request that failed moves on to another server at once instead of waiting out the
dead one's retries. Errors that no server can fix (bad key, unknown model) surface
immediately.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selfinstruct.llm.base import Backend, BackendError, Completion, Request

#: First and longest time a failed server sits out, in seconds.
COOLDOWN = 10.0
MAX_COOLDOWN = 300.0


@dataclass
class _Server:
    backend: Backend
    in_flight: int = 0
    sent: int = 0
    failures: int = 0
    down_until: float = 0.0


class BalancedBackend:
    """Least-loaded routing with health tracking over interchangeable backends."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        cooldown: float = COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ValueError("BalancedBackend needs at least one backend")
        self._servers = [_Server(backend) for backend in backends]
        self._cooldown = cooldown
        self._clock = clock
        self.name = f"{backends[0].name} x{len(backends)} servers"

    async def complete(self, request: Request) -> Completion:
        """Try servers best-first until one answers or every server has failed once."""
        tried: set[int] = set()
        while True:
            index = self._pick(tried)
            server = self._servers[index]
            server.in_flight += 1
            server.sent += 1
            try:
                completion = await server.backend.complete(request)
            except BackendError as err:
                if not err.retryable:
                    raise
                self._mark_down(server)
                tried.add(index)
                if len(tried) == len(self._servers):
                    raise
                continue
            finally:
                server.in_flight -= 1
            server.failures = 0
            return completion

    async def aclose(self) -> None:
        """Close every server's connections."""
        for server in self._servers:
            await server.backend.aclose()

    def _pick(self, tried: set[int]) -> int:
        now = self._clock()
        candidates = [i for i in range(len(self._servers)) if i not in tried]
        healthy = [i for i in candidates if self._servers[i].down_until <= now]
        if not healthy:
            # All are cooling down: the one back soonest is the best bet.
            return min(candidates, key=lambda i: self._servers[i].down_until)
        return min(healthy, key=lambda i: (self._servers[i].in_flight, self._servers[i].sent))

    def _mark_down(self, server: _Server) -> None:
        server.failures += 1
        pause = min(MAX_COOLDOWN, self._cooldown * 2 ** (server.failures - 1))
        server.down_until = self._clock() + pause

    def load(self) -> list[tuple[str, int, bool]]:
        """``(name, requests sent, healthy now)`` per server, for tests and summaries."""
        now = self._clock()
        return [(s.backend.name, s.sent, s.down_until <= now) for s in self._servers]
