"""A model that answers from a script or a queue: for tests, examples and notebooks.

Two ways to say what it answers:

* ``FakeBackend(script)``: ``script(request, number)`` returns the answer to the
  ``number``-th request (from 1): its text (a complete answer), a :class:`Completion`,
  or a :class:`BackendError` to fail it;
* ``FakeBackend()`` then ``enqueue("answer", …)``: each request takes the next answer
  in order (like simonw/llm's ``MockModel``); an empty queue fails the request;
* ``--backend fake --model answers.jsonl`` (:meth:`FakeBackend.from_file`): the answers
  of a file, in order and then again from the first, so a command can be tried end to
  end with no model at all.

Every request is recorded, with how many were in flight at once, so a test can check
what the pipeline sent as well as what it made of the answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request, Usage

#: What a script returns for one request.
Answer = Completion | BackendError
Script = Callable[[Request, int], "str | Answer"]


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

    @classmethod
    def from_file(cls, path: Path) -> FakeBackend:
        """Answers from ``path``, one a line: a JSON string (the text) or an object with
        ``text`` and optionally ``reasoning`` and ``finish_reason``; in order, then
        again from the first."""
        try:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip()]
            answers = [_answer_of(json.loads(line)) for line in lines]
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise UserError(f"{path}: not a file of answers, one JSON string or object "
                            f"with 'text' a line ({err})") from None
        if not answers:
            raise UserError(f"{path}: holds no answers")
        cycle = itertools.cycle(answers)
        return cls(lambda request, number: next(cycle), name=f"fake:{path.name}")

    def _answer(self, request: Request, number: int) -> Answer:
        if self.script is not None:
            answer = self.script(request, number)
            return completion(answer) if isinstance(answer, str) else answer
        if not self._queue:
            return BackendError("the fake backend's queue is empty", retryable=False)
        return self._queue.popleft()


def completion(text: str, *, finish_reason: str = "stop", reasoning: str | None = None,
               model: str = "fake-model") -> Completion:
    """A complete answer with plausible token counts (one token per word)."""
    return Completion(text=text, finish_reason=finish_reason, reasoning=reasoning,
                      usage=Usage(prompt_tokens=100, completion_tokens=len(text.split())),
                      model=model)


def _answer_of(value: Any) -> Completion:
    """One line of an answers file as a complete answer."""
    if isinstance(value, str):
        return completion(value)
    return completion(value["text"], reasoning=value.get("reasoning"),
                      finish_reason=value.get("finish_reason", "stop"))
