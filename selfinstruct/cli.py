"""The ``selfinstruct`` command: thin wrappers over the library.

Commands parse flags, call the library and report. Any :class:`UserError` becomes one
line on stderr and a non-zero exit code, never a traceback. Flags shared by several
commands (the backend's) are declared once and added to each command's signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from selfinstruct.bootstrap import GenerateStats
from selfinstruct.dedup import count_records, dedup_file
from selfinstruct.dryrun import plan_generate
from selfinstruct.errors import StageAborted, UserError
from selfinstruct.export import ExportResult, export_run
from selfinstruct.generate import create_run_backend, open_run, resolve_config
from selfinstruct.instances import InstanceOptions
from selfinstruct.llm import Backend
from selfinstruct.pipeline import (
    BackendFlags,
    classify_stage,
    dry_run_reason,
    dry_run_stage,
    instances_stage,
    open_reason,
    open_stage,
    reason_stage,
    resolve_backend,
    run_template,
)
from selfinstruct.reasoning import ReasonOptions
from selfinstruct.report import generate_summary, reason_summary, resume_command, stage_summary
from selfinstruct.shard import EVERYTHING, Shard
from selfinstruct.stage import StageStats
from selfinstruct.trace_filters import TraceSettings

app = typer.Typer(
    help="Grow instruction-tuning data from seed tasks with an LLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

#: Exit codes for a run stopped by a signal, as shells report them (128 + signal number).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}

T = TypeVar("T")

DRY_RUN = Annotated[
    bool, typer.Option(help="Print what would be sent (counts, a sample prompt, estimated "
                       "tokens) and stop: nothing is loaded, sent or written.")
]

#: How a stage reports progress: (done, detail, total).
ProgressUpdate = Callable[[int, str, "int | None"], None]

#: Placeholder default for the ``backend`` parameter that ``with_backend_options`` fills.
NO_FLAGS = BackendFlags()


class Style(str, Enum):
    """Prompt styles."""

    self_instruct = "self-instruct"
    alpaca = "alpaca"


class LanguageOption(str, Enum):
    """Languages; ``auto`` decides from the seeds."""

    auto = "auto"
    en = "en"
    zh = "zh"


class BackendOption(str, Enum):
    """Which kind of backend; ``auto`` decides from the other flags."""

    auto = "auto"
    openai = "openai"
    local = "local"
    vllm = "vllm"


class ApiOption(str, Enum):
    """Which OpenAI endpoint to call."""

    chat = "chat"
    completions = "completions"


class TokenizerOption(str, Enum):
    """ROUGE tokenizers."""

    multilingual = "multilingual"
    rouge = "rouge"


class DataOption(str, Enum):
    """What to export from a directory."""

    auto = "auto"
    instances = "instances"
    reasoning = "reasoning"


class ThinkOption(str, Enum):
    """Where a reasoning trace goes in the export."""

    inline = "inline"
    field = "field"


class StructuredOption(str, Enum):
    """Whether stages ask for JSON answers (structured output)."""

    auto = "auto"
    json = "json"
    off = "off"


STRUCTURED = Annotated[
    StructuredOption | None,
    typer.Option(help="auto: ask for JSON answers in classify, instances and alpaca-style "
                 "generate (a grammar for local models, vLLM's structured outputs, "
                 "response_format for servers, which fall back to text if they refuse it); "
                 "json: every stage, a server's refusal is an error; off: plain text "
                 "prompts. Default: the run's setting, else auto.", show_default=False),
]


class FormatOption(str, Enum):
    """Export formats."""

    alpaca = "alpaca"
    sharegpt = "sharegpt"
    messages = "messages"


def _option(annotation: Any, default: Any, help_text: str, **kwargs: Any) -> inspect.Parameter:
    return inspect.Parameter(
        "_", inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, typer.Option(help=help_text, **kwargs)], default=default,
    )


def _keyword(parameter: inspect.Parameter) -> inspect.Parameter:
    """Typer passes everything by name; keyword-only lets signatures be concatenated."""
    return parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)


def _named(name: str, parameter: inspect.Parameter) -> inspect.Parameter:
    return parameter.replace(name=name)


BACKEND_PARAMETERS = [
    _named("backend", _option(BackendOption, BackendOption.auto, "auto: openai with "
                              "--base-url, else the embedded local model. vllm: the offline "
                              "engine in this process (needs a GPU).")),
    _named("base_url", _option(list[str] | None, None, "OpenAI-compatible server, e.g. "
                               "http://127.0.0.1:8000/v1; repeat it to balance over several.")),
    _named("base_url_file", _option(Path | None, None, "A file of server URLs, one a line.")),
    _named("model", _option(str | None, None, "Model name on the server, a .gguf path "
                            "(local), or a Hugging Face id / path (vllm).")),
    _named("api_key", _option(str | None, None, "API key (never written to disk).",
                              envvar="OPENAI_API_KEY", show_default=False, show_envvar=True)),
    _named("api", _option(ApiOption | None, None, "chat, or completions for base models.")),
    _named("concurrency", _option(int | None, None, "Requests in flight (default 8; vllm 256, "
                                  "the size of a round; the local model runs one at a time).")),
    _named("timeout", _option(float | None, None, "Seconds per request (default 600).")),
    _named("max_retries", _option(int | None, None, "HTTP retries per request (default 5).")),
    _named("max_failures", _option(int | None, None, "Stop after this many failed requests "
                                   "in a row (default 20; requests that fail together, as in "
                                   "an outage, count once).")),
    _named("tensor_parallel_size", _option(int | None, None, "vllm: GPUs per model (1).")),
    _named("dtype", _option(str | None, None, "vllm: auto, bfloat16, float16 …")),
    _named("max_model_len", _option(int | None, None, "vllm: context length.")),
    _named("gpu_memory_utilization", _option(float | None, None, "vllm: share of GPU memory "
                                             "(0.9).")),
]


def with_backend_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add the backend flags to a command; it receives them as ``backend: BackendFlags``."""
    signature = inspect.signature(func, eval_str=True)
    own = [_keyword(p) for p in signature.parameters.values() if p.name != "backend"]

    @functools.wraps(func)
    def command(**kwargs: Any) -> T:
        return func(backend=backend_flags(kwargs), **kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *BACKEND_PARAMETERS]
    )
    return command


