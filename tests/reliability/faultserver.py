"""A scripted, fault-injecting OpenAI-compatible server for the reliability tests.

It runs starlette under uvicorn in a background thread on 127.0.0.1 and answers
``/v1/chat/completions`` and ``/v1/completions``. Each request takes the next behaviour
from a queue (``push``), or ``default`` when the queue is empty: an ordinary answer, an
HTTP error, a reset connection, a hang, a slow drip, or one of several broken 200s.

Ordinary answers look at the prompt, so every stage makes progress: a bootstrap prompt
gets a numbered list of new tasks (with a near-duplicate now and then, so the
similarity filter has work), a classify prompt gets Yes or No, an instance prompt gets
``Example / Input / Output`` blocks or class labels, anything else gets an answer with
a reasoning trace. The server can also go away for a while (``outage``) and come back
on the same port. ``GET /v1/models`` lists the one model it serves, like vLLM, or answers
404 (``models_status``), like providers without that endpoint; it checks the key too.

A request with ``"stream": true`` gets the same answer as server-sent events, the way
vLLM and DashScope send them: a role chunk, ``reasoning_content`` deltas, ``content``
(or ``text``) deltas ``chunk_interval`` apart, a finish chunk, the usage chunk when
``stream_options.include_usage`` asks for it, and ``[DONE]``. ``demands_streaming`` makes
it refuse every request that is not streamed, with DashScope's 400.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "fault-model"

#: Every behaviour a request can be given. ``ok`` answers normally.
BEHAVIOURS = (
    "ok",
    "429",  # rate limited, no Retry-After
    "429-retry-after",  # rate limited, Retry-After: 1
    "500",
    "502",  # an HTML page from a proxy
    "503",
    "reset",  # half the body, then a TCP reset
    "cut",  # half the body, then the connection closes
    "hang",  # no answer for a long time
    "drip",  # a valid answer, a few bytes at a time, done within a second
    "drip-slow",  # a valid answer dribbled out over many seconds
    "bad-json",  # 200 with a truncated JSON body
    "not-json",  # 200 with text/html
    "empty-choices",
    "null-content",
    "empty-content",
    "keepalive",  # 200, whitespace keep-alive bytes, then the body ends: no completion
    "keepalive-then-ok",  # whitespace keep-alive bytes, then a valid answer
    "length",  # finish_reason length, the answer cut mid-task
    "duds",  # a well-formed answer whose every task is rejected (too short)
    "401",  # echoes the key it was given, as some servers do
    "404",
    "needs-stream",  # DashScope's 400 for a thinking model asked without streaming
    "stall",  # streamed: half the chunks, then nothing for hang_seconds
)

#: DashScope's refusal of a non-streamed request to a thinking model.
NEEDS_STREAM = ("<400> InternalError.Algo.InvalidParameter: The parameter.enable_thinking "
                "must be set to false for non-streaming calls")

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
#: Han characters for Chinese tasks (none that make up a blacklisted word).
_HAN = "天人山水火木金土日月星云风雨雪花草鸟鱼虫马牛羊狗猫龙虎书琴棋诗酒茶米面路桥河海林石"
_VERBS = ("Explain", "Describe", "Summarize", "Compare", "List", "Outline", "Evaluate", "Rank")


@dataclass
class Served:
    """One request as the server saw it."""

    number: int
    path: str
    kind: str
    behaviour: str
    model: str
    authorization: str
    time: float
    stream: bool = False


@dataclass
class FaultServer:
    """The server; ``start``/``stop`` it, ``push`` behaviours, read ``served``."""

    seed: int = 0
    model: str = MODEL
    default: str = "ok"
    #: Seconds an ``ok`` answer takes, drawn uniformly from this range.
    latency: tuple[float, float] = (0.0, 0.0)
    #: When set, requests with another bearer token get a 401 that echoes it.
    api_key: str | None = None
    #: Seconds a ``hang`` waits before answering (longer than any test's --timeout).
    hang_seconds: float = 30.0
    #: What ``GET /v1/models`` answers: 200 with the model list, or 404.
    models_status: int = 200
    #: How many times ``GET /v1/models`` was asked (not in ``served``: not a completion).
    listings: int = 0
    #: Refuse every request that is not streamed (``needs-stream``), as DashScope does.
    demands_streaming: bool = False
    #: Seconds between the chunks of a streamed answer.
    chunk_interval: float = 0.0
    #: ``GET /v1/models`` waits ``hang_seconds`` before it answers, as a busy one-slot
    #: server does.
    models_silent: bool = False
    port: int = 0
    served: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._emitted: list[str] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app = _with_transport(Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ]))

    # --- control -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The ``--base-url`` to give selfinstruct."""
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *behaviours: str) -> None:
        """Queue behaviours for the next requests, in order."""
        for behaviour in behaviours:
            assert behaviour in BEHAVIOURS, behaviour
        with self._lock:
            self._queue.extend(behaviours)

    def clear(self) -> None:
        """Forget queued behaviours and the request log; answer normally again."""
        with self._lock:
            self._queue.clear()
            self.served.clear()
            self.listings = 0
        self.models_status = 200
        self.default = "ok"
        self.latency = (0.0, 0.0)
        self.api_key = None
        self.demands_streaming = False
        self.chunk_interval = 0.0
        self.models_silent = False

    def count(self, behaviour: str | None = None, kind: str | None = None) -> int:
        """How many requests got ``behaviour`` (and were of ``kind``)."""
        with self._lock:
            return sum(
                1 for s in self.served
                if (behaviour is None or s.behaviour == behaviour)
                and (kind is None or s.kind == kind)
            )

    def start(self) -> FaultServer:
        """Listen on 127.0.0.1 (the same port as before, after a stop)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="critical", lifespan="off", http="h11",
            timeout_graceful_shutdown=1, access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "fault server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection: clients get connection refused."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def outage(self, seconds: float, after_requests: int = 0) -> threading.Thread:
        """Go away once ``after_requests`` requests came in, for ``seconds``, then come back."""

        def away() -> None:
            deadline = time.monotonic() + 60
            while self.count() < after_requests and time.monotonic() < deadline:
                time.sleep(0.01)
            self.stop()
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=away, daemon=True)
        thread.start()
        return thread

    # --- requests ------------------------------------------------------------------

    def _next(self, path: str, kind: str, body: dict[str, Any], auth: str) -> str:
        with self._lock:
            behaviour = self._queue.popleft() if self._queue else self.default
            if self.api_key is not None and auth != f"Bearer {self.api_key}":
                behaviour = "401"
            elif body.get("model") != self.model and behaviour == "ok":
                behaviour = "404"
            elif self.demands_streaming and not body.get("stream") and behaviour == "ok":
                behaviour = "needs-stream"
            self.served.append(Served(len(self.served) + 1, path, kind, behaviour,
                                      str(body.get("model")), auth, time.monotonic(),
                                      bool(body.get("stream"))))
            return behaviour

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        return await self._answer(request, body, prompt, chat=True)

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        return await self._answer(request, body, body["prompt"], chat=False)

    async def _models(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        with self._lock:
            self.listings += 1
        if self.models_silent:
            await asyncio.sleep(self.hang_seconds)
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return _refused(auth)
        if self.models_status == 404:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _answer(
        self, request: Request, body: dict[str, Any], prompt: str, *, chat: bool
    ) -> Response:
        kind = prompt_kind(prompt)
        auth = request.headers.get("authorization", "")
        behaviour = self._next(request.url.path, kind, body, auth)
        finish = "stop"
        with self._lock:
            text, reasoning = self._text(kind, prompt)
        if behaviour == "length":
            text, finish = text[: max(1, len(text) * 2 // 3)], "length"
        if behaviour == "duds":
            text = "Fix it.\nTask 99: Do it.\nTask 100: Go."
        payload = _completion(body.get("model", self.model), text, reasoning, finish, chat=chat)
        if behaviour in ("ok", "length", "duds", "stall"):
            low, high = self.latency
            if high:
                with self._lock:
                    delay = self._rng.uniform(low, high)
                await asyncio.sleep(delay)
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                stall = self.hang_seconds if behaviour == "stall" else 0.0
                return _streamed(payload, chat=chat, usage=usage,
                                 interval=self.chunk_interval, stall=stall)
            return JSONResponse(payload)
        return await self._fault(request, behaviour, payload, auth)

    async def _fault(
        self, request: Request, behaviour: str, payload: dict[str, Any], auth: str
    ) -> Response:
        encoded = json.dumps(payload).encode()
        if behaviour == "429":
            return _error(429, "Rate limit reached, please slow down", "rate_limit_exceeded")
        if behaviour == "429-retry-after":
            response = _error(429, "Rate limit reached", "rate_limit_exceeded")
            response.headers["retry-after"] = "1"
            return response
        if behaviour in ("500", "503"):
            return _error(int(behaviour), "The server had an error processing your request",
                          "server_error")
        if behaviour == "502":
            page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return Response(page, status_code=502, media_type="text/html")
        if behaviour == "401":
            return _refused(auth)
        if behaviour == "404":
            return _error(404, f"The model `{payload['model']}` does not exist.",
                          "model_not_found")
        if behaviour == "needs-stream":
            return _error(400, NEEDS_STREAM, "InvalidParameter")
        if behaviour in ("reset", "cut"):
            return _broken_stream(request, encoded, reset=behaviour == "reset")
        if behaviour == "hang":
            await asyncio.sleep(self.hang_seconds)
            return JSONResponse(payload)
        if behaviour == "drip":
            return _drip(encoded, pieces=5, interval=0.05)
        if behaviour == "drip-slow":
            return _drip(encoded, pieces=40, interval=0.25)
        if behaviour == "bad-json":
            return Response(encoded[: len(encoded) // 2], media_type="application/json")
        if behaviour == "not-json":
            return Response("<html><body>Service is warming up</body></html>",
                            media_type="text/html")
        if behaviour == "empty-choices":
            return JSONResponse({**payload, "choices": []})
        if behaviour in ("null-content", "empty-content"):
            value = None if behaviour == "null-content" else ""
            choice = dict(payload["choices"][0])
            if "message" in choice:
                choice["message"] = {"role": "assistant", "content": value}
            else:
                choice["text"] = value
            return JSONResponse({**payload, "choices": [choice]})
        if behaviour == "keepalive":
            return _drip(b"\n \n \n", pieces=3, interval=0.05)
        if behaviour == "keepalive-then-ok":
            return _drip(b"\n \n \n" + encoded, pieces=4, interval=0.05)
        raise AssertionError(behaviour)

    # --- what a model would write --------------------------------------------------

    def _word(self) -> str:
        return "".join(self._rng.choice(_SYLLABLES) for _ in range(self._rng.randint(2, 3)))

    def _instruction(self) -> str:
        words = " ".join(self._word() for _ in range(8))
        return f"{self._rng.choice(_VERBS)} {words}."

    def _han(self, count: int) -> str:
        return "".join(self._rng.choice(_HAN) for _ in range(count))

    def _text(self, kind: str, prompt: str) -> tuple[str, str | None]:
        if kind in ("generate", "generate-zh"):
            return self._tasks(prompt, chinese=kind == "generate-zh"), None
        if kind == "alpaca":
            match = re.search(r"(\d+)\. Instruction:\s*$", prompt)
            first = int(match.group(1)) if match else 1
            blocks = []
            for n in range(first, first + 3):
                head = "" if n == first else f"{n}. Instruction: "
                blocks.append(f"{head}{self._instruction()}\n{n}. Input:\n<noinput>\n"
                              f"{n}. Output:\n{self._word()} {self._word()}.")
            return "\n###\n".join(blocks), None
        if kind == "json-list":  # distill --parse json: three q/a pairs after a trace
            pairs = [{"q": self._instruction(), "a": self._word()} for _ in range(3)]
            return f"<think>{self._word()}</think>\n```json\n{json.dumps(pairs)}\n```", None
        if kind == "classify":
            instruction = prompt.rsplit("Task:", 1)[-1]
            return ("Yes" if zlib.crc32(instruction.encode()) % 3 == 0 else "No"), None
        count = int(m.group(1)) if (m := re.search(r"up to (\d+) examples", prompt)) else 3
        if kind == "input-first":
            blocks = [
                f"Example {n}\nInput: {self._word()} {self._word()} {self._word()}.\n"
                f"Output: {self._word()} {self._word()} {self._word()} {self._word()}."
                for n in range(1, count + 1)
            ]
            return "\n".join(blocks), None
        if kind == "output-first":
            labels = ("Alpha", "Beta")
            lines = ["Class labels: Alpha, Beta"]
            for n in range(count):
                lines += [f"Class label: {labels[n % 2]}",
                          f"Input: {self._word()} {self._word()} {self._word()}."]
            return "\n".join(lines), None
        return f"The answer is {self._word()}.", f"Let me think about {self._word()} first."

    def _tasks(self, prompt: str, *, chinese: bool) -> str:
        """Continue the numbered list: new tasks, now and then a near-duplicate or a dud."""
        match = re.search(r"(?:Task |任务)(\d+)[:：]\s*$", prompt)
        first = int(match.group(1)) if match else 1
        tasks = []
        for _ in range(5):
            roll = self._rng.random()
            if roll < 0.2 and self._emitted:
                tasks.append(self._near_duplicate(self._rng.choice(self._emitted)))
            elif roll < 0.28:
                tasks.append("修好它。" if chinese else "Fix it.")
            else:
                tasks.append(f"请解释{self._han(14)}。" if chinese else self._instruction())
                self._emitted.append(tasks[-1])
        label = "任务{}：" if chinese else "Task {}: "
        lines = [tasks[0]] + [label.format(first + i) + task for i, task in enumerate(tasks[1:], 1)]
        return "\n".join(lines)

    def _near_duplicate(self, text: str) -> str:
        """``text`` with one word (or, in Chinese, one character) changed."""
        if " " not in text:
            at = self._rng.randrange(3, len(text) - 1)
            return text[:at] + self._han(1) + text[at + 1 :]
        words = text.split()
        words[self._rng.randrange(1, len(words))] = self._word()
        return " ".join(words)


def prompt_kind(prompt: str) -> str:
    """Which stage sent ``prompt`` (from the wording of the bundled English templates)."""
    if "Continue the list with new tasks" in prompt:
        return "generate"
    if "请接着往下写新的任务" in prompt:
        return "generate-zh"
    if prompt.startswith("You are building a varied collection of tasks"):
        return "alpaca"
    if prompt.rstrip().endswith("Is it classification?"):
        return "classify"
    if "as a JSON list" in prompt:
        return "json-list"
    if prompt.startswith("You are writing worked examples"):
        return "input-first"
    if prompt.startswith("You are writing examples for classification tasks"):
        return "output-first"
    return "other"


def _completion(
    model: str, text: str, reasoning: str | None, finish: str, *, chat: bool
) -> dict[str, Any]:
    usage = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        kind = "text_completion"
    return {"id": "cmpl-fault", "object": kind, "created": int(time.time()), "model": model,
            "choices": [choice], "usage": usage}


def stream_events(payload: dict[str, Any], *, chat: bool, usage: bool) -> list[dict[str, Any]]:
    """The chunks a streaming server sends for the answer ``payload`` (a non-streamed
    body): the reasoning and the text in pieces of a few characters each."""
    choice = payload["choices"][0]
    head = {key: payload[key] for key in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk" if chat else "text_completion"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        body = {"index": 0, "finish_reason": finish}
        body.update({"delta": delta} if chat else {"text": delta.get("content", ""),
                                                   "logprobs": None})
        return {**head, "choices": [body]}

    message = choice.get("message", {})
    text = message.get("content", "") if chat else choice["text"]
    events = [chunk({"role": "assistant", "content": ""})] if chat else []
    reasoning = message.get("reasoning_content") or ""
    events += [chunk({"reasoning_content": reasoning[at : at + 7]})
               for at in range(0, len(reasoning), 7)]
    events += [chunk({"content": text[at : at + 7]}) for at in range(0, len(text), 7)]
    events.append(chunk({}, choice["finish_reason"]))
    if usage:
        events.append({**head, "choices": [], "usage": payload["usage"]})
    return events


def _streamed(payload: dict[str, Any], *, chat: bool, usage: bool, interval: float,
              stall: float) -> StreamingResponse:
    """``payload`` as server-sent events ``interval`` apart (after a keep-alive comment);
    with ``stall``, nothing for that long once half of them are out."""
    events = stream_events(payload, chat=chat, usage=usage)

    async def chunks() -> AsyncIterator[bytes]:
        yield b": keep-alive\n\n"
        for number, event in enumerate(events):
            if stall and number == len(events) // 2:
                await asyncio.sleep(stall)
            if interval:
                await asyncio.sleep(interval)
            yield f"data: {json.dumps(event)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}},
        status_code=status,
    )


def _refused(auth: str) -> JSONResponse:
    """A 401 that echoes the key it was given, as some servers do."""
    key = auth.removeprefix("Bearer ")
    return _error(401, f"Incorrect API key provided: {key}. Check your key.", "invalid_api_key")


def _drip(data: bytes, *, pieces: int, interval: float) -> StreamingResponse:
    """``data`` in ``pieces`` chunks, ``interval`` seconds apart."""
    size = max(1, -(-len(data) // pieces))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            await asyncio.sleep(interval)
            yield data[start : start + size]

    return StreamingResponse(chunks(), media_type="application/json",
                             headers={"content-length": str(len(data))})


def _with_transport(app: Any) -> Any:
    """Put uvicorn's transport of the connection in the scope, so a fault can reset it."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["fault.transport"] = getattr(getattr(send, "__self__", None), "transport", None)
        await app(scope, receive, send)

    return asgi


def _broken_stream(request: Request, data: bytes, *, reset: bool) -> StreamingResponse:
    """Announce the whole body, send half, then reset or close the connection."""
    transport = request.scope["fault.transport"]

    async def chunks() -> AsyncIterator[bytes]:
        yield data[: len(data) // 2]
        await asyncio.sleep(0.05)
        if reset:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    return StreamingResponse(chunks(), media_type="application/json",
                             headers={"content-length": str(len(data))})
