"""Backends for tests that run inside Ray actors: importable, picklable, no state here.

A test's own module is imported under another name inside a Ray worker, so the scripts
the actors run live in this module (``tests.ray_fakes``), which every worker can import
with the repository root on its path.
"""

from __future__ import annotations

import zlib

from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.llm.fake import FakeBackend


def reasoning_answer(request: Request, number: int) -> Completion | BackendError:
    """A thinking model's answer that depends only on the prompt: a trace and an
    answer, truncated for every seventh prompt (so the trace filters reject some)."""
    crc = zlib.crc32(request.prompt.encode())
    text = f"<think>Let me think about {request.prompt[:40]} step by step.</think>answer {crc % 97}"
    finish = "length" if crc % 7 == 0 else "stop"
    return Completion(text=text, finish_reason=finish, usage=Usage(10, len(text.split())),
                      model="fake-model")


def reasoning_backend() -> FakeBackend:
    """The fake thinking model, for ``use_backend`` on either executor."""
    return FakeBackend(reasoning_answer)


def instance_answer(request: Request, number: int) -> Completion:
    """Examples (or labels, for classification prompts) that depend only on the prompt."""
    crc = zlib.crc32(request.prompt.encode())
    if request.prompt.startswith("You are writing examples for classification tasks"):
        return Completion(text="Class labels: Yes, No\nClass label: Yes\nInput: a sunny day.\n"
                               "Class label: No\nInput: a rainy day.", finish_reason="stop")
    return Completion(text="\n".join(f"Example {n}\nInput: in {crc % 71} {n}\n"
                                     f"Output: out {crc % 73} {n}" for n in (1, 2)),
                      finish_reason="stop")


def instance_backend() -> FakeBackend:
    """A fake model for ``instances``, for ``use_backend`` on either executor."""
    return FakeBackend(instance_answer, name="fake-instances")


def refusing_answer(request: Request, number: int) -> Completion | BackendError:
    """A server that refuses the key: every request fails for good."""
    return BackendError("HTTP 401: invalid api key", retryable=False)


def broken_factory(spec: object, api_key: str | None, concurrency: int) -> FakeBackend:
    """A backend that cannot be built on the actor's machine (vLLM missing there)."""
    from selfinstruct.errors import UserError

    raise UserError("--backend vllm needs vLLM and a GPU: pip install 'selfinstruct[vllm]'")
