"""The backend registry: each kind of model a stage can talk to, and how one is built.

A kind is a name (``openai``, ``local``, ``vllm``, ``fake``) with a factory that builds
its :class:`~selfinstruct.llm.base.Backend` from a :class:`BackendSpec`; optional
dependencies are imported only in the factory. Tests select the ``fake`` kind as they
select a real one, or hand a ready backend to :func:`use_backend`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from selfinstruct.llm.base import Api, Backend, StreamMode, StructuredMode
from selfinstruct.llm.vllm import EngineOptions

BackendKind = Literal["local", "openai", "vllm", "fake"]
#: ``--backend``: a kind, or ``auto`` to decide from the other flags.
BackendChoice = Literal["auto", BackendKind]

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
    #: Requests in flight (a spec made by hand: one; resolved from flags: the kind's
    #: :data:`DEFAULT_CONCURRENCY` unless given).
    concurrency: int = 1
    #: Failed requests in a row (a burst counted once) before the stage stops.
    max_failures: int = 20
    #: Whether answers are streamed: ``auto`` only once a server refuses to answer whole.
    stream: StreamMode = "auto"
    #: A streamed answer's deadlines, in place of ``timeout``: seconds to its first chunk
    #: (connecting and queueing included), and between chunks.
    first_token_timeout: float = 120.0
    idle_timeout: float = 60.0
    #: Seconds a server may send nothing at all while requests wait on it before it is
    #: asked for its model list, and found silent when that goes unanswered too.
    silence_timeout: float = 60.0
    #: The environment variable holding this model's API key (a ``--teachers`` line's
    #: third field); None: the key given to the command.
    api_key_env: str | None = None
    #: Several teachers answering the same rows (distill, reason): each one's spec, this
    #: spec being the first's; a request's ``teacher`` picks one.
    teachers: tuple[BackendSpec, ...] = ()


#: Requests in flight when nobody said: vLLM wants big rounds, servers a moderate load,
#: the embedded model answers one at a time.
DEFAULT_CONCURRENCY: dict[str, int] = {"openai": 8, "vllm": 256, "local": 1, "fake": 8}


#: Builds a backend from its spec, the API key and the requests it will have in flight.
BackendFactory = Callable[[BackendSpec, "str | None", int], Backend]

#: What :func:`use_backend` was given, innermost last: a backend, or a function that
#: makes one from the spec a stage asks for.
_GIVEN: list[Backend | Callable[[BackendSpec], Backend]] = []


def create_backend(spec: BackendSpec, api_key: str | None = None,
                   concurrency: int | None = None) -> Backend:
    """Build the backend ``spec`` names, sized for ``concurrency`` requests in flight
    (default: the spec's); optional dependencies are imported only here. Inside
    :func:`use_backend`, that backend instead."""
    if spec.teachers:
        from selfinstruct.llm.pool import TeacherPool

        return TeacherPool([(teacher.model, create_backend(teacher, teacher_key(teacher, api_key),
                                                           concurrency))
                            for teacher in spec.teachers])
    if _GIVEN:
        given = _GIVEN[-1]
        return given if isinstance(given, Backend) else given(spec)
    return FACTORIES[spec.kind](spec, api_key, spec.concurrency if concurrency is None
                                else concurrency)


def teacher_key(spec: BackendSpec, api_key: str | None) -> str | None:
    """A teacher's API key: from the variable its ``--teachers`` line names, else the
    command's."""
    if spec.api_key_env is None:
        return api_key
    key = os.environ.get(spec.api_key_env)
    if not key:
        from selfinstruct.errors import UserError

        raise UserError(f"{spec.model}: its API key variable {spec.api_key_env} is not set; "
                        f"export {spec.api_key_env}=KEY")
    return key


@contextlib.contextmanager
def use_backend(
    backend: Backend | Callable[[BackendSpec], Backend],
) -> Iterator[Backend | Callable[[BackendSpec], Backend]]:
    """Every backend a stage asks for inside the block is ``backend`` (or what it makes
    from the stage's :class:`BackendSpec`, when it is a function).

    The one seam through which tests (and notebooks) run the CLI and the library on a
    :class:`~selfinstruct.llm.fake.FakeBackend` or a model built beforehand, instead of
    patching module globals.
    """
    _GIVEN.append(backend)
    try:
        yield backend
    finally:
        _GIVEN.pop()


def given_backend() -> Backend | Callable[[BackendSpec], Backend] | None:
    """What :func:`use_backend` gives right now, if anything: an executor that builds its
    backends elsewhere (Ray actors) sends this there instead."""
    return _GIVEN[-1] if _GIVEN else None


def _vllm(spec: BackendSpec, api_key: str | None, concurrency: int) -> Backend:
    from selfinstruct.llm.vllm import VLLMBackend

    return VLLMBackend(spec.model, api=spec.api, engine=spec.engine)


def _local(spec: BackendSpec, api_key: str | None, concurrency: int) -> Backend:
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
                      structured=spec.structured, stream=spec.stream,
                      first_token_timeout=spec.first_token_timeout,
                      idle_timeout=spec.idle_timeout, silence_timeout=spec.silence_timeout)
        for url in urls
    ]
    return servers[0] if len(servers) == 1 else BalancedBackend(servers)


def _fake(spec: BackendSpec, api_key: str | None, concurrency: int) -> Backend:
    from selfinstruct.llm.fake import FakeBackend

    if not spec.model:
        from selfinstruct.errors import UserError

        raise UserError("--backend fake needs --model FILE: the answers, one JSON string or "
                        "object (text, reasoning, finish_reason) a line")
    return FakeBackend.from_file(Path(spec.model))


#: How each kind of backend is built.
FACTORIES: dict[str, BackendFactory] = {"openai": _openai, "vllm": _vllm, "local": _local,
                                        "fake": _fake}
