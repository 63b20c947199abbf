"""Client CPU per streamed answer against CPU per whole answer, at the same concurrency.

    python benchmarks/bench_stream.py [--at C=LATENCY ...] [--writes W ...] [--requests N]

The figures behind the streaming section of BENCHMARKS.md. The same ``Runner`` keeps C
requests in flight against ``fake_llm_server.py`` (a separate process), once per variant,
and ``time.process_time()`` of this process over the requests is divided by their
number. A ``generate`` prompt gets 10-20 tasks back (about 250 words), streamed as one
SSE chunk per word in W writes spread over the latency: W=1 is every chunk in one read,
W=64 a server that streams in bursts, and W = the chunk count is one network read per
token, the most a client can be made to do. Variants:

* ``OpenAIBackend --stream off``: whole answers, the default;
* ``OpenAIBackend --stream on``: streamed, read whole in the transport, then assembled;
* ``SDK create(stream=True)``: ``chat.completions.create(stream=True, stream_options=...)``
  and the SDK's typed chunks, one pool: what the backend would cost on the SDK's own
  streaming path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import openai  # noqa: E402
from bench_throughput import FakeServer, parse_pairs  # noqa: E402

from selfinstruct.llm.base import Backend, Completion, Request  # noqa: E402
from selfinstruct.llm.openai import OpenAIBackend  # noqa: E402
from selfinstruct.stages.runner import Runner  # noqa: E402

MODEL = "fake-model"


class SdkStreamBackend:
    """The SDK's own streaming: typed chunks, joined."""

    name = "sdk-stream"

    def __init__(self, base_url: str) -> None:
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY")

    async def complete(self, request: Request) -> Completion:
        stream = await self._client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": request.prompt}],
            max_tokens=request.max_tokens, stream=True,
            stream_options={"include_usage": True})
        parts: list[str] = []
        finish = None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
        return Completion(text="".join(parts), finish_reason=finish)

    async def aclose(self) -> None:
        await self._client.close()


def variants(base_url: str, concurrency: int) -> dict[str, Callable[[], Backend]]:
    def ours(stream: str) -> Backend:
        return OpenAIBackend(base_url=base_url, model=MODEL, api_key=None,
                             concurrency=concurrency, stream=stream)  # type: ignore[arg-type]

    return {
        "OpenAIBackend --stream off": lambda: ours("off"),
        "OpenAIBackend --stream on": lambda: ours("on"),
        "SDK create(stream=True), one pool": lambda: SdkStreamBackend(base_url),  # type: ignore[return-value]
    }


async def cpu_per_answer(backend: Backend, concurrency: int, requests: int,
                         prompt: str) -> tuple[float, float]:
    """(ms of this process's CPU per answer, mean answer length in characters), after one
    warm-up round."""
    runner: Runner[int] = Runner(backend, concurrency=concurrency,
                                 max_consecutive_failures=20, on_failure=print)
    left = [concurrency]
    lengths: list[int] = []

    def source() -> tuple[int, Request] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        return 0, Request(prompt=prompt)

    def handle(job: int, completion: Completion) -> bool:
        lengths.append(len(completion.text))
        return False

    await runner.run(source, handle, asyncio.Event())
    left[0] = requests
    lengths.clear()
    start = time.process_time()
    await runner.run(source, handle, asyncio.Event())
    used = time.process_time() - start
    await backend.aclose()
    assert len(lengths) == requests, f"{len(lengths)} of {requests} answered"
    return 1000 * used / requests, sum(lengths) / len(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", nargs="+", default=["64=0.5"], metavar="C=LATENCY")
    parser.add_argument("--writes", nargs="+", type=int, default=[1, 16, 64, 1000],
                        help="writes per streamed answer (capped at its chunk count)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--sdk", action="store_true", help="also time the SDK's streaming")
    args = parser.parse_args()
    template = (HERE.parent / "prompts" / "en" / "self_instruct.txt").read_text()
    tasks = "\n".join(f"Task {i}: Write a short note about topic number {i}." for i in range(1, 9))
    prompt = template.replace("{tasks}", tasks).replace("{next}", "9")
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        server = FakeServer(Path(tmp))
        try:
            for concurrency, latency in parse_pairs(args.at):
                for writes in [None, *args.writes]:
                    server.reset(latency, writes)
                    for name, make in variants(server.base_url, concurrency).items():
                        streamed = "stream off" not in name
                        if streamed != (writes is not None) or (
                                name.startswith("SDK") and not args.sdk):
                            continue
                        cost, length = asyncio.run(cpu_per_answer(
                            make(), concurrency, args.requests, prompt))
                        shape = f"{writes} writes" if writes else "whole"
                        print(f"C={concurrency} latency {latency}s {shape:>12}  {name:34} "
                              f"{cost:.2f} ms CPU per answer ({length:.0f} chars)", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
