"""The OpenAI-compatible backend through the real openai client and a mock transport."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable

import httpx2
import pytest

from selfinstruct.llm import openai as openai_backend
from selfinstruct.llm.base import BackendError, Completion, Request, ServerUnreachable
from selfinstruct.llm.openai import OpenAIBackend
from tests.helpers import chat_body

Handler = Callable[[httpx2.Request], httpx2.Response]


def backend(handler: Handler, api: str = "chat", max_retries: int = 2,
            api_key: str | None = "sk-test") -> OpenAIBackend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(
        base_url="http://127.0.0.1:9/v1", model="m", api_key=api_key, api=api,
        max_retries=max_retries, http_client=client,
    )


def complete(b: OpenAIBackend, request: Request | None = None):
    return asyncio.run(b.complete(request or Request(prompt="hi")))


def test_chat_request_and_response():
    seen: list[dict] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-test"
        return httpx2.Response(200, json=chat_body("Task 9: x", reasoning_content="hmm"))

    result = complete(backend(handler), Request(prompt="hi", max_tokens=50, seed=3))
    assert result.text == "Task 9: x"
    assert result.reasoning == "hmm"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 7)
    assert result.model == "served-model"
    body = seen[0]
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 50 and body["seed"] == 3 and body["model"] == "m"
    assert "stop" not in body


def test_completions_api():
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/completions"
        assert json.loads(request.content)["stop"] == ["\n\n"]
        return httpx2.Response(200, json={
            "id": "x", "object": "text_completion", "created": 0, "model": "base",
            "choices": [{"index": 0, "text": " more tasks", "finish_reason": "length",
                         "logprobs": None}],
        })

    result = complete(backend(handler, api="completions"), Request(prompt="p", stop=("\n\n",)))
    assert result.text == " more tasks"
    assert result.finish_reason == "length"


def test_rate_limit_is_retried_after_the_servers_delay():
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx2.Response(429, headers={"retry-after-ms": "10"},
                                   json={"error": {"message": "slow down"}})
        return httpx2.Response(200, json=chat_body("ok"))

    assert complete(backend(handler)).text == "ok"
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "HTTP 401: the API key was refused: invalid key (check --api-key or OPENAI_API_KEY)"),
        (404, "HTTP 404: the model or endpoint was not found: no such model (check --model 'm'"),
    ],
)
def test_fatal_statuses_are_not_retried(status, expected):
    calls = []
    message = "invalid key" if status == 401 else "no such model"

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(status, json={"error": {"message": message}})

    with pytest.raises(BackendError) as err:
        complete(backend(handler))
    assert expected in err.value.message
    assert not err.value.retryable
    assert "sk-test" not in err.value.message
    assert len(calls) == 1


def test_server_errors_exhaust_retries_then_fail_retryably():
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(503, headers={"retry-after-ms": "1"}, json={"error": "busy"})

    with pytest.raises(BackendError) as err:
        complete(backend(handler, max_retries=2))
    assert err.value.retryable
    assert err.value.message == "HTTP 503: busy"
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**chat_body("x"), "choices": []}, "the server answered with no choices"),
        ({**chat_body("x"), "choices": ["x"]}, "malformed response: choices are"),
        ({**chat_body("x"), "choices": [{"message": "x"}]}, "a choice without a message"),
        ([chat_body("x")], "malformed response: .* is not an object"),
    ],
)
def test_empty_answers_are_retryable_failures(body, message):
    with pytest.raises(BackendError, match=message) as err:
        complete(backend(lambda request: httpx2.Response(200, json=body)))
    assert err.value.retryable


def test_odd_usage_and_model_fields_fall_back_to_defaults():
    body = {**chat_body("ok"), "usage": {"prompt_tokens": None, "completion_tokens": "7"},
            "model": None}
    result = complete(backend(lambda request: httpx2.Response(200, json=body)))
    assert (result.text, result.model) == ("ok", "m")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (0, 0)


def test_unreachable_server():
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    with pytest.raises(BackendError, match=r"cannot reach http://127.0.0.1:9/v1") as err:
        complete(backend(handler, max_retries=0))
    assert err.value.retryable


def test_requests_take_turns_over_one_connection_pool_per_8_slots(monkeypatch):
    """At C=17 three pools (clients) share the requests in turn, none idle."""
    served: list[int] = []

    def pool(number: int) -> httpx2.AsyncClient:
        def handler(request: httpx2.Request) -> httpx2.Response:
            served.append(number)
            return httpx2.Response(200, json=chat_body("Task 9: x"))

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))

    made = iter(range(10))
    monkeypatch.setattr(openai_backend, "_DeadlineClient",
                        lambda *args, **kwargs: pool(next(made)))
    b = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key=None,
                      concurrency=17)

    async def burst() -> list[Completion]:
        try:
            return await asyncio.gather(*(b.complete(Request(prompt="hi")) for _ in range(9)))
        finally:
            await b.aclose()

    assert [c.text for c in asyncio.run(burst())] == ["Task 9: x"] * 9
    assert sorted(served) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    single = OpenAIBackend(base_url=None, model="m", api_key=None, concurrency=8)
    assert len(single._clients) == 1


# --- the check before the first request: GET /models ---------------------------------

MODELS_URL = "http://127.0.0.1:9/v1"
UNREACHABLE = "(check that the server is running and that --base-url is right)"


def model_list(*ids: str, **extra: object) -> dict:
    return {"object": "list", "data": [{"id": i, "object": "model"} for i in ids], **extra}


def check(b: OpenAIBackend) -> None:
    asyncio.run(b.check())


def counted(handler: Handler) -> tuple[Handler, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []

    def counting(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return handler(request)

    return counting, seen


def test_check_passes_when_the_server_lists_the_model():
    handler, seen = counted(lambda request: httpx2.Response(200, json=model_list("x", "m")))
    check(backend(handler))
    [request] = seen
    assert (request.method, str(request.url)) == ("GET", f"{MODELS_URL}/models")
    assert request.headers["authorization"] == "Bearer sk-test"


def test_check_names_the_model_and_up_to_ten_served_ones():
    served = [f"model-{i}" for i in range(12)]
    handler, seen = counted(lambda request: httpx2.Response(200, json=model_list(*served)))
    with pytest.raises(BackendError) as err:
        check(backend(handler))
    shown = ", ".join(f"'model-{i}'" for i in range(10))
    assert err.value.message == (
        f"{MODELS_URL} does not serve model 'm'; it serves {shown} and 2 more (check --model)")
    assert not err.value.retryable
    assert len(seen) == 1


@pytest.mark.parametrize("listed", ["m:latest", "models/m"])
def test_check_accepts_the_names_servers_resolve(listed):
    """Ollama answers to ``m`` for ``m:latest``; Gemini lists ``models/m``."""
    check(backend(lambda request: httpx2.Response(200, json=model_list("other", listed))))


@pytest.mark.parametrize(
    ("error", "detail"),
    [(httpx2.ConnectError("[Errno 111] Connection refused"), "[Errno 111] Connection refused"),
     (httpx2.ConnectError("[Errno -2] Name or service not known"),
      "[Errno -2] Name or service not known"),
     (httpx2.ConnectTimeout("timed out"), "no connection within 3s"),
     (httpx2.RemoteProtocolError("Server disconnected without sending a response."),
      "Server disconnected without sending a response.")],
)
def test_check_reports_a_server_that_cannot_be_reached(error, detail):
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise error

    handler, seen = counted(handler)
    with pytest.raises(ServerUnreachable) as err:
        check(backend(handler, max_retries=5))
    assert err.value.message == f"cannot reach {MODELS_URL}: {detail} {UNREACHABLE}"
    assert (err.value.url, err.value.detail) == (MODELS_URL, detail)
    assert len(seen) == 2  # one quick retry, not the client's own five


def test_check_retries_once_quickly():
    answers = iter([httpx2.ConnectError("refused"), httpx2.Response(200, json=model_list("m"))])

    def handler(request: httpx2.Request) -> httpx2.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    started = time.monotonic()
    check(backend(handler))
    assert time.monotonic() - started < 2


def test_check_goes_on_past_a_server_that_takes_connections_but_does_not_answer(
        monkeypatch, caplog):
    """A socket on 127.0.0.1 that takes connections and never answers: a busy one-slot
    server (llama.cpp's answers nothing, /models included, while it generates) is there;
    the runner's per-request timeouts deal with one that never answers."""
    monkeypatch.setattr(openai_backend, "CHECK_TIMEOUT", 0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        b = OpenAIBackend(base_url=url, model="m", api_key=None)
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="selfinstruct"):
            check(b)
    assert time.monotonic() - started < 3
    assert f"{url} took connections but did not answer GET /models within 0.3s" in caplog.text


def test_check_goes_on_when_a_slow_answer_runs_past_the_deadline(monkeypatch):
    """A server still sending its (long) model list is there: the run goes on."""
    monkeypatch.setattr(openai_backend, "CHECK_DEADLINE", 0.2)

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(30)
        return httpx2.Response(200, json=model_list("other"))

    started = time.monotonic()
    check(backend(slow))
    assert time.monotonic() - started < 2


def test_check_stops_on_a_refused_key_and_never_prints_it():
    key = "sk-planted-check-key-0123456789"

    def handler(request: httpx2.Request) -> httpx2.Response:
        echoed = request.headers["authorization"].removeprefix("Bearer ")
        return httpx2.Response(401, json={"error": {"message": f"Incorrect key: {echoed}"}})

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    b = OpenAIBackend(base_url=MODELS_URL, model="m", api_key=key, http_client=client)
    with pytest.raises(BackendError) as err:
        check(b)
    assert err.value.message == ("HTTP 401: the API key was refused: Incorrect key: <API key> "
                                 "(check --api-key or OPENAI_API_KEY)")
    assert not err.value.retryable


@pytest.mark.parametrize(
    "response",
    [
        httpx2.Response(404, text="Not Found"),  # no /models at all
        httpx2.Response(404, json={"error": {"message": "Unknown request URL"}}),
        httpx2.Response(403, json={"error": {"message": "Missing scopes: api.model.read"}}),
        httpx2.Response(500, json={"error": "busy"}),
        httpx2.Response(429, json={"error": "slow down"}),
        httpx2.Response(200, text="<html>a web page</html>"),
        httpx2.Response(200, json=[{"id": "other"}]),  # a bare list
        httpx2.Response(200, json={"models": [{"name": "other"}]}),
        httpx2.Response(200, json={"object": "list", "data": []}),
        httpx2.Response(200, json={"data": "other"}),
        httpx2.Response(200, json=model_list("other", has_more=True)),  # one page of several
        httpx2.Response(200, json={"data": [{"id": "x.gguf", "owned_by": "llamacpp"}]}),
    ],
)
def test_check_goes_on_when_the_answer_says_nothing_about_the_model(response):
    """The first real request will tell: a 403 may be a key that can chat but not list."""
    handler, seen = counted(lambda request: response)
    check(backend(handler))
    assert len(seen) == 1


# ------------------------------------------------------------------- structured output

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["Yes", "No"]}},
          "required": ["answer"], "additionalProperties": False}


