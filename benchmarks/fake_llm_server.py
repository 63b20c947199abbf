"""A fake OpenAI-compatible server with a fixed latency per request, for throughput runs.

    python benchmarks/fake_llm_server.py --port 0 --latency 0.2 [--port-file PATH]

Why a fake: the throughput goal ("keep every GPU busy") is about what the client does
between answers, so the model must cost nothing but time. Every request is answered
after exactly ``latency`` seconds (a timer on the event loop, so thousands can wait at
once), with a body shaped like a real model's answer to that prompt:

* a ``generate`` prompt (``... Task N:``): 10-20 new tasks as ``Task N: ...`` lines,
  drawn from a deterministic stream of real English instructions and recombinations of
  them, so most survive the ROUGE-L filter like a good model's would;
* a ``classify`` prompt: ``Yes`` or ``No``;
* an ``instances`` prompt: ``Example k`` / ``Input:`` / ``Output:`` blocks (input-first)
  or ``Class labels:`` / ``Class label:`` / ``Input:`` blocks (output-first);
* a ``distill`` prompt (``Answer as a JSON list ...``): a short trace, then a fenced
  JSON list of three ``{"q": ..., "a": ...}`` pairs;
* a ``dialogue`` script prompt (``Write a realistic conversation ...``): the JSON
  ``{"messages": [...]}`` of the exchanges it asks for;
* a chat turn (a request with a system message or earlier turns, as ``dialogue --mode
  self-chat`` sends): one or two sentences;
* anything else (``reason``): a ``<think>...</think>`` trace of a few hundred words and
  an answer.

Every answer carries ``usage``. A request with ``"stream": true`` gets the same answer
as server-sent events, one ``delta`` per word (about a token each) plus the finish and
usage chunks, sent in ``stream_writes`` writes spread evenly over the latency (set with
the reset endpoint), the way a server streams tokens as it makes them. The server is a
minimal HTTP/1.1 keep-alive server on raw asyncio (no framework), so its own CPU per
request stays small: it shares the two cores of the benchmark machine with the client
being measured, and runs in its own process so its CPU never counts as the client's.

Control endpoints for the benchmark driver:

* ``POST /_bench/reset`` with ``{"latency": seconds, "stream_writes": n}``: set the
  latency (and the writes per streamed answer), forget the log;
* ``GET /_bench/count``: how many requests arrived and were answered;
* ``GET /_bench/log``: ``{"arrivals": [...], "completions": [...], "late": [...]}``, the
  ``time.monotonic()`` of each request's arrival and answer (CLOCK_MONOTONIC is shared
  by all processes, so the driver can line them up with its own clock) and how late
  each answer went out against its timer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import time
import zlib
from pathlib import Path
from typing import Any

#: ``shared/`` sits beside the repository checkout.
DEFAULT_DATA = Path(os.environ.get(
    "SELFINSTRUCT_BENCH_DATA",
    Path(__file__).resolve().parents[2] / "shared" / "bench" / "en_texts.jsonl",
))

_NEXT_TASK = re.compile(r"Task (\d+):\s*$")
_EXCHANGES = re.compile(r"exactly (\d+) exchanges")
_INSTRUCTION_LINE = re.compile(r"Task: (.*)\n[^\n]*$")


def load_texts(path: Path = DEFAULT_DATA) -> list[str]:
    """The bench texts (20,333 real English instructions), in file order."""
    with path.open(encoding="utf-8") as fp:
        return [json.loads(line)["instruction"] for line in fp if line.strip()]


def recombined(texts: list[str], i: int, mix: int = 7919, offset: int = 13) -> str:
    """Text ``i`` of an unbounded deterministic stream built from ``texts``.

    ``i < len(texts)`` is the text itself; beyond, the first half of the words of text
    ``i mod M`` and the second half of text ``(i * mix + offset) mod M``. The pool
    pre-fill uses the defaults (as ``bench_similarity.py`` does); the server's task
    stream uses other constants, so its tasks are new to a pre-filled pool.
    """
    size = len(texts)
    if i < size:
        return texts[i]
    first = texts[i % size].split()
    second = texts[(i * mix + offset) % size].split()
    return " ".join(first[: len(first) // 2] + second[len(second) // 2:])


def _words(text: str) -> int:
    return len(text.split())


def _tokens(text: str) -> int:
    """Rough token count (about 1.3 tokens per English word)."""
    return max(1, round(_words(text) * 1.3))


class FakeAnswers:
    """Realistic answer texts per prompt kind; deterministic given the call order."""

    #: Stream constants for generated tasks (see :func:`recombined`).
    TASK_MIX = 104729
    TASK_OFFSET = 4241

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._next_task = 0
        self._calls = 0

    def kind(self, prompt: str) -> str:
        """Which stage wrote ``prompt``: generate, classify, instances or reason."""
        tail = prompt[-300:]
        if _NEXT_TASK.search(tail):
            return "generate"
        if tail.rstrip().endswith("Is it classification?"):
            return "classify"
        head = prompt[:200]
        if head.startswith("Answer as a JSON list"):
            return "distill"
        if head.startswith("You are writing worked examples"):
            return "instances"
        if head.startswith("You are writing examples for classification tasks"):
            return "instances_classification"
        if head.startswith("Write a realistic conversation"):
            return "dialogue"
        return "reason"

    def answer(self, prompt: str) -> tuple[str, str]:
        """``(text, kind)`` for one prompt."""
        self._calls += 1
        kind = self.kind(prompt)
        if kind == "generate":
            match = _NEXT_TASK.search(prompt[-300:])
            return self.tasks(int(match.group(1)) if match else 1), kind
        if kind == "classify":
            return ("Yes" if zlib.crc32(prompt[-200:].encode()) % 4 == 0 else "No"), kind
        if kind == "instances":
            return self.input_first(), kind
        if kind == "instances_classification":
            return self.output_first(), kind
        if kind == "distill":
            return self.qa_pairs(), kind
        if kind == "dialogue":
            match = _EXCHANGES.search(prompt)
            return self.script(int(match.group(1)) if match else 4), kind
        return self.reasoning(prompt), kind

    def chat_turn(self) -> str:
        """One turn of a conversation: a sentence or two."""
        self._calls += 1
        return f"{self._pick(3)} {self._pick(4)}"

    def script(self, exchanges: int) -> str:
        """A whole conversation of ``exchanges`` exchanges as the dialogue schema's JSON."""
        messages = [{"role": role, "content": self._pick(2 * k + (role == "assistant"))}
                    for k in range(exchanges) for role in ("user", "assistant")]
        return json.dumps({"messages": messages}, ensure_ascii=False)

    def _pick(self, salt: int) -> str:
        return self.texts[(self._calls * 7 + salt * 131) % len(self.texts)]

    def tasks(self, first_number: int) -> str:
        """A continued numbered list of 10-20 new tasks (about 15 on average)."""
        count = 10 + (self._calls * 7) % 11
        lines = []
        for k in range(count):
            stream = len(self.texts) + self._next_task
            self._next_task += 1
            text = recombined(self.texts, stream, self.TASK_MIX, self.TASK_OFFSET)
            lines.append(f"Task {first_number + k}: {text}")
        return "\n".join(lines)

    def input_first(self, count: int = 5) -> str:
        """``Example k`` blocks with an invented input and its output."""
        blocks = []
        for k in range(count):
            blocks.append(f"Example {k + 1}\nInput: {self._pick(2 * k)}\n"
                          f"Output: {self._pick(2 * k + 1)} {self._pick(2 * k + 11)}")
        return "\n".join(blocks)

    def output_first(self, count: int = 5) -> str:
        """Labels first, then one input per label."""
        labels = ["Positive", "Negative", "Neutral"]
        lines = [f"Class labels: {', '.join(labels)}"]
        for k in range(count):
            lines.append(f"Class label: {labels[k % len(labels)]}\nInput: {self._pick(k)}")
        return "\n".join(lines)

    def qa_pairs(self, count: int = 3) -> str:
        """A short trace, then ``count`` question/answer pairs as a fenced JSON list."""
        pairs = [{"q": self._pick(2 * k), "a": self._pick(2 * k + 1)} for k in range(count)]
        listing = json.dumps(pairs, ensure_ascii=False, indent=1)
        return f"<think>\n{self._pick(50)}\n</think>\n\n```json\n{listing}\n```"

    def reasoning(self, prompt: str) -> str:
        """A ``<think>`` trace of about 300-500 words, then a short answer."""
        sentences = [self._pick(k) for k in range(20 + self._calls % 12)]
        thought = " ".join(sentences)
        return f"<think>\nLet me work through this.\n{thought}\n</think>\n\n{self._pick(99)}"


