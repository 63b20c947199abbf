"""Any OpenAI-compatible server: OpenAI, vLLM, DeepSeek, DashScope, Ollama, llama.cpp…

Retries with exponential backoff and ``Retry-After`` are the openai client's own
(``max_retries``); this module only maps its outcomes onto :class:`Completion` and
:class:`BackendError`, deciding which failures are worth retrying later and which
must stop the run with a message that says what to check. Anything a server can send
back (a body that is not JSON, a completion without text, a reset connection) becomes
a :class:`BackendError`, never a crash, and no message ever carries the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai

from selfinstruct.llm.base import (
    Api,
    BackendError,
    Completion,
    Request,
    ServerUnreachable,
    StreamMode,
    StructuredMode,
    Usage,
    chat_messages,
    raw_prompt,
    sampling_fields,
    template_kwargs,
)
from selfinstruct.llm.registry import BackendSpec
from selfinstruct.llm.silence import SilenceWatch
from selfinstruct.llm.streaming import DeadlineTimeout, Pacing, assemble, read_streamed

_LOG = logging.getLogger(__name__)

#: HTTP statuses that will fail the same way on every request of the run.
_FATAL_STATUSES = {400: "the server rejected the request", 401: "the API key was refused",
                   403: "the API key may not use this model",
                   404: "the model or endpoint was not found",
                   422: "the server rejected the request"}
#: Statuses with which a server refuses a part of the request it does not support.
_SCHEMA_REFUSALS = (400, 422)
#: "stream" as a word of its own or the start of one ("non-streaming calls", "stream must
#: be true", "stream_options"), not inside one ("upstream").
_NAMES_STREAM = re.compile(r"(?<![a-z])stream", re.IGNORECASE)


class _DeadlineClient(openai.DefaultAsyncHttpxClient):
    """The SDK's default HTTP client, with one deadline on the whole of each attempt.

    httpx's timeouts bound each network operation, so a server that drips a byte a
    second, or sends keep-alive whitespace forever, never times out. ``--timeout``
    promises seconds per request, so each attempt (connect, send, read the whole body)
    gets that long; running out is a ``ReadTimeout``, retried like any other timeout.
    A streamed answer has no such end: it is read whole here too, with a deadline on its
    first chunk and between chunks (:func:`~selfinstruct.llm.streaming.read_streamed`).
    Whatever arrives is reported to ``heard`` (the server's silence watch).
    """

    def __init__(self, deadline: float, tls: ssl.SSLContext, *, pacing: Pacing,
                 heard: Callable[[], None]) -> None:
        super().__init__(timeout=deadline, verify=tls)
        self._deadline = deadline
        self._pacing = pacing
        self._heard = heard

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Send as usual, but give up when the whole answer has not arrived in time."""
        if kwargs.get("stream"):
            return await read_streamed(super().send(request, **kwargs), request,
                                       self._pacing, self._heard)
        try:
            response = await asyncio.wait_for(super().send(request, **kwargs),
                                               self._deadline)
        except asyncio.TimeoutError:
            raise DeadlineTimeout(
                f"no complete answer within {self._deadline:g}s", request=request
            ) from None
        self._heard()
        return response


#: Requests in flight per connection pool. httpcore checks every idle connection of its
#: pool (a socket poll each) whenever a request starts or ends, so CPU per request grows
#: with the pool: at C=256, one pool costs 2.2-2.8 ms per request, pools of 8 1.0-1.4 ms
#: (BENCHMARKS.md, "Client CPU per request").
SLOTS_PER_POOL = 8

#: The look at a server's model list before a stage starts: seconds to connect and to
#: wait for each next part of the answer, the pause before the one retry, and the most
#: the whole check may take. A server that is there answers in milliseconds, and one that
#: is not must be reported in seconds, not after minutes of request retries; one still
#: sending a long list at the deadline is there, so the run goes on.
CHECK_TIMEOUT = 3.0
CHECK_RETRY_PAUSE = 0.5
CHECK_DEADLINE = 10.0

#: Seconds a server that has sent nothing while requests waited gets to answer ``GET
#: /models`` before it is found silent. A loaded vLLM answers it in well under a second;
#: this leaves room for an event loop busy tokenizing a big round.
PROBE_TIMEOUT = 10.0

#: How many of a server's models the "does not serve model" error names.
LISTED_MODELS = 10


class OpenAIBackend:
    """Sends requests to one OpenAI-compatible endpoint through ``openai.AsyncOpenAI``
    clients: one per :data:`SLOTS_PER_POOL` requests in flight, used in turn."""

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None,
        api: Api = "chat",
        timeout: float = 600.0,
        max_retries: int = 5,
        concurrency: int = 1,
        http_client: Any = None,
        structured: StructuredMode = "auto",
        stream: StreamMode = BackendSpec.stream,
        first_token_timeout: float = BackendSpec.first_token_timeout,
        idle_timeout: float = BackendSpec.idle_timeout,
        silence_timeout: float = BackendSpec.silence_timeout,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.api = api
        self.base_url = base_url
        self._api_key = api_key
        self._http_client = http_client
        #: Whether requests are streamed now: from the start with ``--stream on``; under
        #: ``auto`` once the server refused a request because it was not streamed.
        self._streaming = stream == "on"
        self._stream_fallback = stream == "auto"
        #: Whether streamed requests ask for the usage chunk (until a server refuses it).
        self._stream_usage = True
        self._pacing = Pacing(first=first_token_timeout, idle=idle_timeout)
        #: With ``auto`` a server that refuses every way of asking for JSON gets plain
        #: requests; with ``json`` that refusal stops the run.
        self._text_fallback = structured != "json"
        #: The first of :func:`_schema_shapes` still worth sending; past the end: none.
        self._first_shape = 0
        if http_client is not None:
            transports = [http_client]
        else:
            # What each client would build for itself (the same trust settings), built
            # once: loading the CA bundle takes ~20 ms, and C=256 makes 32 clients.
            tls = httpx2.create_ssl_context()
            pools = max(1, -(-concurrency // SLOTS_PER_POOL))
            transports = [_DeadlineClient(timeout, tls, pacing=self._pacing,
                                          heard=self._heard)
                          for _ in range(pools)]
        self._clients = [
            openai.AsyncOpenAI(
                base_url=base_url,
                # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
                api_key=api_key or "EMPTY",
                timeout=timeout,
                max_retries=max_retries,
                http_client=transport,
            )
            for transport in transports
        ]
        self._turn = 0
        self._silence = SilenceWatch(self._where(), silence_timeout, self._answers_models)

    def _heard(self) -> None:
        """The server sent something (the transports report every answer and chunk)."""
        self._silence.heard()

    async def complete(self, request: Request) -> Completion:
        """Send ``request`` on the chosen API; map every failure to :class:`BackendError`,
        whose message never carries the API key. A server found silent meanwhile ends
        it with :class:`~selfinstruct.llm.base.ServerSilent`."""
        try:
            return await self._silence.guard(self._complete(request))
        except BackendError as err:
            raise self._without_key(err) from None

    async def check(self) -> None:
        """Look at the server once before a stage sends anything: ``GET /models``.

        Stops the run in seconds, instead of after minutes of request retries, when the
        server cannot be reached (:class:`ServerUnreachable`, after one quick retry),
        refuses the key (401), or lists its models without ``model``. Anything else goes
        on, since the first real request will tell: many providers have no ``/models``
        (404) or answer it in their own shape, a key may be allowed to chat but not to
        list models (OpenAI's restricted keys get 403), and a 5xx or 429 is the runner's
        business. Takes at most :data:`CHECK_DEADLINE` seconds, and a server that cannot
        be reached is reported after ``2 * CHECK_TIMEOUT + CHECK_RETRY_PAUSE`` at most.
        """
        try:
            response = await asyncio.wait_for(self._list_models(), CHECK_DEADLINE)
        except asyncio.TimeoutError:
            return  # still sending its list: it is there, and the first request will tell
        except BackendError as err:
            raise self._without_key(err) from None
        served = _served_models(response)
        if served is not None and not _serves(served, self.model):
            raise BackendError(_not_served(self._where(), self.model, served), retryable=False)

    async def _list_models(self) -> httpx2.Response | None:
        """``GET /models``, tried twice if the server cannot be reached; None for a status
        that says nothing about whether the run can work."""
        client = self._check_client()
        try:
            try:
                return await self._models_once(client)
            except ServerUnreachable:
                await asyncio.sleep(CHECK_RETRY_PAUSE)
                return await self._models_once(client)
        finally:
            if self._http_client is None:
                await client.close()

    async def _models_once(self, client: openai.AsyncOpenAI) -> httpx2.Response | None:
        """One ``GET /models``: not connecting, or no answer at all, within
        :data:`CHECK_TIMEOUT` is :class:`ServerUnreachable`; a 401 is the refused key."""
        started = time.monotonic()
        try:
            response = await client.get("/models", cast_to=httpx2.Response)
        except openai.APIConnectionError as err:  # timeouts included
            if _connected_but_silent(err):
                # A busy one-slot server (llama.cpp's) answers nothing until its current
                # generation ends; it is there, but if it stays silent while the run's
                # requests wait, the silence watch ends the run.
                _LOG.info("%s took connections but did not answer GET /models within %gs "
                          "(busy?); going on", self._where(), CHECK_TIMEOUT)
                self._silence.silent_since(started)
                return None
            raise ServerUnreachable(self._where(), _check_failure(err)) from None
        except openai.APIStatusError as err:
            self._heard()
            if err.status_code == 401:
                raise self._status_error(err) from None
            return None
        self._heard()
        return response

    async def _answers_models(self) -> bool:
        """Whether the server answers ``GET /models`` within :data:`PROBE_TIMEOUT`, with
        anything (a 404 too): asked by the silence watch. Only silence is False: a
        refused connection is an answer, and the requests' own errors deal with it."""
        client = self._check_client(PROBE_TIMEOUT)
        try:
            await asyncio.wait_for(client.get("/models", cast_to=httpx2.Response),
                                   2 * PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            return True  # still sending its list
        except openai.APIConnectionError as err:
            return not isinstance(err.__cause__, httpx2.TimeoutException)
        except openai.APIError:
            return True
        finally:
            if self._http_client is None:
                await client.close()
        return True

    def _check_client(self, timeout: float | None = None) -> openai.AsyncOpenAI:
        """A client for the check alone: no retries of its own, short timeouts (httpx's,
        for each step, so a long list that keeps arriving is not cut off), and its own
        connections (unless a test handed in a transport). The check runs in an event loop
        of its own, before the stage's, and a pooled connection must not outlive the loop
        it was opened in."""
        seconds = CHECK_TIMEOUT if timeout is None else timeout
        http_client = self._http_client or openai.DefaultAsyncHttpxClient(timeout=seconds)
        return self._clients[0].copy(max_retries=0, timeout=seconds, http_client=http_client)

    def _where(self) -> str:
        """The server's URL, for messages (the SDK's default when none was given)."""
        return self.base_url or str(self._clients[0].base_url).rstrip("/")

    def _without_key(self, err: BackendError) -> BackendError:
        """``err`` with the API key cut out of its message.

        Some servers echo the key they were sent in their error body, and the message goes
        to the terminal and ``failures.jsonl``. Keys under 8 characters are placeholders for
        local servers ("x", "EMPTY"), not secrets, and cutting them out would garble it.
        """
        key = self._api_key
        if not key or len(key) < 8 or key not in err.message:
            return err
        return BackendError(err.message.replace(key, "<API key>"), retryable=err.retryable)

    async def _complete(self, request: Request) -> Completion:
        try:
            return await self._structured(request)
        except openai.APIStatusError as err:
            raise self._status_error(err) from None
        except openai.APITimeoutError as err:
            raise BackendError(f"the request timed out{_timeout_detail(err)}",
                               retryable=True) from None
        except openai.APIConnectionError as err:
            raise BackendError(
                f"cannot reach {self.base_url or 'the API'}: {_connection_detail(err)}",
                retryable=True,
            ) from None

    async def _structured(self, request: Request) -> Completion:
        """Send ``request`` with its schema in the first shape this server may take.

        Servers ask for JSON in different words, and one that does not know a shape
        refuses it (:func:`_refuses_schema`). Then the same request goes again in the next
        shape and, under ``--structured auto``, finally without a schema; the shape that
        worked is remembered, so the rest of the run asks this server that way at once. A
        request that fails without a schema too failed for another reason: that error is
        raised and nothing is remembered.
        """
        if request.schema is None:
            return await self._send(request, {})
        shapes = _schema_shapes(request, self.api)
        shape = self._first_shape
        tried = shape
        while True:
            extra = shapes[shape] if shape < len(shapes) else {}
            try:
                completion = await self._send(request, extra)
            except openai.APIStatusError as err:
                if not extra or not _refuses_schema(err):
                    raise
                shape = max(shape + 1, self._first_shape)
                if shape == len(shapes) and not self._text_fallback:
                    raise self._schema_refused(err) from None
                continue
            if shape > tried:
                self._remember_shape(shape, len(shapes))
            return completion

    def _remember_shape(self, shape: int, shapes: int) -> None:
        """Ask this server in ``shape`` from now on; say once when that means no schema."""
        if shape <= self._first_shape:
            return
        self._first_shape = shape
        if shape == shapes:
            _LOG.warning(
                "%s does not take a JSON schema (it refused response_format); its requests "
                "go without one for the rest of the run and answers are read as text",
                self.base_url or "the API",
            )

    def _schema_refused(self, err: openai.APIStatusError) -> BackendError:
        """The error that stops a ``--structured json`` run on a server without schemas."""
        return BackendError(
            f"HTTP {err.status_code}: the server refused a request that asks for a JSON "
            f"answer: {_error_detail(err)} (if it does not support response_format, use "
            "--structured auto to fall back to text, or --structured off)",
            retryable=False,
        )

    async def _send(self, request: Request, extra: dict[str, Any]) -> Completion:
        """One request on the chosen API, with ``extra`` fields in its body: whole, or
        streamed once the server asked for that (:meth:`_streamed`).

        Under ``--stream auto`` a request the server refuses because it was not streamed
        (DashScope's thinking models: "enable_thinking must be set to false for
        non-streaming calls") goes again streamed, and so does every request after it.
        """
        if self._streaming:
            return await self._streamed(request, extra)
        try:
            return await self._once(request, extra, stream=False)
        except openai.APIStatusError as err:
            if not self._stream_fallback or not _wants_streaming(err):
                raise
            self._stream_from_now(err)
        return await self._streamed(request, extra)

    async def _streamed(self, request: Request, extra: dict[str, Any]) -> Completion:
        """One streamed request; a server that does not know ``stream_options`` (the ask
        for the usage chunk) gets the request again without it, as does every later one."""
        usage = self._stream_usage
        try:
            return await self._once(request, extra, stream=True)
        except openai.APIStatusError as err:
            if not usage or not _names_stream_options(err):
                raise
        if self._stream_usage:
            self._stream_usage = False
            _LOG.info("%s does not take stream_options; streamed answers come without token "
                      "counts", self._where())
        return await self._once(request, extra, stream=True)

    def _stream_from_now(self, err: openai.APIStatusError) -> None:
        """Stream every request from now on; say so once."""
        if self._streaming:
            return
        self._streaming = True
        _LOG.info("%s answers only streamed requests (it said: %s); requests are streamed "
                  "for the rest of the run", self._where(), _error_detail(err))

    async def _once(self, request: Request, extra: dict[str, Any], *,
                    stream: bool) -> Completion:
        """One request on the chosen API."""
        if self.api == "chat":
            return await self._chat(request, extra, stream)
        return await self._completions(request, extra, stream)

    async def aclose(self) -> None:
        """Stop the silence watch; close the HTTP connection pools."""
        await self._silence.aclose()
        for client in self._clients:
            await client.close()

    def _sampling_args(self, request: Request) -> dict[str, Any]:
        """The body fields every request has, then the request's extra body over them
        (a user's ``--extra-body`` names provider fields on purpose, so it wins)."""
        args: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            **sampling_fields(request),
        }
        if request.stop:
            args["stop"] = list(request.stop)
        if request.seed is not None:
            args["seed"] = request.seed
        args.update(request.extra_body)
        return args

    async def _chat(self, request: Request, extra: dict[str, Any], stream: bool) -> Completion:
        body: dict[str, Any] = {
            "messages": chat_messages(request),
            **self._sampling_args(request),
            **extra,
        }
        kwargs = template_kwargs(request)
        if kwargs:
            body["chat_template_kwargs"] = kwargs
        response = await self._post("/chat/completions", body, stream)
        choice = _first_choice(response)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise BackendError("malformed response: a choice without a message", retryable=True)
        reasoning = _text(message.get("reasoning_content")) or _text(message.get("reasoning"))
        # An empty answer is an answer (a stop string the model wrote first, a model with
        # nothing to say): the stage settles it as ``empty``; asking again would pay again.
        text = _text(message.get("content"))
        return _completion(response, choice, text, reasoning or None, self.model)

    async def _completions(self, request: Request, extra: dict[str, Any],
                           stream: bool) -> Completion:
        response = await self._post(
            "/completions", {"prompt": raw_prompt(request), **self._sampling_args(request),
                             **extra}, stream
        )
        choice = _first_choice(response)
        return _completion(response, choice, _text(choice.get("text")), None, self.model)

    async def _post(self, path: str, body: dict[str, Any], stream: bool) -> dict[str, Any]:
        """POST through the SDK (its auth, retries, backoff, ``Retry-After`` and status
        errors) but read the JSON ourselves: the SDK's request transform and response
        models cost ~0.7 ms of CPU per request, 30% of the client's work (BENCHMARKS.md,
        "Client CPU per request"). A streamed answer comes back as the body it adds up to
        (:func:`~selfinstruct.llm.streaming.assemble`)."""
        self._turn += 1
        client = self._clients[self._turn % len(self._clients)]
        if stream:
            return await self._post_streamed(client, path, body)
        response = await client.post(path, body=body, cast_to=httpx2.Response)
        return _json_body(response)

    async def _post_streamed(self, client: openai.AsyncOpenAI, path: str,
                             body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as a streaming request; its httpx timeouts are the pacing's, not
        ``--timeout``, which bounds whole answers only."""
        streamed: dict[str, Any] = {**body, "stream": True}
        if self._stream_usage:
            streamed["stream_options"] = {"include_usage": True}
        limit = max(self._pacing.first, self._pacing.idle)
        response: httpx2.Response = await client.post(
            path, body=streamed, cast_to=httpx2.Response, stream=True,
            options={"timeout": limit})
        raw = await response.aread()  # already read by our transport; a test's: here
        if raw.lstrip().startswith(b"{"):  # a server that answered whole after all
            return _json_body(response)
        return assemble(raw, chat=path == "/chat/completions")

    def _status_error(self, err: openai.APIStatusError) -> BackendError:
        status = err.status_code
        detail = _error_detail(err)
        if status == 401 and not self._api_key:
            return BackendError(f"HTTP 401: the server wants an API key and none was given "
                                f"({detail}); pass --api-key or set OPENAI_API_KEY",
                                retryable=False)
        if status in _FATAL_STATUSES:
            hint = {
                401: "check --api-key or OPENAI_API_KEY",
                403: "check the key's permissions",
                404: f"check --model {self.model!r} and --base-url {self.base_url!r}"
                     f" (and --api {self.api}: base models need 'completions')",
            }.get(status, "check the model name and sampling flags")
            if not self._streaming and _wants_streaming(err):
                hint = "the server wants a streamed request: use --stream on, or auto"
            return BackendError(
                f"HTTP {status}: {_FATAL_STATUSES[status]}: {detail} ({hint})", retryable=False
            )
        return BackendError(f"HTTP {status}: {detail}", retryable=True)


def _json_body(response: httpx2.Response) -> dict[str, Any]:
    """A non-streamed answer's body: a JSON object, else a retryable failure."""
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        if "json" not in response.headers.get("content-type", ""):
            raise BackendError(f"malformed response: not JSON: {response.text[:200]!r}",
                               retryable=True) from None
        # A 200 whose body is cut short, or only keep-alive whitespace.
        raise BackendError(f"malformed response: the body is not JSON ({err})",
                           retryable=True) from None
    if not isinstance(data, dict):
        raise BackendError(f"malformed response: {str(data)[:200]!r} is not an object",
                           retryable=True)
    return data


def _schema_shapes(request: Request, api: Api) -> list[dict[str, Any]]:
    """The body fields that ask for ``request.schema``, in the order to try them.

    Chat: OpenAI's ``json_schema`` response format (OpenAI, vLLM, llama.cpp's
    llama-server, Ollama), then a schema under ``json_object``, the one shape
    llama-cpp-python's server takes. Completions: the same ``response_format`` (vLLM)
    with llama-server's own ``json_schema`` field beside it; servers that know neither
    ignore them, and the answer is read as text.
    """
    schema = request.schema
    json_schema = {"type": "json_schema",
                   "json_schema": {"name": request.schema_name, "schema": schema, "strict": True}}
    if api == "completions":
        return [{"response_format": json_schema, "json_schema": schema}]
    return [{"response_format": json_schema},
            {"response_format": {"type": "json_object", "schema": schema}}]


def _first_choice(response: dict[str, Any]) -> dict[str, Any]:
    """The first choice of a response; any other shape is a retryable failure."""
    choices = response.get("choices")
    if not choices:
        raise BackendError("the server answered with no choices", retryable=True)
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise BackendError(f"malformed response: choices are {str(choices)[:200]!r}",
                           retryable=True)
    return choices[0]


def _text(value: object) -> str:
    """A text field as a string; servers send null (or worse) for "nothing"."""
    return value if isinstance(value, str) else ""


def _completion(response: dict[str, Any], choice: dict[str, Any], text: str,
                reasoning: str | None, model: str) -> Completion:
    finish = choice.get("finish_reason")
    return Completion(
        text=text,
        finish_reason=finish if isinstance(finish, str) else None,
        reasoning=reasoning,
        usage=_usage(response.get("usage")),
        model=_text(response.get("model")) or model,
    )


def _usage(usage: object) -> Usage:
    """Token counts, 0 where the server sends none (or something that is not a count)."""
    if not isinstance(usage, dict):
        return Usage()
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    prompt, completion = (value if isinstance(value, int) else 0 for value in counts)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _connection_detail(err: openai.APIConnectionError) -> str:
    """What went wrong underneath the SDK's generic "Connection error."."""
    cause = err.__cause__
    return (str(cause) or type(cause).__name__) if cause else str(err)


def _connected_but_silent(err: openai.APIConnectionError) -> bool:
    """Whether the check connected and then heard nothing (a read timeout), rather than
    failing to connect at all."""
    return isinstance(err.__cause__, (httpx2.ReadTimeout, httpx2.WriteTimeout))


def _check_failure(err: openai.APIConnectionError) -> str:
    """Why the check could not reach the server, timeouts in plain words."""
    cause = err.__cause__
    if isinstance(cause, httpx2.ConnectTimeout):
        return f"no connection within {CHECK_TIMEOUT:g}s"
    if isinstance(cause, httpx2.TimeoutException):
        return f"no answer within {CHECK_TIMEOUT:g}s"
    return _connection_detail(err)


def _served_models(response: httpx2.Response | None) -> list[str] | None:
    """The model ids a ``/models`` answer lists, or None where it cannot be relied on:
    no answer, not OpenAI's ``{"data": [{"id": …}]}``, an empty list, one page of
    several, or llama.cpp's server, which lists its one model but answers to any name."""
    if response is None:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:  # not JSON, or not text at all
        return None
    if not isinstance(body, dict) or body.get("has_more") is True:
        return None
    data = body.get("data")
    if not isinstance(data, list):
        return None
    models = [entry for entry in data if isinstance(entry, dict)]
    if any(entry.get("owned_by") == "llamacpp" for entry in models):
        return None
    return [entry["id"] for entry in models if isinstance(entry.get("id"), str)] or None


def _serves(served: list[str], model: str) -> bool:
    """Whether a server listing ``served`` answers to ``model``, as servers resolve names:
    Ollama takes ``llama3`` for ``llama3:latest``, Gemini lists ``models/gemini-…``."""
    return not {model, f"{model}:latest", f"models/{model}"}.isdisjoint(served)


def _not_served(url: str, model: str, served: list[str]) -> str:
    """One line naming the model asked for and up to :data:`LISTED_MODELS` served ones."""
    shown = ", ".join(repr(name) for name in served[:LISTED_MODELS])
    more = len(served) - LISTED_MODELS
    return (f"{url} does not serve model {model!r}; it serves {shown}"
            f"{f' and {more} more' if more > 0 else ''} (check --model)")


def _refuses_schema(err: openai.APIStatusError) -> bool:
    """Whether ``err`` refuses the way the request asked for JSON, not the request.

    A 400 or 422 says the body was not understood. llama-cpp-python's server wraps its
    own validation error in a 500, so a 5xx counts only when its message names
    ``response_format``; any other 5xx is a server fault that is retried as usual.
    """
    if _wants_streaming(err):
        return False
    if err.status_code in _SCHEMA_REFUSALS:
        return True
    return err.status_code >= 500 and "response_format" in _error_detail(err)


def _wants_streaming(err: openai.APIStatusError) -> bool:
    """Whether ``err`` refuses a request because it was not streamed: a 400 or 422 whose
    message names streaming (DashScope: "parameter.enable_thinking must be set to false
    for non-streaming calls"; others: "only supports stream mode", "stream must be
    true"). A refusal of ``stream_options`` is not one (:func:`_names_stream_options`)."""
    if err.status_code not in _SCHEMA_REFUSALS or _names_stream_options(err):
        return False
    return _NAMES_STREAM.search(_error_detail(err)) is not None


def _names_stream_options(err: openai.APIStatusError) -> bool:
    """Whether ``err`` refuses the ``stream_options`` field of a streamed request."""
    return err.status_code in _SCHEMA_REFUSALS and "stream_options" in _error_detail(err)


def _timeout_detail(err: openai.APITimeoutError) -> str:
    """Which of our deadlines ran out, in parentheses (httpx's own say nothing useful)."""
    cause = err.__cause__
    return f" ({cause})" if isinstance(cause, DeadlineTimeout) else ""


def _error_detail(err: openai.APIStatusError) -> str:
    """The server's own error message, short, without echoing request headers."""
    body = err.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body
        if isinstance(message, dict):
            message = message.get("message", message)
        return str(message)[:300]
    if isinstance(body, str) and body:
        return body[:300]
    return str(err.message)[:300]