def structured(prompt: str = "hi") -> Request:
    return Request(prompt=prompt, schema=SCHEMA, schema_name="classification")


def recording(bodies: list[dict], refuse: Callable[[dict], int | None] = lambda body: None,
              content: str = '{"answer": "Yes"}') -> Handler:
    """Record each body; answer ``refuse(body)`` (a status) or a normal answer."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        bodies.append(body)
        status = refuse(body)
        if status is not None:
            return httpx2.Response(status, json={"error": {"message": "unsupported format"}})
        if request.url.path.endswith("/completions") and "messages" not in body:
            return httpx2.Response(200, json={"model": "m", "choices": [
                {"index": 0, "text": content, "finish_reason": "stop"}]})
        return httpx2.Response(200, json=chat_body(content))

    return handler


def backend_with(handler: Handler, api: str = "chat", mode: str = "auto") -> OpenAIBackend:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key=None, api=api,
                         max_retries=0, http_client=client, structured=mode)


def send_all(b: OpenAIBackend, requests: list[Request]) -> list[str]:
    async def go() -> list[str]:
        return [(await b.complete(r)).text for r in requests]

    return asyncio.run(go())


def test_chat_asks_for_the_schema_as_a_json_schema_response_format():
    bodies: list[dict] = []
    send_all(backend_with(recording(bodies)), [structured(), Request(prompt="plain")])
    assert bodies[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "classification", "schema": SCHEMA, "strict": True},
    }
    assert "response_format" not in bodies[1] and "json_schema" not in bodies[1]


def test_completions_send_response_format_and_llama_cpp_json_schema():
    bodies: list[dict] = []
    send_all(backend_with(recording(bodies), api="completions"), [structured()])
    assert bodies[0]["prompt"] == "hi"
    assert bodies[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert bodies[0]["json_schema"] == SCHEMA


def test_a_server_without_schemas_gets_plain_requests_after_one_refusal(caplog):
    """400 to any response_format: the first request is sent again in the next shape, then
    without one; every later request goes plain at once, and one line says so."""
    bodies: list[dict] = []
    b = backend_with(recording(bodies, refuse=lambda body: 400 if "response_format" in body
                               else None))
    with caplog.at_level("WARNING", logger="selfinstruct"):
        texts = send_all(b, [structured("a"), structured("b"), structured("c")])
    assert texts == ['{"answer": "Yes"}'] * 3
    formats = [body.get("response_format", {}).get("type") for body in bodies]
    assert formats == ["json_schema", "json_object", None, None, None]
    assert [body["messages"][0]["content"] for body in bodies] == ["a", "a", "a", "b", "c"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "http://127.0.0.1:9/v1 does not take a JSON schema" in warnings[0]


def test_a_server_that_takes_only_json_object_keeps_getting_it(caplog):
    """llama-cpp-python's server answers 422 to json_schema and takes json_object."""
    bodies: list[dict] = []
    b = backend_with(recording(bodies, refuse=lambda body: 422 if body.get(
        "response_format", {}).get("type") == "json_schema" else None))
    with caplog.at_level("WARNING", logger="selfinstruct"):
        send_all(b, [structured("a"), structured("b")])
    assert [body["response_format"] for body in bodies] == [
        {"type": "json_schema", "json_schema": {"name": "classification", "schema": SCHEMA,
                                                "strict": True}},
        {"type": "json_object", "schema": SCHEMA},
        {"type": "json_object", "schema": SCHEMA},
    ]
    assert not caplog.records


