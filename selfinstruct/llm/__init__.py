"""Model backends behind one small interface (:class:`selfinstruct.llm.base.Backend`)."""

from __future__ import annotations

from pathlib import Path

from selfinstruct.llm.base import Api, Backend, BackendError, Completion, Request, Usage

__all__ = ["Backend", "BackendError", "Completion", "Request", "Usage", "create_backend"]


def create_backend(
    kind: str,
    *,
    model: str = "",
    base_url: str | None = None,
    api_key: str | None = None,
    api: Api = "chat",
    timeout: float = 600.0,
    max_retries: int = 5,
    seed: int | None = None,
) -> Backend:
    """Build the backend a run asked for; optional dependencies are imported only here."""
    if kind == "openai":
        from selfinstruct.llm.openai import OpenAIBackend

        return OpenAIBackend(
            base_url=base_url,
            model=model,
            api_key=api_key,
            api=api,
            timeout=timeout,
            max_retries=max_retries,
        )
    from selfinstruct.llm.local import LocalBackend

    return LocalBackend(Path(model) if model else None, api=api, seed=seed)
