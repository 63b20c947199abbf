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
from typing import Any, TypeVar

import httpx2
import openai
from openai.types import CompletionChoice
from openai.types.chat import ChatCompletionMessage
from openai.types.chat.chat_completion import Choice as ChatChoice

from selfinstruct.llm.base import Api, BackendError, Completion, Request, Usage

#: HTTP statuses that will fail the same way on every request of the run.
_FATAL_STATUSES = {400: "the server rejected the request", 401: "the API key was refused",
                   403: "the API key may not use this model",
                   404: "the model or endpoint was not found",
                   422: "the server rejected the request"}

C = TypeVar("C")


class _DeadlineClient(openai.DefaultAsyncHttpxClient):
    """The SDK's default HTTP client, with one deadline on the whole of each attempt.

    httpx's timeouts bound each network operation, so a server that drips a byte a
    second, or sends keep-alive whitespace forever, never times out. ``--timeout``
    promises seconds per request, so each attempt (connect, send, read the whole body)
    gets that long; running out is a ``ReadTimeout``, retried like any other timeout.
    """

    def __init__(self, deadline: float) -> None:
        super().__init__(timeout=deadline)
        self._deadline = deadline

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Send as usual, but give up when the whole answer has not arrived in time."""
        try:
            return await asyncio.wait_for(super().send(request, **kwargs), self._deadline)
        except asyncio.TimeoutError:
            raise httpx2.ReadTimeout(
                f"no complete answer within {self._deadline:g}s", request=request
            ) from None


class OpenAIBackend:
    """Sends requests to one OpenAI-compatible endpoint through ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None,
        api: Api = "chat",
        timeout: float = 600.0,
        max_retries: int = 5,
        http_client: Any = None,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.api = api
        self.base_url = base_url
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
            api_key=api_key or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client or _DeadlineClient(timeout),
        )

    async def complete(self, request: Request) -> Completion:
        """Send ``request`` on the chosen API; map every failure to :class:`BackendError`.

        Some servers echo the key they were sent in their error body; it is cut out of
        the message here, since the message goes to the terminal and ``failures.jsonl``.
        Keys under 8 characters are placeholders for local servers ("x", "EMPTY"), not
        secrets, and cutting them out would garble the message.
        """
        try:
            return await self._complete(request)
        except BackendError as err:
            key = self._api_key
            if not key or len(key) < 8 or key not in err.message:
                raise
            message = err.message.replace(key, "<API key>")
            raise BackendError(message, retryable=err.retryable) from None

    async def _complete(self, request: Request) -> Completion:
        try:
            if self.api == "chat":
                return await self._chat(request)
            return await self._completions(request)
        except openai.APIStatusError as err:
            raise self._status_error(err) from None
        except openai.APITimeoutError:
            raise BackendError("the request timed out", retryable=True) from None
        except openai.APIConnectionError as err:
            cause = err.__cause__
            detail = (str(cause) or type(cause).__name__) if cause else str(err)
            raise BackendError(
                f"cannot reach {self.base_url or 'the API'}: {detail}", retryable=True
            ) from None
        except openai.APIResponseValidationError as err:
            raise BackendError(f"malformed response: {err}", retryable=True) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            # A 200 whose body is cut short, or only keep-alive whitespace.
            raise BackendError(
                f"malformed response: the body is not JSON ({err})", retryable=True
            ) from None

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    def _sampling_args(self, request: Request) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            args["stop"] = list(request.stop)
        if request.seed is not None:
            args["seed"] = request.seed
        return args

    async def _chat(self, request: Request) -> Completion:
        extra: dict[str, Any] = {}
        if request.enable_thinking is not None:
            extra["extra_body"] = {
                "chat_template_kwargs": {"enable_thinking": request.enable_thinking}
            }
        response = await self._client.chat.completions.create(
            messages=[{"role": "user", "content": request.prompt}],
            **self._sampling_args(request),
            **extra,
        )
        choice = _first_choice(response, ChatChoice)
        message = choice.message
        if not isinstance(message, ChatCompletionMessage):
            raise BackendError("malformed response: a choice without a message", retryable=True)
        extra = message.model_extra or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        text = message.content if isinstance(message.content, str) else ""
        if not text.strip() and not reasoning:
            raise BackendError("the server answered with no content", retryable=True)
        return Completion(
            text=text,
            finish_reason=choice.finish_reason,
            reasoning=reasoning,
            usage=_usage(response.usage),
            model=response.model or self.model,
        )

    async def _completions(self, request: Request) -> Completion:
        response = await self._client.completions.create(
            prompt=request.prompt, **self._sampling_args(request)
        )
        choice = _first_choice(response, CompletionChoice)
        text = choice.text if isinstance(choice.text, str) else ""
        if not text.strip():
            raise BackendError("the server answered with no content", retryable=True)
        return Completion(
            text=text,
            finish_reason=choice.finish_reason,
            usage=_usage(response.usage),
            model=response.model or self.model,
        )

    def _status_error(self, err: openai.APIStatusError) -> BackendError:
        status = err.status_code
        detail = _error_detail(err)
        if status in _FATAL_STATUSES:
            hint = {
                401: "check --api-key or OPENAI_API_KEY",
                403: "check the key's permissions",
                404: f"check --model {self.model!r} and --base-url {self.base_url!r}"
                     f" (and --api {self.api}: base models need 'completions')",
            }.get(status, "check the model name and sampling flags")
            return BackendError(
                f"HTTP {status}: {_FATAL_STATUSES[status]}: {detail} ({hint})", retryable=False
            )
        return BackendError(f"HTTP {status}: {detail}", retryable=True)


def _first_choice(response: object, kind: type[C]) -> C:
    """The first choice of a parsed response; any other shape is a retryable failure.

    The client parses leniently (servers differ in the fields they send), so a body of
    the wrong shape arrives here as a half-built object, or as plain text when it was
    not JSON at all.
    """
    if isinstance(response, str):
        raise BackendError(f"malformed response: not JSON: {response[:200]!r}", retryable=True)
    choices = getattr(response, "choices", None)
    if not choices:
        raise BackendError("the server answered with no choices", retryable=True)
    if not isinstance(choices, list) or not isinstance(choices[0], kind):
        raise BackendError(f"malformed response: choices are {str(choices)[:200]!r}",
                           retryable=True)
    return choices[0]


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )


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
