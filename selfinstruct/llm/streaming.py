"""Streamed answers: read one with a deadline per chunk, then put it back together.

Some APIs answer a thinking model only as a stream (DashScope refuses ``enable_thinking``
on a non-streaming call), and a long answer that arrives in chunks shows that a slow
server is working. A stream has no end to put one deadline on, so it gets two: its first
chunk must come within ``first`` seconds (connecting and queueing included), and each
next one within ``idle`` seconds of the last. The body is read whole inside the HTTP
client's ``send``, so a stall is a ``ReadTimeout`` there and the openai client retries
it with its backoff, as it retries a non-streamed answer that ran out of time.

The chunks are then joined into the body a non-streamed request would have got (content,
``reasoning_content`` / ``reasoning``, the last finish reason, the usage of the final
chunk that ``stream_options.include_usage`` asks for), which the backend reads with the
same code as any other answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2

from selfinstruct.llm.base import BackendError


@dataclass(frozen=True)
class Pacing:
    """The deadlines of a streamed answer, in seconds."""

    first: float
    idle: float


async def read_streamed(send: Awaitable[httpx2.Response], request: httpx2.Request,
                        pacing: Pacing, heard: Callable[[], None]) -> httpx2.Response:
    """Await ``send`` (a streaming send) and read its whole body within ``pacing``;
    ``heard`` is called for the headers and for every piece of the body.

    Only pieces with an SSE ``data:`` field move the deadline: keep-alive comments show
    the server is there (``heard``) but not that the answer is coming.
    """
    deadline = _Deadline(pacing.first)
    try:
        response = await send
        heard()
        if response.is_success:
            response.stream = _Paced(response.stream, deadline, pacing.idle, heard)
        await response.aread()
        return response
    except asyncio.CancelledError:
        if not deadline.expired or uncancel(deadline.task) > 0:
            raise
        what = (f"no new chunk within {pacing.idle:g}s" if deadline.started
                else f"no first chunk within {pacing.first:g}s")
        raise DeadlineTimeout(f"the stream stalled: {what}", request=request) from None
    finally:
        deadline.cancel()


class DeadlineTimeout(httpx2.ReadTimeout):
    """A deadline of ours ran out (its message says which); retried as a read timeout."""


class _Deadline:
    """Cancels the current task once ``at`` has passed; moving ``at`` later costs a float.

    ``asyncio.wait_for`` would start a task per chunk (Python 3.10), and
    ``asyncio.timeout`` is 3.11's; a timer that re-arms itself when it finds ``at``
    moved on costs nothing per chunk. Only a move to sooner than the timer (the first
    chunk, when the idle limit is the shorter) re-arms it at once.
    """

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "a deadline needs a task to cancel"
        self.task = task
        self.at = self._loop.time() + seconds
        self.started = False
        self.expired = False
        self._handle = self._arm()

    def push(self, seconds: float) -> None:
        """The next piece must come within ``seconds`` from now."""
        self.started = True
        self.at = self._loop.time() + seconds
        if self.at < self._handle.when():  # sooner than the timer: the idle limit is
            self._handle.cancel()          # shorter than the first chunk's
            self._handle = self._arm()

    def cancel(self) -> None:
        """Stop the timer (the read ended, one way or another)."""
        self._handle.cancel()

    def _arm(self) -> asyncio.TimerHandle:
        return self._loop.call_at(self.at, self._fire)

    def _fire(self) -> None:
        if self.at - self._loop.time() > _SLACK:
            self._handle = self._arm()
            return
        self.expired = True
        self.task.cancel()


#: The timer fires this close to its deadline at the earliest (the loop's clock
#: resolution); a deadline further off was moved, and the timer waits for it.
_SLACK = 1e-3


def uncancel(task: asyncio.Task[Any]) -> int:
    """Take back one cancellation of ``task``; the cancellations still pending (always 0
    before Python 3.11, which does not count them)."""
    take_back = getattr(task, "uncancel", None)
    return int(take_back()) if take_back is not None else 0


class _Paced(httpx2.AsyncByteStream):
    """A response body that moves its deadline on with every ``data:`` piece."""

    def __init__(self, inner: Any, deadline: _Deadline, idle: float,
                 heard: Callable[[], None]) -> None:
        self._inner = inner
        self._deadline = deadline
        self._idle = idle
        self._heard = heard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            self._heard()
            if b"data:" in piece:
                self._deadline.push(self._idle)
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


def assemble(body: bytes, *, chat: bool) -> dict[str, Any]:
    """The non-streamed response that the SSE chunks of ``body`` add up to.

    Choice 0 only (a request asks for one answer). A chunk that is not a JSON object,
    or an ``error`` sent in place of the next chunk, is a retryable
    :class:`BackendError`, like a broken non-streamed body. No chunk with a choice makes
    a response without choices, which the caller rejects as it rejects an empty answer.
    """
    parts: dict[str, list[str]] = {"content": [], "reasoning_content": [], "reasoning": [],
                                   "text": []}
    finish: str | None = None
    usage: Any = None
    model: Any = None
    answered = False
    for chunk in _chunks(body):
        model = model or chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        choice = _choice(chunk)
        if choice is None:
            continue
        answered = True
        delta = choice.get("delta") if chat else choice
        if isinstance(delta, dict):
            for key, value in delta.items():  # mostly one: a delta is one token
                if key in parts and isinstance(value, str):
                    parts[key].append(value)
        if isinstance(choice.get("finish_reason"), str):
            finish = choice["finish_reason"]
    response: dict[str, Any] = {"model": model, "usage": usage, "choices": []}
    if answered:
        response["choices"] = [_joined(parts, finish, chat=chat)]
    return response


def _chunks(body: bytes) -> list[dict[str, Any]]:
    """The JSON objects of the stream's ``data:`` events, up to ``[DONE]``.

    Parsed in one ``json.loads`` of them all as a list, which takes a third of the time
    of one call per chunk (a few hundred per answer); only when that fails are they
    parsed one by one, to name the chunk that is not JSON.
    """
    events: list[bytes] = []
    for data in _events(body):
        if data.strip() == b"[DONE]":
            break
        events.append(data)
    try:
        chunks = json.loads(b"[" + b",".join(events) + b"]")
    except ValueError:
        chunks = [_parsed(data) for data in events]
    for chunk in chunks:
        if not isinstance(chunk, dict):
            raise BackendError(f"malformed stream: {str(chunk)[:200]!r} is not an object",
                               retryable=True)
        if chunk.get("error"):
            raise BackendError(f"the server broke off the stream: {_message(chunk['error'])}",
                               retryable=True)
    return chunks  # type: ignore[no-any-return]


def _parsed(data: bytes) -> Any:
    """One event's JSON, or the failure that names it."""
    try:
        return json.loads(data)
    except ValueError:
        raise BackendError(f"malformed stream: a chunk is not JSON: {data[:200]!r}",
                           retryable=True) from None


