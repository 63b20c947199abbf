"""Flags that several commands share, declared once and added to each command's signature.

The backend's flags (and, for the row stages, ``--executor`` and its Ray flags) reach a
command as one :class:`~selfinstruct.llm.settings.BackendSettings`; their defaults are
quoted from where they are written (:class:`~selfinstruct.llm.BackendSpec`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from selfinstruct.cli.output import reported_errors
from selfinstruct.llm import DEFAULT_CONCURRENCY, BackendChoice, BackendSpec, EngineOptions
from selfinstruct.llm.base import Api, StreamMode, StructuredMode
from selfinstruct.llm.settings import BackendSettings, ExecutorName, ExecutorSettings
from selfinstruct.llm.thinking import ThinkingStyle
from selfinstruct.stages.teacher import Teacher

T = TypeVar("T")

#: ``--thinking on|off``: a thinking model's reasoning switch.
Switch = Literal["on", "off"]

DRY_RUN = Annotated[
    bool, typer.Option(help="Print what would be sent (counts, a sample prompt, estimated "
                       "tokens) and stop: nothing is loaded, sent or written.")
]

STRUCTURED = Annotated[
    StructuredMode | None,
    typer.Option(help="auto: ask for JSON answers in classify, instances and alpaca-style "
                 "generate (a grammar for local models, vLLM's structured outputs, "
                 "response_format for servers, which fall back to text if they refuse it); "
                 "json: every stage, a server's refusal is an error; off: plain text "
                 "prompts. Default: the run's setting, else auto.", show_default=False),
]

SHARD = Annotated[
    str | None, typer.Option(help="Only records i, i+n, i+2n… (0-based), e.g. 3/8, to split "
                             "the work across machines.")
]

#: Placeholder default for the ``backend`` parameter that :func:`with_backend_options` fills.
NO_BACKEND = BackendSettings()

_SPEC = BackendSpec()
_ENGINE = EngineOptions()


def _option(name: str, annotation: Any, default: Any, help_text: str,
            **kwargs: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, typer.Option(help=help_text, **kwargs)], default=default,
    )


def _keyword(parameter: inspect.Parameter) -> inspect.Parameter:
    """Typer passes everything by name; keyword-only lets signatures be concatenated."""
    return parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)


BACKEND_PARAMETERS = [
    _option("backend", BackendChoice, "auto", "auto: openai with --base-url, else the "
            "embedded local model. vllm: the offline engine in this process (needs a GPU). "
            "fake: the answers of the file --model names, one JSON string a line (tests, "
            "demos)."),
    _option("base_url", list[str] | None, None, "OpenAI-compatible server, e.g. "
            "http://127.0.0.1:8000/v1; repeat it to balance over several."),
    _option("base_url_file", Path | None, None, "A file of server URLs, one a line."),
    _option("model", list[str] | None, None, "Model name on the server, a .gguf path "
            "(local), or a Hugging Face id / path (vllm); distill and reason: repeat it to "
            "ask several teachers (sample k of a row goes to the k-th, cyclically)."),
    _option("api_key", str | None, None, "API key (never written to disk).",
            envvar="OPENAI_API_KEY", show_default=False, show_envvar=True),
    _option("api", Api | None, None, "chat, or completions for base models."),
    _option("concurrency", int | None, None, "Requests in flight (default "
            f"{DEFAULT_CONCURRENCY['openai']}; vllm {DEFAULT_CONCURRENCY['vllm']}, the size "
            "of a round; the local model runs one at a time)."),
    _option("timeout", float | None, None, "Seconds for a whole answer, per try (default "
            f"{_SPEC.timeout:g}). A streamed answer has none: its first chunk must come "
            f"within {_SPEC.first_token_timeout:g}s and each next within "
            f"{_SPEC.idle_timeout:g}s."),
    _option("max_retries", int | None, None, "HTTP retries per request (default "
            f"{_SPEC.max_retries})."),
    _option("stream", StreamMode | None, None, "auto: whole answers, but stream from the "
            "first request a server refuses because it was not streamed (DashScope's thinking "
            "models); on: stream every answer; off: never. Default: the run's setting, else "
            "auto."),
    _option("max_failures", int | None, None, "Stop after this many failed requests in a "
            f"row (default {_SPEC.max_failures}; requests that fail together, as in an "
            "outage, count once)."),
    _option("tensor_parallel_size", int | None, None, "vllm: GPUs per model "
            f"({_ENGINE.tensor_parallel_size})."),
    _option("dtype", str | None, None, "vllm: auto, bfloat16, float16 …"),
    _option("max_model_len", int | None, None, "vllm: context length."),
    _option("gpu_memory_utilization", float | None, None, "vllm: share of GPU memory "
            f"({_ENGINE.gpu_memory_utilization})."),
]

EXECUTOR_PARAMETERS = [
    _option("executor", ExecutorName, "local", "local: this process sends every request; "
            "ray: Ray Data actors send them (pip install 'selfinstruct\\[ray]'), each holding "
            "one client or, with --backend vllm, one engine per GPU; this process still "
            "parses, filters and writes every answer."),
    _option("ray_address", str | None, None, "ray: the cluster to join, e.g. "
            "ray://head:10001 or head:6379 (default: RAY_ADDRESS, a ray start cluster on "
            "this machine, else a local Ray; 'local' always starts one)."),
    _option("ray_actors", int | None, None, "ray: actors in the pool (default: one per 128 "
            "requests in flight; vllm: one per GPU, or per --tensor-parallel-size GPUs)."),
]


def with_backend_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add the backend flags to a command; it receives them as ``backend:
    BackendSettings`` (with ``--structured``, when the command has that flag)."""
    signature = inspect.signature(func, eval_str=True)
    own = [_keyword(p) for p in signature.parameters.values() if p.name != "backend"]

    @functools.wraps(func)
    def command(**kwargs: Any) -> T:
        return func(backend=backend_settings(kwargs), **kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *BACKEND_PARAMETERS]
    )
    return command


