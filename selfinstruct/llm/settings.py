"""Which model a stage talks to, as asked for, and resolved once into a :class:`BackendSpec`.

:class:`BackendSettings` is what a caller gives (the CLI from its backend flags, the
library from keywords named like them); ``None`` means "not given". :func:`resolve_backend`
turns it into the one typed value every stage uses: the flags first, then what the run
directory was saved with, then the defaults, which are the fields' defaults of
:class:`BackendSpec` (and :data:`DEFAULT_CONCURRENCY`) and written nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from selfinstruct.errors import UserError
from selfinstruct.llm.base import StreamMode
from selfinstruct.llm.registry import DEFAULT_CONCURRENCY, BackendSpec
from selfinstruct.llm.vllm import EngineOptions

#: Who sends a row stage's requests: this process, or Ray Data actors.
ExecutorName = Literal["local", "ray"]


@dataclass(frozen=True)
class ExecutorSettings:
    """``--executor`` and its Ray flags (the row stages: instances, reason, distill,
    score): who sends the requests, this process or Ray Data actors."""

    executor: ExecutorName = "local"
    ray_address: str | None = None
    ray_actors: int | None = None

    def __post_init__(self) -> None:
        if self.executor not in get_args(ExecutorName):
            raise UserError(f"--executor {self.executor}: expected local or ray")
        if self.executor != "ray" and (self.ray_address is not None
                                       or self.ray_actors is not None):
            raise UserError("--ray-address and --ray-actors need --executor ray")
        if self.ray_actors is not None and self.ray_actors < 1:
            raise UserError("--ray-actors must be at least 1")


@dataclass(frozen=True)
class BackendSettings:
    """The backend as asked for (None / empty: not given, so the run's saved setting or
    the default holds). The API key is kept here and never saved."""

    backend: str | None = None
    base_url: tuple[str, ...] = ()
    base_url_file: Path | None = None
    model: str | None = None
    api_key: str | None = None
    api: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_failures: int | None = None
    tensor_parallel_size: int | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    structured: str | None = None
    stream: str | None = None
    executor: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)
    #: Every ``--model`` given; more than one asks several teachers (distill, reason:
    #: :mod:`selfinstruct.llm.teachers`), and ``model`` is the first.
    models: tuple[str, ...] = ()
    #: ``--teachers FILE``: a teacher a line (distill, reason).
    teachers_file: Path | None = None

    def urls(self) -> tuple[str, ...]:
        """``--base-url`` values, then the lines of ``--base-url-file`` (``#`` comments)."""
        urls = list(self.base_url)
        if self.base_url_file is not None:
            try:
                lines = self.base_url_file.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise UserError(f"{self.base_url_file}: cannot read ({err.strerror})") from None
            urls += [line.split("#", 1)[0].strip() for line in lines]
        return tuple(url for url in urls if url)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> BackendSettings:
        """The settings from keywords named like the flags, as the library takes them:
        ``base_url`` one URL or several, ``executor`` a name or :class:`ExecutorSettings`.
        Keywords that are not backend settings are ignored (the caller checks them)."""
        own = {name: values[name] for name in KEYWORDS if name in values}
        if isinstance(own.get("model"), list | tuple):  # model=[A, B]: several teachers
            own["models"] = tuple(own["model"])
            own["model"] = own["models"][0] if own["models"] else None
        if own.get("teachers_file") is not None:
            own["teachers_file"] = Path(own["teachers_file"])
        urls = own.get("base_url")
        own["base_url"] = (urls,) if isinstance(urls, str) else tuple(urls or ())
        if own.get("base_url_file") is not None:
            own["base_url_file"] = Path(own["base_url_file"])
        if not isinstance(own.get("backend"), str | None):
            own["backend"] = None  # a ready backend object: the caller gives it apart
        if isinstance(own.get("executor"), str):
            own["executor"] = ExecutorSettings(own["executor"])
        elif own.get("executor") is None:
            own.pop("executor", None)
        return cls(**own)


#: The backend keywords every model stage takes (its command's backend flags).
KEYWORDS = frozenset(field.name for field in dataclasses.fields(BackendSettings))

#: The defaults, read from the one place they are written.
_DEFAULT = BackendSpec()
_ENGINE = EngineOptions()


def resolve_backend(saved: Mapping[str, Any], given: BackendSettings) -> BackendSpec:
    """The backend to use: what was given first, then what the run was saved with
    (``saved``, a run's ``config.json``; empty for stages that never reuse a run's
    model), then the defaults. Checked here, once, for every stage. One model: several
    teachers are resolved one by one (:mod:`selfinstruct.llm.teachers`)."""
    if len(given.models) > 1 or given.teachers_file is not None:
        raise UserError("several teachers (--model given twice, --teachers) answer distill "
                        "and reason; this command talks to one model")
    given_urls = given.urls()
    urls = given_urls or tuple(saved.get("base_urls", ()))
    kind = given.backend if given.backend not in (None, "auto") else None
    if kind is None:
        kind = "openai" if given_urls else saved.get("backend") or ("openai" if urls else "local")
    if kind == "openai" and not urls:
        raise UserError("--backend openai needs --base-url URL (or --base-url-file)")
    same_kind = kind == saved.get("backend")
    model = given.model or (saved.get("model", "") if same_kind else "")
    if kind == "openai" and not model:
        raise UserError("--base-url needs --model NAME (the name the server serves)")
    if kind == "vllm" and not model:
        raise UserError("--backend vllm needs --model (a Hugging Face id or a local path)")
    engine = EngineOptions(
        tensor_parallel_size=_first(given.tensor_parallel_size,
                                    saved.get("tensor_parallel_size"),
                                    _ENGINE.tensor_parallel_size),
        dtype=_first(given.dtype, saved.get("dtype"), _ENGINE.dtype),
        max_model_len=_first(given.max_model_len, saved.get("max_model_len"), 0) or None,
        gpu_memory_utilization=_first(given.gpu_memory_utilization,
                                      saved.get("gpu_memory_utilization"),
                                      _ENGINE.gpu_memory_utilization),
        seed=saved.get("seed"),
    )
    concurrency = _first(given.concurrency, saved.get("concurrency") if same_kind else None,
                         DEFAULT_CONCURRENCY[kind])
    spec = BackendSpec(
        kind=kind,  # type: ignore[arg-type]
        model=model,
        base_urls=urls if kind == "openai" else (),
        api=_first(given.api, saved.get("api"), _DEFAULT.api),
        timeout=_first(given.timeout, saved.get("timeout"), _DEFAULT.timeout),
        max_retries=_first(given.max_retries, saved.get("max_retries"), _DEFAULT.max_retries),
        seed=saved.get("seed"),
        engine=engine,
        structured=_first(given.structured, saved.get("structured"), _DEFAULT.structured),
        stream=_first(given.stream, saved.get("stream"), _DEFAULT.stream),
        # The embedded model answers one request at a time, whatever was asked.
        concurrency=1 if kind == "local" and concurrency >= 1 else concurrency,
        max_failures=_first(given.max_failures, saved.get("max_consecutive_failures"),
                            _DEFAULT.max_failures),
    )
    _check(spec)
    return spec


def _check(spec: BackendSpec) -> None:
    if spec.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    if spec.max_failures < 1:
        raise UserError("--max-failures must be at least 1")
    if spec.timeout <= 0:
        raise UserError("--timeout must be positive")
    if spec.max_retries < 0:
        raise UserError("--max-retries must not be negative")
    if spec.stream not in get_args(StreamMode):
        raise UserError(f"--stream {spec.stream}: expected auto, on or off")


def _first(*values: Any) -> Any:
    return next(value for value in values if value is not None)


def destination(spec: BackendSpec) -> str:
    """Which backend would get the requests: the first line of every ``--dry-run``."""
    return (f"would send to {spec.kind}:{spec.model or 'embedded model'} "
            f"({spec.concurrency} in flight)")