def backend_flags(kwargs: dict[str, Any]) -> BackendFlags:
    """Take the backend flags out of a command's keyword arguments."""
    values = {p.name: kwargs.pop(p.name) for p in BACKEND_PARAMETERS}
    for name in ("api", "backend"):
        if isinstance(values[name], Enum):
            values[name] = values[name].value
    values["base_url"] = tuple(values["base_url"] or ())
    return BackendFlags(**values)


def with_structured(flags: BackendFlags, structured: StructuredOption | None) -> BackendFlags:
    """The backend flags with ``--structured`` (None: not given, the run's choice holds)."""
    if structured is None:
        return flags
    return dataclasses.replace(flags, structured=structured.value)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Print a :class:`UserError` as one line and exit with its code."""
    try:
        yield
    except UserError as err:
        # Messages quote servers, paths and model names: no markup or :emoji: codes in them.
        err_console.print(f"[bold red]Error:[/] {escape(str(err))}", emoji=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None


def say(line: str) -> None:
    """One line of report on stderr (stdout stays free for data)."""
    err_console.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def summary_on_abort(summary: Callable[[Any], list[str]]) -> Iterator[None]:
    """A stage stopped by an error still reports what it did, above the error line."""
    try:
        yield
    except StageAborted as err:
        for line in summary(err.stats):
            say(line)
        raise


def say_exported(result: ExportResult) -> None:
    """Where the export went and the LLaMA-Factory dataset name to train on."""
    say(f"exported {result.count} examples to {result.path}; LLaMA-Factory dataset "
        f"{result.dataset_name!r} registered in {result.dataset_info}")


class _SayHandler(logging.Handler):
    """The library's warnings (a server that refused the JSON schema) as report lines."""

    def emit(self, record: logging.LogRecord) -> None:
        """One line on stderr, like every other report line."""
        say(record.getMessage())


def report_library_warnings() -> None:
    """Show what the library logs at WARNING and above (each backend says a thing once)."""
    logger = logging.getLogger("selfinstruct")
    if not any(isinstance(handler, _SayHandler) for handler in logger.handlers):
        logger.addHandler(_SayHandler(logging.WARNING))


@app.callback()
def selfinstruct() -> None:
    """Grow instruction-tuning data from seed tasks with an LLM."""
    report_library_warnings()


