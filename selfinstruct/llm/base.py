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


@dataclass(frozen=True)
class Request:
    """One prompt to send. ``prompt`` is the user message (chat) or the raw prompt."""

    prompt: str
    max_tokens: int = 1024
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: Qwen3-style thinking switch, sent as ``chat_template_kwargs``; None sends nothing.
    enable_thinking: bool | None = None
    #: A JSON schema the answer must follow (structured output), or None for free text.
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    #: The schema's short name, which OpenAI-style servers require (``[A-Za-z0-9_-]``).
    schema_name: str = "answer"


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