def _body(request: dict[str, Any], answers: FakeAnswers, model: str) -> tuple[bytes, str]:
    """The JSON body answering one chat or completions request."""
    created = int(time.time())
    if "messages" in request:
        messages = request["messages"]
        prompt = str(messages[-1].get("content", ""))
        text, kind = answers.answer(prompt)
        if kind == "reason" and (len(messages) > 1 or messages[0].get("role") == "system"):
            text, kind = answers.chat_turn(), "chat"
        choices: list[dict[str, Any]] = [{
            "index": 0, "finish_reason": "stop", "logprobs": None,
            "message": {"role": "assistant", "content": text},
        }]
        prompts = [prompt]
        obj = "chat.completion"
    else:
        raw = request.get("prompt", "")
        prompts = raw if isinstance(raw, list) else [raw]
        choices = []
        kind = "completions"
        for index, prompt in enumerate(prompts):
            text, kind = answers.answer(str(prompt))
            choices.append({"index": index, "text": text, "finish_reason": "stop",
                            "logprobs": None})
        obj = "text_completion"
    prompt_tokens = sum(_tokens(str(p)) for p in prompts)
    completion_tokens = sum(
        _tokens(c["message"]["content"] if "message" in c else c["text"]) for c in choices
    )
    document = {
        "id": f"fake-{created}-{answers._calls}", "object": obj, "created": created,
        "model": request.get("model") or model, "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
    return json.dumps(document, ensure_ascii=False).encode("utf-8"), kind


class ServerState:
    """Latency, the answer generator and the request log shared by all connections."""

    def __init__(self, answers: FakeAnswers, latency: float, model: str) -> None:
        self.answers = answers
        self.latency = latency
        self.model = model
        #: Writes per streamed answer, spread evenly over the latency.
        self.stream_writes = 16
        self.arrivals: list[float] = []
        self.completions: list[float] = []
        self.late: list[float] = []
        #: Bumped by every reset, so answers to requests of an earlier run (still on
        #: their timers when the next run starts) stay out of the new log.
        self.epoch = 0

    def reset(self, latency: float | None, stream_writes: int | None = None) -> None:
        if latency is not None:
            self.latency = latency
        if stream_writes is not None:
            self.stream_writes = max(1, stream_writes)
        self.epoch += 1
        self.arrivals.clear()
        self.completions.clear()
        self.late.clear()


def _events(document: dict[str, Any]) -> list[bytes]:
    """The SSE events (with their chunked-encoding frames) of a streamed ``document``:
    a role chunk, one delta per word, the finish chunk, the usage chunk and ``[DONE]``."""
    chat = document["object"] == "chat.completion"
    choice = document["choices"][0]
    text = choice["message"]["content"] if chat else choice["text"]
    head = (f'{{"id":"{document["id"]}","object":"'
            f'{"chat.completion.chunk" if chat else "text_completion"}","created":'
            f'{document["created"]},"model":{json.dumps(document["model"])},"choices":')

    def event(delta: str, finish: str = "null") -> str:
        body = (f'{{"index":0,"delta":{{"content":{delta}}},"finish_reason":{finish}}}' if chat
                else f'{{"index":0,"text":{delta},"finish_reason":{finish}}}')
        return f"data: {head}[{body}]}}\n\n"

    words = text.split(" ")
    pieces = [word if at == 0 else f" {word}" for at, word in enumerate(words)]
    events = [event(json.dumps(piece, ensure_ascii=False)) for piece in pieces]
    events.append(event('""', '"stop"'))
    events.append(f'data: {head}[],"usage":{json.dumps(document["usage"])}}}\n\n'
                  "data: [DONE]\n\n")
    return [e.encode("utf-8") for e in events]


def _chunked(data: bytes) -> bytes:
    """``data`` as one frame of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: str, body: bytes, keep_alive: bool = True) -> bytes:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n")
    if not keep_alive:
        head += "connection: close\r\n"
    return head.encode("ascii") + b"\r\n" + body


class FakeHTTP(asyncio.Protocol):
    """One client connection: HTTP/1.1 requests in, timed JSON answers out."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            keep_alive = headers.get("connection", "").lower() != "close"
            self.handle(method, target.split("?", 1)[0], body, keep_alive)

    def _send(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()

    def handle(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        state = self.state
        if path.endswith(("/chat/completions", "/completions")) and method == "POST":
            arrived = time.monotonic()
            state.arrivals.append(arrived)
            request = json.loads(body)
            payload, _ = _body(request, state.answers, state.model)
            if request.get("stream"):
                self._stream(json.loads(payload), keep_alive, arrived)
                return
            data = _response("200 OK", payload, keep_alive)
            self.loop.call_at(self.loop.time() + state.latency, self._answer, data,
                              keep_alive, arrived + state.latency, state.epoch)
            return
        if path == "/_bench/reset" and method == "POST":
            settings = json.loads(body or b"{}")
            state.reset(settings.get("latency"), settings.get("stream_writes"))
            payload = json.dumps({"latency": state.latency}).encode()
        elif path == "/_bench/count":
            payload = json.dumps({"arrivals": len(state.arrivals),
                                  "completions": len(state.completions)}).encode()
        elif path == "/_bench/log":
            payload = json.dumps({"arrivals": state.arrivals, "completions": state.completions,
                                  "late": state.late, "latency": state.latency}).encode()
        elif path.endswith("/models"):
            payload = json.dumps({"object": "list", "data": [
                {"id": state.model, "object": "model", "owned_by": "bench"}]}).encode()
        else:
            self._send(_response("404 Not Found", b'{"error": "not found"}', keep_alive),
                       keep_alive)
            return
        self._send(_response("200 OK", payload, keep_alive), keep_alive)

    def _stream(self, document: dict[str, Any], keep_alive: bool, arrived: float) -> None:
        """Headers now, then the events in ``stream_writes`` writes over the latency."""
        state = self.state
        self._send(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                   b"transfer-encoding: chunked\r\n\r\n", True)
        events = _events(document)
        writes = min(state.stream_writes, len(events))
        start = self.loop.time()
        for number in range(writes):
            group = b"".join(events[number * len(events) // writes:
                                    (number + 1) * len(events) // writes])
            frame = _chunked(group)
            when = start + state.latency * (number + 1) / writes
            if number == writes - 1:
                self.loop.call_at(when, self._answer, frame + b"0\r\n\r\n", keep_alive,
                                  arrived + state.latency, state.epoch)
            else:
                self.loop.call_at(when, self._send, frame, True)

    def _answer(self, data: bytes, keep_alive: bool, due: float, epoch: int) -> None:
        if epoch == self.state.epoch:
            now = time.monotonic()
            self.state.completions.append(now)
            self.state.late.append(now - due)
        self._send(data, keep_alive)


async def serve(port: int, latency: float, model: str, port_file: Path | None) -> None:
    """Serve until SIGTERM / SIGINT."""
    state = ServerState(FakeAnswers(load_texts()), latency, model)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeHTTP(state), "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        tmp.replace(port_file)
    print(f"fake LLM server on http://127.0.0.1:{bound}/v1, latency {latency}s", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency, args.model, args.port_file))


if __name__ == "__main__":
    main()