def _generate(
    *,
    out: Path,
    num_instructions: int,
    seeds: Path | None,
    language: LanguageOption,
    prompt_style: Style,
    similarity_threshold: float,
    tokenizer: TokenizerOption,
    most_similar: int,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    seed_examples: int | None,
    machine_examples: int,
    seed: int | None,
    blacklist: list[str] | None,
    min_length: int | None,
    max_length: int | None,
    prompt_dir: Path | None,
    force: bool,
    dry_run: bool,
    structured: StructuredOption | None,
    backend: BackendFlags,
) -> None:
    backend = with_structured(backend, structured)
    spec, pace = resolve_backend({}, backend)
    given = {
        "backend": spec.kind,
        "model": spec.model,
        "base_urls": spec.base_urls,
        "api": spec.api,
        "concurrency": pace.concurrency,
        "timeout": spec.timeout,
        "max_retries": spec.max_retries,
        "max_consecutive_failures": pace.max_failures,
        "tensor_parallel_size": spec.engine.tensor_parallel_size,
        "dtype": spec.engine.dtype,
        "max_model_len": spec.engine.max_model_len,
        "gpu_memory_utilization": spec.engine.gpu_memory_utilization,
        "structured": spec.structured,
    }
    config, seed_tasks = resolve_config(
        out=out,
        seeds_path=seeds,
        language=language.value,
        prompt_style=prompt_style.value,  # type: ignore[arg-type]
        options={
            "num_instructions": num_instructions,
            "similarity_threshold": similarity_threshold,
            "tokenizer": tokenizer.value,
            "most_similar": most_similar,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "num_seed_examples": seed_examples,
            "num_machine_examples": machine_examples,
            "seed": seed,
            "blacklist": tuple(blacklist or ()),
            "min_length": min_length,
            "max_length": max_length,
            "prompt_dir": str(prompt_dir) if prompt_dir else None,
            **given,
        },
    )
    say(
        f"selfinstruct: {config.language} seeds from {config.seeds} ({len(seed_tasks)} tasks), "
        f"{config.prompt_style} prompts, model "
        f"{config.model or 'embedded SmolLM2-135M-Instruct'}"
    )
    if dry_run:
        template = run_template(config.to_json(), config.prompt_style,
                                structured=config.asks_for_json)
        for line in plan_generate(config, seed_tasks, template).lines():
            say(line)
        return
    client = create_run_backend(config, backend.api_key)
    bootstrap = open_run(config, seed_tasks, client, force=force)

    def work(stop: asyncio.Event, update: ProgressUpdate) -> Awaitable[GenerateStats]:
        def progress(stats: GenerateStats) -> None:
            update(stats.kept, f"{stats.requests.sent} req, {stats.requests.failed} failed, "
                   f"{sum(stats.rejected.values())} rejected", stats.target)

        return bootstrap.run(stop, progress)

    with summary_on_abort(lambda stats: generate_summary(stats, out)):
        stats, stopped_by = drive(
            "generate", bootstrap.stats.target, bootstrap.stats.kept, client, work
        )
    for line in generate_summary(stats, out):
        say(line)
    exit_if_stopped(stopped_by)


