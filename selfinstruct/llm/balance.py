"""Spread requests over several servers of the same model.

A user with eight vLLM servers on eight nodes runs one job: each request goes to the
healthy server with the fewest requests in flight; a server that fails is taken out
for a cool-down (doubling while it keeps failing) and tried again after it, and the
request that failed moves on to another server at once instead of waiting out the
dead one's retries, as does a request that a silent server held. Errors that no server
can fix (bad key, unknown model) surface immediately. Before the first request every
server is checked at once (:meth:`check`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selfinstruct.llm.base import (
    Backend,
    BackendError,
    Completion,
    Request,
    ServerSilent,
    ServerUnreachable,
    preflight,
)

logger = logging.getLogger(__name__)

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
                # A silent server stops a run on its own, but here the others go on.
                if not err.retryable and not isinstance(err, ServerSilent):
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

    async def check(self) -> None:
        """Check every server at once before the first request.

        An error that every server would give (a refused key) or that would stop the run
        at the first request routed there (a server without the model) is raised. Servers
        that cannot be reached stop the run only when none can: otherwise they are named
        in one warning and start out in a cool-down, as if they had failed a request, so
        the first requests go to the servers that answered, and a node still starting up
        joins in when it is tried again after the cool-down.
        """
        outcomes = await asyncio.gather(
            *(preflight(server.backend) for server in self._servers), return_exceptions=True
        )
        down = _unreachable(self._servers, outcomes)
        named = ", ".join(f"{err.url} ({err.detail})" for _, err in down)
        if len(down) == len(self._servers):
            raise BackendError(
                f"cannot reach any of the {len(down)} servers: {named} (check that they are "
                "running and that --base-url / --base-url-file are right)", retryable=True
            )
        for server, _ in down:
            self._mark_down(server)
        if down:
            logger.warning("%d of %d servers cannot be reached and sit out a cool-down before "
                           "they are tried: %s; going on with the other %d", len(down),
                           len(self._servers), named, len(self._servers) - len(down))

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


def _unreachable(
    servers: list[_Server], outcomes: list[BaseException | None]
) -> list[tuple[_Server, ServerUnreachable]]:
    """The servers whose check found them unreachable; any other failure is raised."""
    down: list[tuple[_Server, ServerUnreachable]] = []
    for server, outcome in zip(servers, outcomes, strict=True):
        if isinstance(outcome, ServerUnreachable):
            down.append((server, outcome))
        elif outcome is not None:
            raise outcome
    return down
