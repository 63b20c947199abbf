"""Streamed answers through the OpenAI-compatible backend (a mock transport): assembled
exactly as the whole answer, asked for when a server refuses to answer whole, and read
with deadlines on the first chunk and between chunks (a local socket server)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest

from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.llm.streaming import assemble
from tests.helpers import chat_body
from tests.reliability.faultserver import NEEDS_STREAM, stream_events

URL = "http://127.0.0.1:9/v1"
Handler = Callable[[httpx2.Request], httpx2.Response]


def sse(payload: dict, *, chat: bool = True, usage: bool = True) -> bytes:
    """``payload`` (a whole answer) as the server-sent events a streaming server sends."""
    events = stream_events(payload, chat=chat, usage=usage)
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def streamed(body: bytes) -> httpx2.Response:
    return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


def backend(handler: Handler, **options: object) -> OpenAIBackend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(base_url=URL, model="m", api_key=None, max_retries=0,
                         http_client=client, **options)  # type: ignore[arg-type]


def complete(b: OpenAIBackend, *requests: Request) -> list[Completion]:
    async def send() -> list[Completion]:
        return [await b.complete(request) for request in requests]

    return asyncio.run(send())


ANSWER = chat_body("The answer is 42, and here is why: six times seven.",
                   reasoning_content="Let me think. Six sevens make forty-two.")


def test_a_streamed_answer_is_the_whole_answer():
    bodies: list[dict] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return streamed(sse(ANSWER)) if body.get("stream") else httpx2.Response(200, json=ANSWER)

    [whole] = complete(backend(handler, stream="off"), Request(prompt="q"))
    [pieces] = complete(backend(handler, stream="on"), Request(prompt="q"))
    assert pieces == whole
    assert pieces.reasoning == "Let me think. Six sevens make forty-two."
    assert (pieces.usage.prompt_tokens, pieces.usage.completion_tokens) == (11, 7)
    assert pieces.finish_reason == "stop" and pieces.model == "served-model"
    assert "stream" not in bodies[0]
    assert bodies[1]["stream"] is True
    assert bodies[1]["stream_options"] == {"include_usage": True}


def test_the_completions_api_streams_too():
    whole = {"model": "base", "usage": {"prompt_tokens": 3, "completion_tokens": 5},
             "choices": [{"index": 0, "text": "Task 2: Write a haiku about rain.",
                          "finish_reason": "length"}], "id": "c", "created": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/completions"
        assert json.loads(request.content)["stream"] is True
        return streamed(sse(whole, chat=False))

    [answer] = complete(backend(handler, api="completions", stream="on"), Request(prompt="p"))
    assert answer == Completion(text="Task 2: Write a haiku about rain.",
                                finish_reason="length", usage=answer.usage, model="base")
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 5)


def test_assembling_reads_sse_as_written_not_as_one_server_writes_it():
    """Comments, CRLF line ends, ``reasoning`` deltas (not ``reasoning_content``), a
    data field without the space, and chunks after ``[DONE]`` that must be ignored."""
    body = (b": ping\r\n\r\n"
            b'data:{"model":"x","choices":[{"index":0,"delta":{"reasoning":"a"}}]}\r\n\r\n'
            b'event: message\r\ndata: {"choices":[{"index":0,"delta":{"content":"b"},'
            b'"finish_reason":"stop"}]}\r\n\r\n'
            b"data: [DONE]\r\n\r\n"
            b'data: {"choices":[{"index":0,"delta":{"content":"late"}}]}\r\n\r\n')
    response = assemble(body, chat=True)
    assert response == {"model": "x", "usage": None, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "b", "reasoning": "a"},
         "finish_reason": "stop"}]}


@pytest.mark.parametrize(("body", "error"), [
    (b'data: {"error": {"message": "overloaded"}}\n\n', "the server broke off the stream: "
     "overloaded"),
    (b"data: {not json\n\n", "malformed stream: a chunk is not JSON"),
    (b'data: {"choices": "x"}\n\n', "malformed stream: choices are"),
    (b"data: [DONE]\n\n", "the server answered with no choices"),
])
def test_a_broken_stream_is_a_retryable_failure(body: bytes, error: str):
    with pytest.raises(BackendError, match=error) as raised:
        complete(backend(lambda request: streamed(body), stream="on"), Request(prompt="q"))
    assert raised.value.retryable


def test_a_server_that_answers_whole_when_asked_to_stream_is_read_as_usual():
    [answer] = complete(backend(lambda request: httpx2.Response(200, json=ANSWER),
                                stream="on"), Request(prompt="q"))
    assert answer.text == ANSWER["choices"][0]["message"]["content"]


def refuses_whole(seen: list[dict], message: str = NEEDS_STREAM) -> Handler:
    """DashScope: a thinking model answers streamed requests only."""
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        if not body.get("stream"):
            return httpx2.Response(400, json={"code": "InvalidParameter", "message": message})
        return streamed(sse(ANSWER))

    return handler


def test_auto_streams_once_a_server_refuses_to_answer_whole_and_keeps_streaming(caplog):
    seen: list[dict] = []
    with caplog.at_level(logging.INFO, logger="selfinstruct"):
        answers = complete(backend(refuses_whole(seen)), *[Request(prompt="q")] * 3)
    assert [a.reasoning for a in answers] == [ANSWER["choices"][0]["message"]
                                              ["reasoning_content"]] * 3
    assert [bool(body.get("stream")) for body in seen] == [False, True, True, True]
    notes = [r for r in caplog.records if "answers only streamed requests" in r.message]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "enable_thinking must be set to false for non-streaming calls" in notes[0].message


@pytest.mark.parametrize("message", [
    "This model only supports stream mode, please enable the stream parameter.",
    "stream must be set to true",
    "Non-streaming requests are not supported for this model",
])
def test_other_words_for_streaming_only_are_understood(message: str):
    seen: list[dict] = []
    complete(backend(refuses_whole(seen, message)), Request(prompt="q"))
    assert [bool(body.get("stream")) for body in seen] == [False, True]


def test_a_400_that_does_not_name_streaming_is_not_resent():
    seen: list[dict] = []
    with pytest.raises(BackendError, match="upstream model failed") as raised:
        complete(backend(refuses_whole(seen, "upstream model failed: bad top_p")),
                 Request(prompt="q"))
    assert not raised.value.retryable
    assert len(seen) == 1


def test_stream_off_stops_with_what_to_do():
    seen: list[dict] = []
    with pytest.raises(BackendError, match="use --stream on, or auto") as raised:
        complete(backend(refuses_whole(seen), stream="off"), Request(prompt="q"))
    assert not raised.value.retryable
    assert len(seen) == 1


def test_a_schema_request_is_streamed_in_its_shape_not_stripped_of_it():
    """The refusal is a 400, as a refused response_format is: it must not be read as one."""
    seen: list[dict] = []
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    complete(backend(refuses_whole(seen)), Request(prompt="q", schema=schema))
    assert [bool(body.get("stream")) for body in seen] == [False, True]
    assert seen[1]["response_format"]["type"] == "json_schema"


def test_a_server_without_stream_options_streams_without_usage(caplog):
    seen: list[dict] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        if "stream_options" in body:
            return httpx2.Response(400, json={"error": {"message": "unknown field "
                                                        "`stream_options`"}})
        return streamed(sse(ANSWER, usage=False))

    with caplog.at_level(logging.INFO, logger="selfinstruct"):
        answers = complete(backend(handler, stream="on"), *[Request(prompt="q")] * 2)
    assert [a.text for a in answers] == [ANSWER["choices"][0]["message"]["content"]] * 2
    assert answers[0].usage.completion_tokens == 0
    assert ["stream_options" in body for body in seen] == [True, False, False]
    assert caplog.text.count("does not take stream_options") == 1


# --- deadlines: a real socket, since a mock transport has no time between chunks -------


@pytest.fixture
def trickle() -> Iterator[Callable[[list[tuple[float, bytes]]], str]]:
    """A one-shot HTTP server on 127.0.0.1 that sends a 200 event stream as the given
    ``(pause, bytes)`` pieces (chunked), then holds the connection open."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def serve(pieces: list[tuple[float, bytes]]) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listeners.append(listener)

        def run() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                   b"transfer-encoding: chunked\r\n\r\n")
                for pause, data in pieces:
                    time.sleep(pause)
                    connection.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                time.sleep(3)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/v1"

    yield serve
    for listener in listeners:
        listener.close()


