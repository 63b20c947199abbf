"""An OpenAI-compatible server on 127.0.0.1 whose every answer is a function of the prompt.

The fault server draws its answers from one random stream, so what a record gets depends
on the order requests arrive in; comparing the local executor with Ray needs answers
that do not. Here the prompt alone decides (by its CRC-32), so two runs of a stage over
the same rows must write the same records, whatever sent the requests and in what order:

* the first request of every 11th prompt fails with a 503 (a retry answers it), so
  failures and retries are exercised too;
* a judge prompt gets a JSON verdict, except the first answer to every 4th one, which is
  unreadable prose (the judge asks again with a reminder);
* a JSON-list prompt (distill) gets a fenced list of two q/a items, or prose for every
  5th (rejected as unparseable);
* an instance prompt gets ``Example`` blocks (input-first) or labels (output-first);
* anything else gets a reasoning trace and an answer, cut by the length limit for every
  7th (rejected as truncated).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from collections import Counter
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MODEL = "prompt-model"


class PromptServer:
    """Start it, point ``--base-url`` at ``base_url``, stop it."""

    def __init__(self, *, latency: float = 0.0, api_key: str | None = None) -> None:
        self.latency = latency
        self.api_key = api_key
        self.attempts: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ])

    @property
    def base_url(self) -> str:
        """The ``--base-url`` to give selfinstruct."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Forget every prompt seen (so first attempts fail again)."""
        with self._lock:
            self.attempts.clear()
            self.requests = 0

    def start(self) -> PromptServer:
        """Listen on a free port of 127.0.0.1."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="critical", lifespan="off", http="h11",
                                timeout_graceful_shutdown=1, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "prompt server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def _chat(self, request: Request) -> JSONResponse:
        if self.api_key is not None and request.headers.get("authorization") != \
                f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "invalid api key", "code": "401"}},
                                status_code=401)
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        with self._lock:
            self.attempts[prompt] += 1
            self.requests += 1
            attempt = self.attempts[prompt]
        if self.latency:
            import asyncio

            await asyncio.sleep(self.latency)
        crc = zlib.crc32(prompt.encode())
        if crc % 11 == 0 and attempt == 1:
            return JSONResponse({"error": {"message": "overloaded", "code": "503"}},
                                status_code=503)
        text, reasoning, finish = answer(prompt, crc)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        return JSONResponse({
            "id": "cmpl-prompt", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 12,
                      "total_tokens": len(prompt.split()) + 12},
        })


def answer(prompt: str, crc: int) -> tuple[str, str | None, str]:
    """``(text, reasoning, finish_reason)`` for ``prompt``."""
    if "Answer with one JSON object" in prompt:
        if crc % 4 == 0 and "could not be read" not in prompt:
            return "I think this response is rather good.", None, "stop"
        overall = 1 + crc % 5
        scores = {name: overall for name in
                  ("accuracy", "completeness", "relevance", "harmlessness", "format")}
        return json.dumps({**scores, "overall": overall, "reason": f"r{crc % 13}"}), None, "stop"
    if "as a JSON list" in prompt:
        if crc % 5 == 0:
            return "Sorry, I cannot answer that.", None, "stop"
        items = [{"q": f"question {crc % 101}-{n}", "a": f"answer {crc % 103}-{n}"}
                 for n in range(2)]
        return f"```json\n{json.dumps(items)}\n```", "Two pairs.", "stop"
    if prompt.startswith("You are writing worked examples"):
        blocks = [f"Example {n}\nInput: input {crc % 89} {n}\nOutput: output {crc % 97} {n}"
                  for n in range(1, 4)]
        return "\n".join(blocks), None, "stop"
    if prompt.startswith("You are writing examples for classification tasks"):
        return ("Class labels: Alpha, Beta\nClass label: Alpha\nInput: first case.\n"
                "Class label: Beta\nInput: second case."), None, "stop"
    finish = "length" if crc % 7 == 0 else "stop"
    return f"The answer is {crc % 1000}.", f"Think about {crc % 31} first, then answer.", finish
