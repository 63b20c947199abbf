"""One actor of the pool: one backend, and the requests of every batch it is given.

Ray Data calls :class:`BackendWorker` with a batch of encoded requests and waits for
the batch's outcomes. The actor takes several batches at once (``async`` calls), and
one semaphore holds its requests in flight to its share of ``--concurrency``: a batch
waiting for its slowest answer holds no slot, so the other batches keep the server
busy. After a failure the actor waits before it sends again (0.5 s, doubling up to
30 s while failures go on; the requests that fail together, as in an outage, count
once), as the local runner does, so an outage is not hammered. After an error that can
never succeed (a refused key) it sends nothing more: the coordinator stops the run on
the first one, and the rest of the dataset drains at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from selfinstruct.cluster.wire import Outcome, decode_request, encode_outcome
from selfinstruct.llm.base import BackendError, Request
from selfinstruct.llm.registry import BackendFactory, BackendSpec, create_backend
from selfinstruct.stages.ledger import MAX_BACKOFF, backoff


class BackendWorker:
    """Sends batches of requests through one backend built when the actor starts.

    ``factory`` builds the backend (default: the registry's :func:`create_backend`);
    it must be importable or picklable, since it travels to the actor.
    """

    def __init__(self, spec: BackendSpec, api_key: str | None, slots: int,
                 factory: BackendFactory | None = None) -> None:
        self._backend = (factory or create_backend)(spec, api_key, slots)
        self._slots = asyncio.Semaphore(slots)
        self._failures_in_a_row = 0
        #: Counted failures so far: a request sent before the last one counted is part
        #: of the same burst.
        self._epoch = 0
        self._resume_at = 0.0
        self._refused: BackendError | None = None

    async def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The outcome of every request of ``batch``, under the same keys."""
        requests = [decode_request(bytes(data)) for data in batch["request"]]
        outcomes = await asyncio.gather(*(self._send(request) for request in requests))
        encoded = np.empty(len(outcomes), dtype=object)
        encoded[:] = [encode_outcome(outcome) for outcome in outcomes]
        return {"key": np.asarray(batch["key"]), "outcome": encoded}

    async def _send(self, request: Request) -> Outcome:
        async with self._slots:
            delay = self._resume_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._refused is not None:
                return self._refused
            epoch = self._epoch
            try:
                completion = await self._backend.complete(request)
            except BackendError as err:
                self._failed(err, epoch)
                return err
            self._failures_in_a_row = 0
            return completion

    def _failed(self, error: BackendError, epoch: int) -> None:
        if not error.retryable:
            self._refused = error
        elif epoch == self._epoch:
            self._epoch += 1
            self._failures_in_a_row += 1
            pause = backoff(self._failures_in_a_row, MAX_BACKOFF)
            self._resume_at = max(self._resume_at, time.monotonic() + pause)