def chunk(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text.encode()


def timed_out(url: str, **pacing: float) -> tuple[str, float]:
    b = OpenAIBackend(base_url=url, model="m", api_key=None, max_retries=0, stream="on",
                      **pacing)  # type: ignore[arg-type]

    async def send() -> str:
        try:
            with pytest.raises(BackendError) as raised:
                await b.complete(Request(prompt="q"))
            return raised.value.message
        finally:
            await b.aclose()

    started = time.monotonic()
    message = asyncio.run(send())
    return message, time.monotonic() - started


def test_no_first_chunk_in_time_is_a_timeout(trickle):
    url = trickle([(0, b": keep-alive\n\n"), (0.2, b": keep-alive\n\n")])
    message, took = timed_out(url, first_token_timeout=0.4, idle_timeout=5.0)
    assert "the request timed out (the stream stalled: no first chunk within 0.4s)" in message
    assert took < 2


def test_a_stall_between_chunks_is_a_timeout_but_steady_chunks_are_not(trickle):
    steady = [(0.15, chunk(str(n))) for n in range(6)]  # 0.9s in all, 0.15s apart
    url = trickle([*steady, (2.0, chunk("late"))])
    message, took = timed_out(url, first_token_timeout=5.0, idle_timeout=0.4)
    assert "the stream stalled: no new chunk within 0.4s" in message
    assert 0.9 < took < 2.5