@app.command()
@with_backend_options
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumed if it exists).")]
    = Path("selfinstruct-run"),
    num_instructions: Annotated[
        int, typer.Option("--num-instructions", "-n", help="Machine instructions to keep.")
    ] = 100,
    seeds: Annotated[
        Path | None,
        typer.Option(help="Seed tasks: Self-Instruct JSONL, Alpaca JSON/JSONL or plain text. "
                     "Default: our bundled set for --language."),
    ] = None,
    language: Annotated[LanguageOption, typer.Option(help="auto decides from the seeds.")]
    = LanguageOption.auto,
    prompt_style: Annotated[Style, typer.Option(help="self-instruct: 8 examples, the model "
                                                "continues a list; alpaca: 3 seed tasks with "
                                                "input/output, the model writes 20.")]
    = Style.self_instruct,
    similarity_threshold: Annotated[
        float, typer.Option(help="Reject a candidate whose ROUGE-L vs the pool is above this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerOption, typer.Option(help="ROUGE tokenizer.")]
    = TokenizerOption.multilingual,
    most_similar: Annotated[
        int, typer.Option(help="Record the K most similar pool texts and the best score with "
                          "each kept instruction (a full top-K search per candidate: about "
                          "6x the CPU per answer at a 50,000 pool).")
    ] = 0,
    temperature: Annotated[float | None, typer.Option(help="Default per prompt style.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Default per prompt style.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Default per prompt style.")] = None,
    seed_examples: Annotated[
        int | None, typer.Option(help="Seed tasks per prompt (6 self-instruct, 3 alpaca).")
    ] = None,
    machine_examples: Annotated[
        int, typer.Option(help="Machine instructions per prompt (self-instruct).")
    ] = 2,
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    blacklist: Annotated[
        list[str] | None, typer.Option(help="Extra word that rejects a task (repeatable).")
    ] = None,
    min_length: Annotated[
        int | None, typer.Option(help="Words (en) or characters (zh); default per language.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Words (en) or characters (zh); default per language.")
    ] = None,
    prompt_dir: Annotated[
        Path | None, typer.Option(help="Folder with your own en/ and zh/ templates.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Resume even though pool-defining settings changed.")
    ] = False,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """Grow a pool of new instructions from seed tasks."""
    with reported_errors():
        _generate(**locals())


RUN_DIR = Annotated[Path, typer.Argument(help="A run directory made by selfinstruct generate.")]
PER_TASK = Annotated[int, typer.Option(help="Instances to keep per instruction.")]
SHARD = Annotated[
    str | None, typer.Option(help="Only records i, i+n, i+2n… (0-based), e.g. 3/8, to split "
                             "the work across machines.")
]
INSTANCE_MAX_TOKENS = Annotated[
    int, typer.Option(help="Token limit of each instance-generation answer.")
]


def _classify(run_dir: Path, backend: BackendFlags) -> None:
    context = open_stage(run_dir, backend)
    with summary_on_abort(stage_summary):
        stats, stopped_by = drive(
            "classify", None, 0, context.backend,
            lambda stop, update: classify_stage(context, stop, _stage_progress(update)),
        )
    for line in stage_summary(stats):
        say(line)
    exit_if_stopped(stopped_by)


def _instances(
    run_dir: Path, per_task: int, max_tokens: int, backend: BackendFlags, shard: Shard = EVERYTHING
) -> None:
    if per_task < 1:
        raise UserError("--per-task must be at least 1")
    if max_tokens < 16:
        raise UserError("--instance-max-tokens must be at least 16")
    context = open_stage(run_dir, backend)
    options = InstanceOptions(per_task=per_task, max_tokens=max_tokens, shard=shard)
    with summary_on_abort(stage_summary):
        stats, stopped_by = drive(
            "instances", None, 0, context.backend,
            lambda stop, update: instances_stage(context, options, stop, _stage_progress(update)),
        )
    for line in stage_summary(stats):
        say(line)
    exit_if_stopped(stopped_by)


def _stage_progress(update: ProgressUpdate) -> Callable[[StageStats], None]:
    def progress(stats: StageStats) -> None:
        update(stats.done, f"{stats.requests.failed} failed, "
               f"{sum(stats.rejected.values())} rejected", stats.total)

    return progress


@app.command()
@with_backend_options
def classify(
    run_dir: RUN_DIR,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """Mark which instructions are classification tasks (few-shot, greedy decoding)."""
    backend = with_structured(backend, structured)
    with reported_errors():
        if dry_run:
            for line in dry_run_stage(run_dir, "classify", backend):
                say(line)
            return
        _classify(run_dir, backend)


@app.command()
@with_backend_options
def instances(
    run_dir: RUN_DIR,
    per_task: PER_TASK = 5,
    instance_max_tokens: INSTANCE_MAX_TOKENS = 1024,
    shard: SHARD = None,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """Generate input/output instances: input-first, or output-first for classification."""
    backend = with_structured(backend, structured)
    with reported_errors():
        if dry_run:
            options = InstanceOptions(per_task=per_task, max_tokens=instance_max_tokens,
                                      shard=Shard.parse(shard))
            for line in dry_run_stage(run_dir, "instances", backend, options):
                say(line)
            return
        _instances(run_dir, per_task, instance_max_tokens, backend, Shard.parse(shard))


@app.command()
def export(
    run_dir: RUN_DIR,
    format: Annotated[FormatOption, typer.Option("--format", "-f", help="Output format.")]
    = FormatOption.alpaca,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: RUN_DIR/export/FILE.")
    ] = None,
    include_seeds: Annotated[
        bool, typer.Option(help="Add the seed tasks' own instances.")
    ] = False,
    data: Annotated[
        DataOption, typer.Option(help="auto: reasoning.jsonl if the directory has one, "
                                 "else the instances.")
    ] = DataOption.auto,
    think: Annotated[
        ThinkOption, typer.Option(help="Reasoning traces inline as <think>…</think> before "
                                  "the answer (LLaMA-Factory), or in their own field "
                                  "(reasoning_content).")
    ] = ThinkOption.inline,
) -> None:
    """Write training data (alpaca, sharegpt, messages) and its dataset_info.json entry."""
    with reported_errors():
        result = export_run(run_dir, format.value, output,  # type: ignore[arg-type]
                            include_seeds=include_seeds, data=data.value,  # type: ignore[arg-type]
                            think=think.value)  # type: ignore[arg-type]
        say_exported(result)


def _run_command(func: Callable[..., None]) -> Callable[..., None]:
    """``run`` takes every flag of ``generate`` plus the later stages' own."""
    base = inspect.signature(generate)
    extra = [
        _keyword(p)
        for p in inspect.signature(func, eval_str=True).parameters.values()
        if p.name != "generate_kwargs"
    ]

    @functools.wraps(func)
    def command(**kwargs: Any) -> None:
        own = {p.name: kwargs.pop(p.name) for p in extra}
        func(generate_kwargs=kwargs, **own)

    command.__signature__ = base.replace(  # type: ignore[attr-defined]
        parameters=[*base.parameters.values(),
                    *extra]
    )
    return command


@app.command("run")
@_run_command
def run_all(
    per_task: PER_TASK = 5,
    instance_max_tokens: INSTANCE_MAX_TOKENS = 1024,
    format: Annotated[FormatOption, typer.Option("--format", "-f", help="Export format.")]
    = FormatOption.alpaca,
    include_seeds: Annotated[
        bool, typer.Option(help="Add the seed tasks' own instances to the export.")
    ] = False,
    generate_kwargs: dict[str, Any] | None = None,
) -> None:
    """generate → classify → instances → export in one go; each stage resumes."""
    kwargs = dict(generate_kwargs or {})
    generate(**kwargs)
    if kwargs["dry_run"]:
        say("(--dry-run shows the generate stage; classify, instances and export follow it)")
        return
    with reported_errors():
        out: Path = kwargs["out"]
        backend = with_structured(backend_flags(dict(kwargs)), kwargs["structured"])
        if kwargs["prompt_style"] != Style.alpaca:
            _classify(out, backend)
            _instances(out, per_task, instance_max_tokens, backend)
        result = export_run(out, format.value, include_seeds=include_seeds)  # type: ignore[arg-type]
        say_exported(result)


@app.command()
@with_backend_options
def reason(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="A run directory, Alpaca JSON/JSONL, ShareGPT, JSONL or CSV.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (default: INPUT, "
                                  "when it is a run directory).")
    ] = None,
    samples: Annotated[int, typer.Option(help="Traces to draw per prompt.")] = 1,
    max_tokens: Annotated[int, typer.Option(help="Token limit per answer, trace included.")]
    = 8192,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.6,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 0.95,
    enable_thinking: Annotated[
        bool | None, typer.Option("--enable-thinking/--no-enable-thinking",
                                  help="Qwen3's switch (chat_template_kwargs); unset: not sent.")
    ] = None,
    field: Annotated[str, typer.Option(help="Field (or CSV column) with the prompt.")]
    = "instruction",
    reference_field: Annotated[
        str | None, typer.Option(help="Field with a reference answer: keep only traces whose "
                                 "answer matches it, and record pass rates.")
    ] = None,
    language: Annotated[
        LanguageOption, typer.Option(help="Reject reasoning in another language (auto: off).")
    ] = LanguageOption.auto,
    max_reasoning_chars: Annotated[
        int, typer.Option(help="Reject traces longer than this.")
    ] = 100_000,
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    shard: SHARD = None,
    dry_run: DRY_RUN = False,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """Distil reasoning traces and answers from a thinking model (R1, Qwen3, QwQ…)."""
    with reported_errors():
        options = ReasonOptions(samples=samples, max_tokens=max_tokens, temperature=temperature,
                                top_p=top_p, enable_thinking=enable_thinking, seed=seed)
        traces = TraceSettings(
            language=None if language == LanguageOption.auto else language.value,  # type: ignore[arg-type]
            max_reasoning_chars=max_reasoning_chars,
        )
        if dry_run:
            for line in dry_run_reason(source, out, backend, options=options, field=field,
                                       reference_field=reference_field,
                                       shard=Shard.parse(shard)):
                say(line)
            return
        job = open_reason(source, out, backend, options=options, traces=traces, field=field,
                          reference_field=reference_field, shard=Shard.parse(shard))
        with summary_on_abort(stage_summary):
            stats, stopped_by = drive(
                "reason", None, 0, job.backend,
                lambda stop, update: reason_stage(job, stop, _stage_progress(update)),
            )
        for line in stage_summary(stats):
            say(line)
        for line in reason_summary(stats, job.out_dir):
            say(line)
        exit_if_stopped(stopped_by)


@app.command()
def dedup(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="JSONL or JSON array.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Kept records, JSONL.")],
    similarity_threshold: Annotated[
        float, typer.Option(help="Drop a record whose ROUGE-L vs kept ones is above this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerOption, typer.Option(help="ROUGE tokenizer.")]
    = TokenizerOption.multilingual,
    against: Annotated[
        Path | None, typer.Option(help="Also drop records similar to this file's texts.")
    ] = None,
    field: Annotated[str, typer.Option(help="The field holding the text.")] = "instruction",
) -> None:
    """Drop near-duplicates from an existing dataset, streaming, in order."""
    with reported_errors():
        if not 0.0 <= similarity_threshold <= 1.0:
            raise UserError("--similarity-threshold must be between 0 and 1")
        total = count_records(input_path, field)
        with _progress_bar("dedup") as progress:
            task = progress.add_task("dedup", total=total, detail="")
            summary = dedup_file(
                input_path, output, threshold=similarity_threshold,
                tokenizer=tokenizer.value, field=field, against=against,
                progress=lambda read, kept: progress.update(
                    task, completed=read, detail=f"{kept} kept"
                ),
            )
        say(f"kept {summary.kept} of {summary.read} records ({summary.dropped} dropped) "
            f"in {summary.elapsed_seconds:.1f}s, {summary.records_per_second:,.0f} records/s "
            f"-> {output}")


def _progress_bar(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
    )


def drive(
    label: str,
    total: int | None,
    completed: int,
    backend: Backend,
    work: Callable[[asyncio.Event, ProgressUpdate], Awaitable[T]],
) -> tuple[T, signal.Signals | None]:
    """Run one stage under a progress bar; SIGINT/SIGTERM stop it cleanly."""
    return asyncio.run(_drive(label, total, completed, backend, work))


async def _drive(
    label: str,
    total: int | None,
    completed: int,
    backend: Backend,
    work: Callable[[asyncio.Event, ProgressUpdate], Awaitable[T]],
) -> tuple[T, signal.Signals | None]:
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()
    for signum in SIGNAL_EXIT:
        loop.add_signal_handler(signum, _stopper(stop, received, signum))
    try:
        with _progress_bar(label) as progress:
            task = progress.add_task(label, total=total, completed=completed, detail="")

            def update(done: int, detail: str, total: int | None) -> None:
                progress.update(task, completed=done, detail=detail, total=total)

            result = await work(stop, update)
    finally:
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
        await backend.aclose()
    return result, received[0] if received else None


def _stopper(
    stop: asyncio.Event, received: list[signal.Signals], signum: signal.Signals
) -> Callable[[], None]:
    def handler() -> None:
        received.append(signum)
        stop.set()

    return handler


def exit_if_stopped(stopped_by: signal.Signals | None) -> None:
    """After Ctrl-C / SIGTERM: say how to resume and exit 130 / 143."""
    if stopped_by is not None:
        say(f"stopped; resume with: {resume_command(sys.argv[1:])}")
        raise typer.Exit(SIGNAL_EXIT[stopped_by])


def main() -> None:
    """Console-script entry point."""
    app()
