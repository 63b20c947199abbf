"""What travels between the coordinator and the actors: requests out, outcomes back.

A :class:`~selfinstruct.llm.base.Request` goes as its pickle, whatever fields it has
(structured output adds some), so an actor sends exactly what the local path would. An
outcome comes back as a small tuple, not as the exception itself: a
:class:`~selfinstruct.llm.base.BackendError` takes keyword arguments, which an
exception's pickle cannot restore.
"""

from __future__ import annotations

import pickle
from typing import Any

from selfinstruct.llm.base import BackendError, Completion, Request

#: What an actor returns for one request.
Outcome = Completion | BackendError


def encode_request(request: Request) -> bytes:
    """One request as the dataset carries it."""
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(data: bytes) -> Request:
    """The request an actor is to send."""
    request = pickle.loads(data)
    if not isinstance(request, Request):
        raise TypeError(f"expected a Request, got {type(request).__name__}")
    return request


def encode_outcome(outcome: Outcome) -> bytes:
    """An answer, or a failure as ``(message, retryable)``."""
    value: Any = outcome
    if isinstance(outcome, BackendError):
        value = ("error", outcome.message, outcome.retryable)
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def decode_outcome(data: bytes) -> Outcome:
    """The answer or failure an actor sent back."""
    value = pickle.loads(data)
    if isinstance(value, Completion):
        return value
    _, message, retryable = value
    return BackendError(message, retryable=retryable)
