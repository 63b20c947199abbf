"""Any OpenAI-compatible server: OpenAI, vLLM, DeepSeek, DashScope, Ollama, llama.cpp…

Retries with exponential backoff and ``Retry-After`` are the openai client's own
(``max_retries``); this module only maps its outcomes onto :class:`Completion` and
:class:`BackendError`, deciding which failures are worth retrying later and which
must stop the run with a message that says what to check.
"""

from __future__ import annotations

from typing import Any

import openai

from selfinstruct.llm.base import Api, BackendError, Completion, Request, Usage

#: HTTP statuses that will fail the same way on every request of the run.
_FATAL_STATUSES = {400: "the server rejected the request", 401: "the API key was refused",
                   403: "the API key may not use this model",
                   404: "the model or endpoint was not found",
                   422: "the server rejected the request"}


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
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
            api_key=api_key or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )

    async def complete(self, request: Request) -> Completion:
        """Send ``request`` on the chosen API; map every failure to :class:`BackendError`."""
        try:
            if self.api == "chat":
                return await self._chat(request)
            return await self._completions(request)
        except openai.APIStatusError as err:
            raise self._status_error(err) from None
        except openai.APITimeoutError:
            raise BackendError("the request timed out", retryable=True) from None
        except openai.APIConnectionError as err:
            raise BackendError(
                f"cannot reach {self.base_url or 'the API'}: {err.__cause__ or err}",
                retryable=True,
            ) from None
        except openai.APIResponseValidationError as err:
            raise BackendError(f"malformed response: {err}", retryable=True) from None

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
        if not response.choices:
            raise BackendError("the server answered with no choices", retryable=True)
        choice = response.choices[0]
        message = choice.message
        extra = message.model_extra or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        if message.content is None and not reasoning:
            raise BackendError("the server answered with no content", retryable=True)
        return Completion(
            text=message.content or "",
            finish_reason=choice.finish_reason,
            reasoning=reasoning,
            usage=_usage(response.usage),
            model=response.model or self.model,
        )

    async def _completions(self, request: Request) -> Completion:
        response = await self._client.completions.create(
            prompt=request.prompt, **self._sampling_args(request)
        )
        if not response.choices:
            raise BackendError("the server answered with no choices", retryable=True)
        choice = response.choices[0]
        return Completion(
            text=choice.text or "",
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
