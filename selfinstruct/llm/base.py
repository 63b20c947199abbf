"""What every backend takes and returns.

The pipeline stages only ever see :class:`Request` and :class:`Completion`, so the same
loop runs on an OpenAI-compatible server, the vLLM offline engine or the embedded
llama.cpp model, and tests swap in a fake backend at this seam.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Api = Literal["chat", "completions"]
#: ``auto``: ask for JSON where the backend can, text where a server refuses; ``json``:
#: a server's refusal is an error; ``off``: no schema, the text prompts of old.
StructuredMode = Literal["auto", "json", "off"]
#: ``auto``: whole answers, streamed only once a server refuses to answer otherwise;
#: ``on``: every answer streamed; ``off``: never.
StreamMode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class Request:
    """One prompt to send. ``prompt`` is the user message (chat) or the raw prompt.

    Every field means the same on every backend (OpenAI-compatible servers, the vLLM
    engine, the embedded llama.cpp model), so a stage says what it wants once.
    """

    prompt: str
    max_tokens: int = 1024
    #: None sends nothing, so the server's (or the model's generation config) default holds.
    temperature: float | None = 0.7
    top_p: float | None = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: Qwen3-style thinking switch, sent as ``chat_template_kwargs``; None sends nothing.
    enable_thinking: bool | None = None
    #: A system message before the prompt (chat); the completions API gets it in front of
    #: the prompt, since a raw prompt has no other place for it.
    system: str | None = None
    #: Provider-specific fields merged into the request (``repetition_penalty``,
    #: ``top_k``, DashScope's ``enable_thinking`` …): into the body of an OpenAI-style
    #: request, into ``SamplingParams`` for vLLM, into the call for llama.cpp.
    extra_body: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: A JSON schema the answer must follow (structured output), or None for free text.
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    #: The schema's short name, which OpenAI-style servers require (``[A-Za-z0-9_-]``).
    schema_name: str = "answer"
    #: Earlier turns of a conversation, ``(role, content)`` with role ``user`` or
    #: ``assistant``, between the system message and the prompt: a multi-turn chat
    #: (``dialogue --mode self-chat``) sends the conversation so far, not a summary of it.
    history: tuple[tuple[str, str], ...] = ()
    #: Which of several teachers answers (:class:`~selfinstruct.llm.pool.TeacherPool`);
    #: a backend of one model has no other to pick.
    teacher: int = 0


@dataclass(frozen=True)
class Usage:
    """Token counts as reported by the backend (zero when it reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    """A model's answer: its text, any separate reasoning, and why it stopped."""

    text: str
    finish_reason: str | None = None
    reasoning: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""


class BackendError(Exception):
    """A request failed.

    ``retryable`` is False for errors that will fail the same way every time (bad API
    key, unknown model, malformed request): the run stops at once with ``message``,
    which says what to check, instead of burning through the whole job.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


#: What to look at when a server cannot be reached before anything was sent to it.
UNREACHABLE_HINT = "check that the server is running and that --base-url is right"


class ServerUnreachable(BackendError):
    """A server that could not be reached at all: refused, unknown host, no answer in time.

    Its own type so that a balancer over several servers can tell a server that is down,
    which the others can cover for, from an error every server would give (a refused
    key, an unknown model).
    """

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach {url}: {detail} ({UNREACHABLE_HINT})", retryable=True)
        self.url = url
        self.detail = detail


class ServerSilent(BackendError):
    """A server that took requests and then sent nothing at all for a long while, nor
    answered ``GET /models`` when asked: hung, not slow.

    Not retryable, since every request would wait on it the same way; its own type so
    that a balancer over several servers leaves that one for the others instead.
    """

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(
            f"{url} has sent nothing for {seconds:g}s while requests waited on it, and did "
            "not answer GET /models either: it is not responding (check that the server "
            "process is alive and not stuck; a server that is only slow answers GET "
            "/models, or shows it is working with --stream on)",
            retryable=False,
        )
        self.url = url


@runtime_checkable
class Backend(Protocol):
    """A model that completes requests. Implementations own their retries."""

    name: str

    async def complete(self, request: Request) -> Completion:
        """Send one request; raise :class:`BackendError` when it cannot be answered."""
        ...

    async def aclose(self) -> None:
        """Release connections, processes or GPU memory."""
        ...


@runtime_checkable
class Checkable(Protocol):
    """A backend with a server worth looking at before a stage sends it anything."""

    async def check(self) -> None:
        """Raise :class:`BackendError` when the server cannot serve this run at all."""
        ...


async def preflight(backend: Backend) -> None:
    """Check ``backend``'s server, where it has one, before its first request.

    Optional rather than part of :class:`Backend`: the in-process backends (llama.cpp,
    the vLLM engine) have no server to check, and test doubles need not pretend to.
    """
    if isinstance(backend, Checkable):
        await backend.check()


def chat_messages(request: Request) -> list[dict[str, str]]:
    """The chat turns of ``request``: its system message (if any), the earlier turns of
    the conversation (if any), then the prompt."""
    messages = [{"role": role, "content": content} for role, content in request.history]
    messages.append({"role": "user", "content": request.prompt})
    if request.system:
        messages.insert(0, {"role": "system", "content": request.system})
    return messages


def raw_prompt(request: Request) -> str:
    """The text a completions API gets: a raw prompt has no system turn or earlier turns,
    so the system message and then the conversation so far (one ``Role: text`` paragraph
    a turn) go in front of it."""
    if not request.history:
        return f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
    turns = [f"{role.capitalize()}: {content}" for role, content in request.history]
    parts = [request.system or "", *turns, f"User: {request.prompt}", "Assistant:"]
    return "\n\n".join(part for part in parts if part)


def sampling_fields(request: Request) -> dict[str, Any]:
    """Temperature and top_p where given: a None leaves the backend's own default."""
    fields: dict[str, Any] = {}
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.top_p is not None:
        fields["top_p"] = request.top_p
    return fields


def template_kwargs(request: Request) -> dict[str, Any]:
    """The chat template's keyword arguments: ``enable_thinking`` when set, plus any
    ``chat_template_kwargs`` of the extra body (which win)."""
    kwargs: dict[str, Any] = {}
    if request.enable_thinking is not None:
        kwargs["enable_thinking"] = request.enable_thinking
    extra = request.extra_body.get("chat_template_kwargs")
    if isinstance(extra, Mapping):
        kwargs.update(extra)
    return kwargs
