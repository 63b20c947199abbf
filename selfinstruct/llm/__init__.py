"""Model backends behind one small interface (:class:`selfinstruct.llm.base.Backend`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from selfinstruct.llm.base import (
    Api,
    Backend,
    BackendError,
    Completion,
    Request,
    StructuredMode,
    Usage,
)
from selfinstruct.llm.vllm import EngineOptions

__all__ = [
    "Backend",
    "BackendError",
    "BackendKind",
    "BackendSpec",
    "Completion",
    "EngineOptions",
    "Request",
    "StructuredMode",
    "Usage",
    "create_backend",
]

BackendKind = Literal["local", "openai", "vllm"]

#: With several servers a failing one is left at once for another, not retried in place.
BALANCED_MAX_RETRIES = 1


@dataclass(frozen=True)
class BackendSpec:
    """Which model to talk to and how; everything here is safe to save with a run."""

    kind: BackendKind = "local"
    model: str = ""
    base_urls: tuple[str, ...] = ()
    api: Api = "chat"
    timeout: float = 600.0
    max_retries: int = 5
    seed: int | None = None
    engine: EngineOptions = field(default_factory=EngineOptions)
    #: Whether stages ask for JSON answers, and what a server's refusal means.
    structured: StructuredMode = "auto"


def create_backend(spec: BackendSpec, api_key: str | None = None,
                   concurrency: int = 1) -> Backend:
    """Build the backend ``spec`` names, sized for ``concurrency`` requests in flight;
    optional dependencies are imported only here."""
    if spec.kind == "openai":
        return _openai(spec, api_key, concurrency)
    if spec.kind == "vllm":
        from selfinstruct.llm.vllm import VLLMBackend

        return VLLMBackend(spec.model, api=spec.api, engine=spec.engine)
    from selfinstruct.llm.local import LocalBackend

    return LocalBackend(Path(spec.model) if spec.model else None, api=spec.api, seed=spec.seed)


def _openai(spec: BackendSpec, api_key: str | None, concurrency: int) -> Backend:
    from selfinstruct.llm.balance import BalancedBackend
    from selfinstruct.llm.openai import OpenAIBackend

    urls = spec.base_urls or (None,)
    retries = spec.max_retries if len(urls) == 1 else min(spec.max_retries, BALANCED_MAX_RETRIES)
    servers = [
        OpenAIBackend(base_url=url, model=spec.model, api_key=api_key, api=spec.api,
                      timeout=spec.timeout, max_retries=retries, concurrency=concurrency,
                      structured=spec.structured)
        for url in urls
    ]
    return servers[0] if len(servers) == 1 else BalancedBackend(servers)
