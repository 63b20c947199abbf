"""Client CPU per request of ways to call an OpenAI-compatible server, side by side.

    python benchmarks/bench_client.py [--at C=LATENCY ...] [--requests N]

The figures behind the client-CPU section of BENCHMARKS.md: the same ``Runner``
keeps C requests in flight against ``fake_llm_server.py`` (a separate process) with a
no-op handler, once per variant, and ``time.process_time()`` of this process over the
requests is divided by their number. Variants:

* ``OpenAIBackend``: what the pipeline uses: the SDK's ``client.post(...,
  cast_to=httpx2.Response)`` and ``json.loads`` (the SDK's retries, auth and timeouts
  without its request transform and response models), one connection pool (one SDK
  client) per 8 requests in flight, used in turn;
* ``OpenAIBackend, one pool``: the same with a single client, since httpcore checks
  every idle connection of its pool whenever a request starts or ends;
* ``SDK create, one pool (before)``: ``chat.completions.create`` and the SDK's typed
  response, as ``OpenAIBackend`` did until the change;
* ``plain httpx2, one pool``: one ``httpx2.AsyncClient``, no SDK at all (a floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import httpx2  # noqa: E402
import openai  # noqa: E402
from bench_throughput import FakeServer, parse_pairs  # noqa: E402

from selfinstruct.llm.base import Backend, Completion, Request  # noqa: E402
from selfinstruct.llm.openai import OpenAIBackend  # noqa: E402
from selfinstruct.stages.runner import Runner  # noqa: E402

MODEL = "fake-model"


def _body(request: Request) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": request.prompt}],
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "top_p": request.top_p}


def _completion(raw: bytes) -> Completion:
    choice = json.loads(raw)["choices"][0]
    return Completion(text=choice["message"]["content"], finish_reason=choice["finish_reason"])


class SdkCreateBackend:
    """What ``OpenAIBackend`` did before: ``chat.completions.create`` and the SDK's
    response models."""

    name = "sdk-create"

    def __init__(self, base_url: str) -> None:
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY")

    async def complete(self, request: Request) -> Completion:
        response = await self._client.chat.completions.create(**_body(request))
        choice = response.choices[0]
        return Completion(text=choice.message.content or "", finish_reason=choice.finish_reason)

    async def aclose(self) -> None:
        await self._client.close()


class HttpxBackend:
    """No SDK: one httpx2 client, JSON in and out."""

    name = "httpx2"

    def __init__(self, base_url: str) -> None:
        self._client = httpx2.AsyncClient(base_url=base_url, timeout=600)

    async def complete(self, request: Request) -> Completion:
        response = await self._client.post("/chat/completions", json=_body(request))
        return _completion(response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def variants(base_url: str, concurrency: int) -> dict[str, Callable[[], Backend]]:
    def ours(concurrency: int) -> Backend:
        return OpenAIBackend(base_url=base_url, model=MODEL, api_key=None,
                             concurrency=concurrency)

    return {
        "OpenAIBackend": lambda: ours(concurrency),
        "OpenAIBackend, one pool": lambda: ours(1),
        "SDK create, one pool (before)": lambda: SdkCreateBackend(base_url),  # type: ignore[return-value]
        "plain httpx2, one pool": lambda: HttpxBackend(base_url),  # type: ignore[return-value]
    }


async def cpu_per_request(backend: Backend, concurrency: int, requests: int,
                          prompt: str) -> float:
    """Milliseconds of this process's CPU per request, after one warm-up round."""
    runner: Runner[int] = Runner(backend, concurrency=concurrency,
                                 max_consecutive_failures=20, on_failure=print)
    left = [concurrency]

    def source() -> tuple[int, Request] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        return 0, Request(prompt=prompt)

    await runner.run(source, lambda job, completion: False, asyncio.Event())
    left[0] = requests
    start = time.process_time()
    await runner.run(source, lambda job, completion: False, asyncio.Event())
    used = time.process_time() - start
    await backend.aclose()
    return 1000 * used / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", nargs="+", default=["64=0.5", "256=2"], metavar="C=LATENCY")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    template = (HERE.parent / "prompts" / "en" / "self_instruct.txt").read_text()
    tasks = "\n".join(f"Task {i}: Write a short note about topic number {i}." for i in range(1, 9))
    prompt = template.replace("{tasks}", tasks).replace("{next}", "9")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        server = FakeServer(Path(tmp))
        try:
            for concurrency, latency in parse_pairs(args.at):
                server.reset(latency)
                for name, make in variants(server.base_url, concurrency).items():
                    cost = asyncio.run(cpu_per_request(make(), concurrency, args.requests,
                                                       prompt))
                    print(f"C={concurrency} latency {latency}s  {name:30} {cost:.2f} ms CPU "
                          "per request", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