def backend_settings(kwargs: dict[str, Any]) -> BackendSettings:
    """Take the backend flags out of a command's keyword arguments (``--structured`` is
    read, not taken: it is also the command's own)."""
    values = {p.name: kwargs.pop(p.name) for p in BACKEND_PARAMETERS}
    values["base_url"] = tuple(values["base_url"] or ())
    values["models"] = tuple(values["model"] or ())
    values["model"] = values["models"][0] if values["models"] else None
    if kwargs.get("structured") is not None:
        values["structured"] = kwargs["structured"]
    return BackendSettings(**values)


TEACHER_PARAMETERS = [
    _option("system", str | None, None, "System prompt."),
    _option("system_file", Path | None, None, "System prompt from a file."),
    _option("stop", list[str] | None, None, "Stop string (repeatable), e.g. --stop '####'."),
    _option("extra_body", str | None, None, "JSON object merged into each request, e.g. "
            "'{\"repetition_penalty\": 1.05, \"top_k\": 20}'."),
    _option("thinking", Switch | None, None, "A thinking model's reasoning on or off "
            "(default: the model's own)."),
    _option("thinking_style", ThinkingStyle, "auto", "template: chat_template_kwargs (vLLM, "
            "SGLang, llama.cpp); top-level: enable_thinking in the body (DashScope, "
            "SiliconFlow); prompt: /think or /no_think in the message; auto picks top-level "
            "for DashScope and SiliconFlow URLs, else template."),
    _option("thinking_budget", int | None, None, "DashScope's thinking_budget (with "
            "--thinking on)."),
]

#: ``--teachers FILE``: a teacher stage's other teachers, each on its own server.
TEACHERS_FILE = _option("teachers", Path | None, None, "A file of teachers, one "
                        "'BASE_URL MODEL [KEY_ENV]' a line (KEY_ENV: the variable holding "
                        "that server's API key); sample k of a row goes to the k-th, "
                        "cyclically.")

#: Placeholder default for the ``teacher`` parameter that :func:`with_teacher_options` fills.
NO_TEACHER = Teacher()


def with_teacher_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add the teacher's flags (system prompt, stop strings, body fields, thinking switch)
    to a command that asks a teacher model (distill, reason); it receives them as
    ``teacher: Teacher``: one definition of those flags for both."""
    signature = inspect.signature(func, eval_str=True)
    own = [_keyword(p) for p in signature.parameters.values() if p.name != "teacher"]

    @functools.wraps(func)
    def command(**kwargs: Any) -> T:
        values = {p.name: kwargs.pop(p.name) for p in TEACHER_PARAMETERS}
        teachers = kwargs.pop(TEACHERS_FILE.name)
        if teachers is not None:
            kwargs["backend"] = dataclasses.replace(kwargs["backend"], teachers_file=teachers)
        with reported_errors():
            teacher = Teacher.of(values)
        return func(teacher=teacher, **kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *TEACHER_PARAMETERS, TEACHERS_FILE]
    )
    return command


def with_executor_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add ``--executor`` and its Ray flags to a row stage (under
    :func:`with_backend_options`); they reach it inside ``backend: BackendSettings``."""
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def command(**kwargs: Any) -> T:
        values = {p.name: kwargs.pop(p.name) for p in EXECUTOR_PARAMETERS}
        with reported_errors():
            executor = ExecutorSettings(values["executor"], values["ray_address"],
                                        values["ray_actors"])
        kwargs["backend"] = dataclasses.replace(kwargs["backend"], executor=executor)
        return func(**kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*(_keyword(p) for p in signature.parameters.values()),
                    *EXECUTOR_PARAMETERS]
    )
    return command