LLAMA_CPP_500 = ("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                 "'response_format', 'type'), 'msg': \"Input should be 'text' or "
                 "'json_object'\", 'input': 'json_schema'}")


def llama_cpp_server(bodies: list[dict]) -> Handler:
    """llama-cpp-python's server: a 500 naming response_format to json_schema."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if body.get("response_format", {}).get("type") == "json_schema":
            return httpx2.Response(500, json={"error": {"message": LLAMA_CPP_500,
                                                        "type": "internal_server_error"}})
        return httpx2.Response(200, json=chat_body('{"answer": "No"}'))

    return handler


@pytest.mark.parametrize("mode", ["auto", "json"])
def test_a_500_that_names_response_format_is_a_schema_refusal(mode, caplog):
    """The installed llama-cpp-python server wraps its validation error in a 500: under
    both modes the request goes on as json_object at once, not through 500 retries."""
    bodies: list[dict] = []
    b = backend_with(llama_cpp_server(bodies), mode=mode)
    with caplog.at_level("WARNING", logger="selfinstruct"):
        texts = send_all(b, [structured("a"), structured("b")])
    assert texts == ['{"answer": "No"}'] * 2
    assert [body["response_format"]["type"] for body in bodies] == [
        "json_schema", "json_object", "json_object"]
    assert not caplog.records


def test_a_500_for_another_reason_is_a_server_fault_not_a_refusal():
    bodies: list[dict] = []
    b = backend_with(recording(bodies, refuse=lambda body: 500))
    with pytest.raises(BackendError) as err:
        send_all(b, [structured("a")])
    assert err.value.retryable
    assert len(bodies) == 1


def test_a_request_refused_for_another_reason_is_not_taken_for_a_schema_refusal(caplog):
    bodies: list[dict] = []
    b = backend_with(recording(bodies, refuse=lambda body: 400))
    with caplog.at_level("WARNING", logger="selfinstruct"), \
            pytest.raises(BackendError, match="HTTP 400: the server rejected the request"):
        send_all(b, [structured("a")])
    assert len(bodies) == 3
    assert not caplog.records
    with pytest.raises(BackendError):
        send_all(b, [structured("b")])
    assert bodies[3]["response_format"]["type"] == "json_schema"  # nothing was remembered


def test_structured_json_makes_a_refusal_an_error_and_never_sends_plain():
    bodies: list[dict] = []
    b = backend_with(recording(bodies, refuse=lambda body: 400 if "response_format" in body
                               else None), mode="json")
    with pytest.raises(BackendError) as err:
        send_all(b, [structured("a")])
    assert not err.value.retryable
    assert err.value.message == (
        "HTTP 400: the server refused a request that asks for a JSON answer: unsupported "
        "format (if it does not support response_format, use --structured auto to fall "
        "back to text, or --structured off)")
    assert [body.get("response_format", {}).get("type") for body in bodies] == [
        "json_schema", "json_object"]


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_an_empty_answer_is_an_answer_not_a_failure(content):
    """The stage settles it (``empty``); retrying it would pay for it again."""
    answer = complete(backend(lambda request: httpx2.Response(200, json=chat_body(content))))
    assert answer.text.strip() == "" and answer.finish_reason == "stop"


def test_no_key_at_all_is_named_as_missing_not_refused():
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": {"message": "Missing bearer token"}})

    with pytest.raises(BackendError) as err:
        complete(backend(handler, api_key=None))
    assert not err.value.retryable
    assert "none was given" in err.value.message and "refused" not in err.value.message
    assert "--api-key or set OPENAI_API_KEY" in err.value.message
