"""Model backends behind one small interface (:class:`selfinstruct.llm.base.Backend`)."""

from __future__ import annotations

from selfinstruct.llm.base import (
    Api,
    Backend,
    BackendError,
    Completion,
    Request,
    StructuredMode,
    Usage,
)
from selfinstruct.llm.registry import (
    DEFAULT_CONCURRENCY,
    BackendChoice,
    BackendKind,
    BackendSpec,
    create_backend,
    given_backend,
    use_backend,
)
from selfinstruct.llm.vllm import EngineOptions

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Api",
    "Backend",
    "BackendChoice",
    "BackendError",
    "BackendKind",
    "BackendSpec",
    "Completion",
    "EngineOptions",
    "Request",
    "StructuredMode",
    "Usage",
    "create_backend",
    "given_backend",
    "use_backend",
]