def _events(body: bytes) -> Iterator[bytes]:
    """The data of each server-sent event (its ``data:`` lines joined by newlines);
    comments, ``event:``, ``id:`` and ``retry:`` lines say nothing about the answer."""
    data: list[bytes] = []
    for line in body.splitlines():
        if not line:
            if data:
                yield b"\n".join(data)
                data = []
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)


def _choice(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """Choice 0 of a chunk; None for a chunk without one (the usage chunk)."""
    choices = chunk.get("choices")
    if not choices:
        return None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise BackendError(f"malformed stream: choices are {str(choices)[:200]!r}",
                           retryable=True)
    return choices[0] if choices[0].get("index", 0) == 0 else None


def _joined(parts: dict[str, list[str]], finish: str | None, *, chat: bool) -> dict[str, Any]:
    """One non-streamed choice from the pieces of every delta."""
    if not chat:
        return {"index": 0, "text": "".join(parts["text"]), "finish_reason": finish}
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts["content"])}
    for key in ("reasoning_content", "reasoning"):
        if parts[key]:
            message[key] = "".join(parts[key])
    return {"index": 0, "message": message, "finish_reason": finish}


def _message(error: object) -> str:
    """The text of an in-stream error object (or whatever the server put there)."""
    message = error.get("message") if isinstance(error, dict) else None
    return (message if isinstance(message, str) else str(error))[:300]
