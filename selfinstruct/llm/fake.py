"""A model that answers from a script or a queue: for tests, examples and notebooks.

Two ways to say what it answers:

* ``FakeBackend(script)``: ``script(request, number)`` returns the answer to the
  ``number``-th request (from 1), or a :class:`BackendError` to fail it;
* ``FakeBackend()`` then ``enqueue("answer", …)``: each request takes the next answer
  in order (like simonw/llm's ``MockModel``); an empty queue fails the request.

Every request is recorded, with how many were in flight at once, so a test can check
what the pipeline sent as well as what it made of the answers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from selfinstruct.llm.base import BackendError, Completion, Request, Usage

#: What a script returns for one request.
Answer = Completion | BackendError
Script = Callable[[Request, int], Answer]


class FakeBackend:
    """Answers each request from ``script`` or the queue; records every request.

    ``delay`` (seconds) makes answers arrive later, so several are in flight at once.
    """

    def __init__(self, script: Script | None = None, *, delay: float = 0.0,
                 name: str = "fake") -> None:
        self.name = name
        self.script = script
        self.delay = delay
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False
        self._queue: deque[Answer] = deque()

    def enqueue(self, *answers: str | Answer) -> None:
        """Queue answers for the next requests; a string is a complete answer's text."""
        for answer in answers:
            self._queue.append(completion(answer) if isinstance(answer, str) else answer)

    async def complete(self, request: Request) -> Completion:
        """The scripted or queued answer, after ``delay``; a queued error is raised."""
        self.requests.append(request)
        number = len(self.requests)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            outcome = self._answer(request, number)
        finally:
            self.in_flight -= 1
        if isinstance(outcome, BackendError):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        """Nothing to release; remembered so tests can check the stage closed it."""
        self.closed = True

    def _answer(self, request: Request, number: int) -> Answer:
        if self.script is not None:
            return self.script(request, number)
        if not self._queue:
            return BackendError("the fake backend's queue is empty", retryable=False)
        return self._queue.popleft()


def completion(text: str, *, finish_reason: str = "stop", reasoning: str | None = None,
               model: str = "fake-model") -> Completion:
    """A complete answer with plausible token counts (one token per word)."""
    return Completion(text=text, finish_reason=finish_reason, reasoning=reasoning,
                      usage=Usage(prompt_tokens=100, completion_tokens=len(text.split())),
                      model=model)
