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
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from selfinstruct.api import aclassify, ainstances, later_stages, prepare_generate
from selfinstruct.api_data import adistill, ascore, prepare_distill, score_settings
from selfinstruct.cli.summary import (
    distill_summary,
    generate_summary,
    minhash_summary,
    mix_summary,
    reason_summary,
    resume_command,
    score_summary_lines,
    stage_summary,
)
from selfinstruct.config import (
    DedupMethod,
    LanguageChoice,
    MinHashDedupSettings,
    TokenizerName,
)
from selfinstruct.errors import StageAborted, UserError
from selfinstruct.filters.traces import TraceSettings
from selfinstruct.llm import Backend, BackendChoice
from selfinstruct.llm.base import Api, StructuredMode
from selfinstruct.llm.thinking import ThinkingStyle
from selfinstruct.runs.shard import EVERYTHING, Shard
from selfinstruct.runs.templates import PromptStyle
from selfinstruct.stages.dedup import count_records, dedup_file, dedup_minhash
from selfinstruct.stages.dryrun import plan_generate
from selfinstruct.stages.export import (
    ExportData,
    ExportFormat,
    ExportResult,
    ThinkStyle,
    export_run,
)
from selfinstruct.stages.generate import GenerateStats
from selfinstruct.stages.instances import InstanceOptions
from selfinstruct.stages.mix import MixSettings, MixSource, mix_sources
from selfinstruct.stages.per_record import StageStats
from selfinstruct.stages.pipeline import (
    BACKEND_DEFAULTS,
    DEFAULT_CONCURRENCY,
    BackendFlags,
    ExecutorFlags,
    ExecutorName,
    dry_run_distill,
    dry_run_reason,
    dry_run_stage,
    open_reason,
    reason_stage,
    run_template,
)
from selfinstruct.stages.reason import ReasonOptions
from selfinstruct.stages.report import build_report
from selfinstruct.stages.review import ReviewSettings, import_review, write_review_sheet
from selfinstruct.stages.score_setup import dry_run_score, output_dir
from selfinstruct.text.row_answers import ParseMode, parse_renames

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

#: ``--thinking on|off``: a thinking model's reasoning switch.
Switch = Literal["on", "off"]

DRY_RUN = Annotated[
    bool, typer.Option(help="Print what would be sent (counts, a sample prompt, estimated "
                       "tokens) and stop: nothing is loaded, sent or written.")
]

#: How a stage reports progress: (done, detail, total).
ProgressUpdate = Callable[[int, str, "int | None"], None]

#: Placeholder default for the ``backend`` parameter that ``with_backend_options`` fills.
NO_FLAGS = BackendFlags()


























STRUCTURED = Annotated[
    StructuredMode | None,
    typer.Option(help="auto: ask for JSON answers in classify, instances and alpaca-style "
                 "generate (a grammar for local models, vLLM's structured outputs, "
                 "response_format for servers, which fall back to text if they refuse it); "
                 "json: every stage, a server's refusal is an error; off: plain text "
                 "prompts. Default: the run's setting, else auto.", show_default=False),
]




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
    _named("backend", _option(BackendChoice, "auto", "auto: openai with "
                              "--base-url, else the embedded local model. vllm: the offline "
                              "engine in this process (needs a GPU).")),
    _named("base_url", _option(list[str] | None, None, "OpenAI-compatible server, e.g. "
                               "http://127.0.0.1:8000/v1; repeat it to balance over several.")),
    _named("base_url_file", _option(Path | None, None, "A file of server URLs, one a line.")),
    _named("model", _option(str | None, None, "Model name on the server, a .gguf path "
                            "(local), or a Hugging Face id / path (vllm).")),
    _named("api_key", _option(str | None, None, "API key (never written to disk).",
                              envvar="OPENAI_API_KEY", show_default=False, show_envvar=True)),
    _named("api", _option(Api | None, None, "chat, or completions for base models.")),
    _named("concurrency", _option(int | None, None, "Requests in flight (default "
                                  f"{DEFAULT_CONCURRENCY['openai']}; vllm "
                                  f"{DEFAULT_CONCURRENCY['vllm']}, the size of a round; the "
                                  "local model runs one at a time).")),
    _named("timeout", _option(float | None, None, "Seconds per request (default "
                              f"{BACKEND_DEFAULTS['timeout']:g}).")),
    _named("max_retries", _option(int | None, None, "HTTP retries per request (default "
                                  f"{BACKEND_DEFAULTS['max_retries']}).")),
    _named("max_failures", _option(int | None, None, "Stop after this many failed requests "
                                   f"in a row (default {BACKEND_DEFAULTS['max_failures']}; "
                                   "requests that fail together, as in an outage, count "
                                   "once).")),
    _named("tensor_parallel_size", _option(int | None, None, "vllm: GPUs per model "
                                          f"({BACKEND_DEFAULTS['tensor_parallel_size']}).")),
    _named("dtype", _option(str | None, None, "vllm: auto, bfloat16, float16 …")),
    _named("max_model_len", _option(int | None, None, "vllm: context length.")),
    _named("gpu_memory_utilization", _option(float | None, None, "vllm: share of GPU memory "
                                             f"({BACKEND_DEFAULTS['gpu_memory_utilization']}).")),
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




EXECUTOR_PARAMETERS = [
    _named("executor", _option(ExecutorName, "local", "local: this process "
                               "sends every request; ray: Ray Data actors send them (pip "
                               "install 'selfinstruct\\[ray]'), each holding one client or, "
                               "with --backend vllm, one engine per GPU; this process still "
                               "parses, filters and writes every answer.")),
    _named("ray_address", _option(str | None, None, "ray: the cluster to join, e.g. "
                                  "ray://head:10001 or head:6379 (default: RAY_ADDRESS, a "
                                  "ray start cluster on this machine, else a local Ray; "
                                  "'local' always starts one).")),
    _named("ray_actors", _option(int | None, None, "ray: actors in the pool (default: one "
                                 "per 128 requests in flight; vllm: one per GPU, or per "
                                 "--tensor-parallel-size GPUs).")),
]


def with_executor_options(func: Callable[..., T]) -> Callable[..., T]:
    """Add ``--executor`` and its Ray flags to a row stage (under
    :func:`with_backend_options`); they reach it inside ``backend: BackendFlags``."""
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def command(**kwargs: Any) -> T:
        values = {p.name: kwargs.pop(p.name) for p in EXECUTOR_PARAMETERS}
        with reported_errors():
            flags = ExecutorFlags(values["executor"], values["ray_address"],
                                  values["ray_actors"])
        kwargs["backend"] = dataclasses.replace(kwargs["backend"], executor=flags)
        return func(**kwargs)

    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*(_keyword(p) for p in signature.parameters.values()),
                    *EXECUTOR_PARAMETERS]
    )
    return command


def backend_flags(kwargs: dict[str, Any]) -> BackendFlags:
    """Take the backend flags out of a command's keyword arguments."""
    values = {p.name: kwargs.pop(p.name) for p in BACKEND_PARAMETERS}
    values["base_url"] = tuple(values["base_url"] or ())
    return BackendFlags(**values)


def shallow(flags: BackendFlags) -> dict[str, Any]:
    """The backend flags as the library's keyword arguments (nested settings kept as
    objects, unlike ``dataclasses.asdict``)."""
    return {field.name: getattr(flags, field.name) for field in dataclasses.fields(flags)}


def with_structured(flags: BackendFlags, structured: StructuredMode | None) -> BackendFlags:
    """The backend flags with ``--structured`` (None: not given, the run's choice holds)."""
    if structured is None:
        return flags
    return dataclasses.replace(flags, structured=structured)


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
    """Where the export went and the LLaMA-Factory dataset name to train on (and what the
    scores and reviews took out)."""
    curated = result.curated
    if curated is not None and curated.min_score is not None:
        say(f"--min-score {curated.min_score:g}: {curated.below_min_score} examples scored "
            f"lower, {curated.unscored} without a score (see rejected.jsonl) left out")
    if curated is not None and (curated.dropped_in_review or curated.edited):
        say(f"review.jsonl: {curated.dropped_in_review} dropped, {curated.edited} edited")
    skipped = (f" ({result.skipped} left out: empty instruction or answer)"
               if result.skipped else "")
    if result.dataset_name is None:
        say(f"exported {result.count} examples to {result.path}{skipped}; {result.note}")
        return
    say(f"exported {result.count} examples to {result.path}{skipped}; LLaMA-Factory dataset "
        f"{result.dataset_name!r} registered in {result.dataset_info}")


class _ReportLines(logging.Handler):
    """The library's notes (INFO) as plain report lines and its warnings (a server that
    cannot be reached while others can) as ``Warning:`` lines on stderr, like the errors,
    not in logging's own format."""

    def emit(self, record: logging.LogRecord) -> None:
        """Say the message."""
        prefix = "Warning: " if record.levelno >= logging.WARNING else ""
        say(f"{prefix}{record.getMessage()}")


def report_library_lines() -> None:
    """Send the library's notes and warnings to :class:`_ReportLines`, once per process
    (with a handler of its own in place, logging's bare last-resort output stays silent)."""
    logger = logging.getLogger("selfinstruct")
    if not any(isinstance(handler, _ReportLines) for handler in logger.handlers):
        logger.addHandler(_ReportLines(logging.INFO))
        logger.setLevel(logging.INFO)
        logger.propagate = False


@app.callback()
def selfinstruct() -> None:
    """Grow instruction-tuning data from seed tasks with an LLM."""
    report_library_lines()


def _generate(
    *,
    out: Path,
    num_instructions: int,
    seeds: Path | None,
    language: LanguageChoice,
    prompt_style: PromptStyle,
    similarity_threshold: float,
    tokenizer: TokenizerName,
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
    structured: StructuredMode | None,
    backend: BackendFlags,
) -> None:
    backend = with_structured(backend, structured)
    job = prepare_generate(
        out, num_instructions=num_instructions, seeds=seeds, language=language,
        prompt_style=prompt_style, similarity_threshold=similarity_threshold,
        tokenizer=tokenizer, most_similar=most_similar, temperature=temperature,
        top_p=top_p, max_tokens=max_tokens, seed_examples=seed_examples,
        machine_examples=machine_examples, seed=seed, blacklist=tuple(blacklist or ()),
        min_length=min_length, max_length=max_length, prompt_dir=prompt_dir,
        **shallow(backend),
    )
    config, seed_tasks = job.config, job.seeds
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
    bootstrap = job.open(force=force)
    client = bootstrap.backend

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
    language: Annotated[LanguageChoice, typer.Option(help="auto decides from the seeds.")]
    = "auto",
    prompt_style: Annotated[PromptStyle, typer.Option(help="self-instruct: 8 examples, the model "
                                                "continues a list; alpaca: 3 seed tasks with "
                                                "input/output, the model writes 20.")]
    = "self-instruct",
    similarity_threshold: Annotated[
        float, typer.Option(help="Reject a candidate whose ROUGE-L vs the pool is above this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerName, typer.Option(help="ROUGE tokenizer.")]
    = "multilingual",
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


def _classify(run_dir: Path, backend: BackendFlags, *, check: bool = True) -> None:
    with summary_on_abort(stage_summary):
        stats, stopped_by = drive(
            "classify", None, 0, None,
            lambda stop, update: aclassify(run_dir, progress=_stage_progress(update),
                                           interrupt=stop, check=check, **shallow(backend)),
        )
    for line in stage_summary(stats):
        say(line)
    exit_if_stopped(stopped_by)


def _instances(
    run_dir: Path, per_task: int, max_tokens: int, backend: BackendFlags, shard: Shard = EVERYTHING,
    *, check: bool = True,
) -> None:
    with summary_on_abort(stage_summary):
        stats, stopped_by = drive(
            "instances", None, 0, None,
            lambda stop, update: ainstances(
                run_dir, per_task=per_task, instance_max_tokens=max_tokens, shard=shard,
                progress=_stage_progress(update), interrupt=stop, check=check,
                **shallow(backend)),
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
@with_executor_options
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
    run_dir: Annotated[Path, typer.Argument(
        metavar="DATA", help="A run directory, the directory score -o wrote, or a dataset "
                             "file (Alpaca, ShareGPT, messages, JSONL; dedup and mix output).")],
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")]
    = "alpaca",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: DATA/export/FILE, or "
                                  "export/STEM_FILE beside a file.")
    ] = None,
    include_seeds: Annotated[
        bool, typer.Option(help="Add the seed tasks' own instances.")
    ] = False,
    data: Annotated[
        ExportData, typer.Option(help="auto: distilled.jsonl or reasoning.jsonl if the "
                                 "directory has one, else the instances.")
    ] = "auto",
    think: Annotated[
        ThinkStyle, typer.Option(help="Reasoning traces inline as <think>…</think> before "
                                  "the answer (LLaMA-Factory), or in their own field "
                                  "(reasoning_content; not registered for LLaMA-Factory, "
                                  "which cannot read it).")
    ] = "inline",
    min_score: Annotated[
        float | None, typer.Option(help="Keep only examples whose judge score (selfinstruct "
                                   "score) is at least this.")
    ] = None,
    map: Annotated[
        list[str] | None, typer.Option(
            "--map", help="PART=FIELD for distilled records: which field is the "
                          "instruction, input or output (default: the prompt or the field "
                          "distill's --map made, and the answer).")
    ] = None,
) -> None:
    """Write training data (alpaca, sharegpt, messages, text) and its dataset_info.json
    entry."""
    with reported_errors():
        result = export_run(run_dir, format, output,
                            include_seeds=include_seeds, data=data,
                            think=think, min_score=min_score,
                            fields=parse_renames(map or ()))
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
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Export format.")]
    = "alpaca",
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
        # generate checked the server before its first request: once is enough.
        for stage in later_stages(kwargs["prompt_style"]):
            if stage == "classify":
                _classify(out, backend, check=False)
            else:
                _instances(out, per_task, instance_max_tokens, backend, check=False)
        result = export_run(out, format, include_seeds=include_seeds)
        say_exported(result)


@app.command()
@with_backend_options
@with_executor_options
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
        LanguageChoice, typer.Option(help="Reject reasoning in another language (auto: off).")
    ] = "auto",
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
            language=None if language == "auto" else language,
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


def _distill(*, source: Path, out: Path, force: bool, dry_run: bool, backend: BackendFlags,
             **flags: Any) -> None:
    settings = {**flags, **shallow(backend)}
    if dry_run:
        job, link = prepare_distill(source, out, force=force, **settings)
        for line in dry_run_distill(job, out, link.flags):
            say(line)
        return
    with summary_on_abort(stage_summary):
        stats, stopped_by = drive(
            "distill", None, 0, None,
            lambda stop, update: adistill(source, out, force=force, interrupt=stop,
                                          progress=_stage_progress(update), **settings),
        )
    for line in [*stage_summary(stats), *distill_summary(stats, out)]:
        say(line)
    exit_if_stopped(stopped_by)


@app.command()
@with_backend_options
@with_executor_options
def score(
    source: Annotated[Path, typer.Argument(
        help="A run directory, or Alpaca / ShareGPT / messages JSON or JSONL.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (default: SOURCE, "
                                  "when it is a run directory).")
    ] = None,
    rubric: Annotated[
        Path | None, typer.Option(help="Rubric file, one 'dimension: description' a line "
                                  "(default: prompts/LANG/rubric.txt).")
    ] = None,
    scale: Annotated[str, typer.Option(help="Score range, LOW-HIGH.")] = "1-5",
    samples: Annotated[int, typer.Option(help="Verdicts per example (averaged).")] = 1,
    max_tokens: Annotated[int, typer.Option(help="Token limit per verdict.")] = 1024,
    temperature: Annotated[
        float | None, typer.Option(help="Default 0 (greedy), 0.7 with --samples above 1.")
    ] = None,
    language: Annotated[
        LanguageChoice, typer.Option(help="Rubric and prompt language (auto: the data's).")
    ] = "auto",
    field: Annotated[str, typer.Option(help="Field with the prompt in a flat file.")]
    = "instruction",
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    force: Annotated[
        bool, typer.Option(help="Add to scores made with another rubric or scale.")
    ] = False,
    dry_run: DRY_RUN = False,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """Rate every example with a judge model: per-dimension scores, overall, a reason."""
    with reported_errors():
        if dry_run:
            settings = score_settings(scale=scale, samples=samples, max_tokens=max_tokens,
                                      temperature=temperature, seed=seed)
            for line in dry_run_score(source, out, backend, settings=settings, rubric=rubric,
                                      language=language, field=field):
                say(line)
            return
        with summary_on_abort(stage_summary):
            stats, stopped_by = drive(
                "score", None, 0, None,
                lambda stop, update: ascore(
                    source, out, rubric=rubric, scale=scale, samples=samples,
                    max_tokens=max_tokens, temperature=temperature, language=language,
                    field=field, seed=seed, force=force, interrupt=stop,
                    progress=_stage_progress(update), **shallow(backend)),
            )
        for line in stage_summary(stats):
            say(line)
        for line in score_summary_lines(output_dir(source, out)):
            say(line)
        exit_if_stopped(stopped_by)


@app.command()
def review(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="The directory score wrote to (a run directory, or its -o).")],
    sample: Annotated[int, typer.Option(help="Examples to draw, stratified by score band.")]
    = 200,
    seed: Annotated[int, typer.Option(help="Seed of the draw (the same seed, the same sheet).")]
    = 0,
    lowest: Annotated[int, typer.Option(help="Also the K lowest-scored examples.")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The sheet to write "
                                  "(default: RUN/review.xlsx).")
    ] = None,
    import_sheet: Annotated[
        Path | None, typer.Option("--import", help="Read a filled-in sheet back into "
                                  "RUN/review.jsonl instead.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing sheet.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Draw (or check the sheet) and report, "
                                          "writing nothing.")] = False,
) -> None:
    """Write a review sheet (xlsx) of sampled examples, or import the reviewed sheet."""
    with reported_errors():
        if import_sheet is not None:
            done = import_review(run_dir, import_sheet, dry_run=dry_run)
            verdicts = ", ".join(f"{k} {v}" for k, v in done.verdicts.items()) or "none"
            where = "(dry run: nothing written)" if dry_run else f"-> {done.path}"
            say(f"{import_sheet}: {done.reviewed} examples reviewed ({verdicts}); "
                f"{done.total_reviews} reviews in all {where}")
            return
        path, drawn = write_review_sheet(run_dir, output,
                                         ReviewSettings(sample=sample, seed=seed, lowest=lowest),
                                         force=force, dry_run=dry_run)
        bands = ", ".join(f"{band}: {count}" for band, count in drawn.bands.items())
        verb = "would write" if dry_run else "wrote"
        say(f"{verb} {len(drawn.rows)} examples to {path} (by score band: {bands or 'none'}; "
            f"{drawn.lowest} lowest-scored); fill in the yellow columns, then run "
            f"selfinstruct review {run_dir} --import {path}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run directory, the directory score wrote to, or a dataset "
                            "file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: RUN/report.html, or "
                                  "STEM_report.html beside a file.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Read the run and say what the report would "
                                          "show, writing nothing.")] = False,
) -> None:
    """One self-contained HTML page: funnel, scores, review rates, diversity, lengths."""
    with reported_errors():
        result = build_report(run_dir, output, dry_run=dry_run)
        facts = result.facts
        stages = ", ".join(f.stage for f in facts.funnels) or "none"
        shows = (f"{len(facts.instructions)} instructions, {len(facts.examples)} examples, "
                 f"{len(facts.scores)} scored, {len(facts.reviews)} reviewed; stages: {stages}")
        if dry_run:
            say(f"would write {result.path}: {shows}")
            return
        say(f"wrote {result.path} ({', '.join(result.figures)}): {shows}")


@app.command()
@with_backend_options
@with_executor_options
def distill(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Rows: JSONL, JSON list, CSV/TSV (header), XLSX, Parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (resumed if it "
                                      "exists).")],
    user_template: Annotated[Path, typer.Option(
        help="Prompt template: {column}, {row} (the row as JSON), {questions}; {{ }} for "
             "literal braces.")],
    questions: Annotated[Path | None, typer.Option(
        help="Question templates, one a line, listed as {questions}.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    system_file: Annotated[Path | None, typer.Option(help="System prompt from a file.")]
    = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet (default: the first).")]
    = None,
    fill_na: Annotated[str | None, typer.Option(help="Text for empty cells, e.g. 无数据.")]
    = None,
    id_field: Annotated[str | None, typer.Option(
        help="Column with each row's id (default: id if there is one, else the row "
             "number).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows.")] = None,
    sample: Annotated[int | None, typer.Option(help="N rows at random (by --seed).")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    shard: SHARD = None,
    stop: Annotated[list[str] | None, typer.Option(
        help="Stop string (repeatable), e.g. --stop '####'.")] = None,
    temperature: Annotated[float | None, typer.Option(
        help="Sampling temperature (default: not sent, the server's own).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Token limit per answer.")] = 2048,
    samples: Annotated[int, typer.Option(help="Answers per row.")] = 1,
    extra_body: Annotated[str | None, typer.Option(
        help="JSON object merged into each request, e.g. '{\"repetition_penalty\": "
             "1.05, \"top_k\": 20}'.")] = None,
    thinking: Annotated[Switch | None, typer.Option(
        help="A thinking model's reasoning on or off (default: the model's own).")] = None,
    thinking_style: Annotated[ThinkingStyle, typer.Option(
        help="template: chat_template_kwargs (vLLM, SGLang, llama.cpp); top-level: "
             "enable_thinking in the body (DashScope, SiliconFlow); prompt: /think or "
             "/no_think in the message; auto picks top-level for DashScope and "
             "SiliconFlow URLs, else template.")] = "auto",
    thinking_budget: Annotated[int | None, typer.Option(
        help="DashScope's thinking_budget (with --thinking on).")] = None,
    parse: Annotated[ParseMode, typer.Option(
        help="text: the answer after </think>; json: a fenced or bare JSON object or list "
             "(a list gives one record per item); separator: answer before --separator, "
             "rationale after.")] = "text",
    separator: Annotated[str, typer.Option(help="For --parse separator.")] = "####",
    map: Annotated[list[str] | None, typer.Option(
        "--map", help="NEW=KEY: rename a JSON key (repeatable), e.g. --map instruction=q "
                      "--map output=a.")] = None,
    force: Annotated[bool, typer.Option(
        help="Resume even though the template, system prompt or parsing changed.")] = False,
    dry_run: DRY_RUN = False,
    backend: BackendFlags = NO_FLAGS,
) -> None:
    """A teacher model's answer for every row of a table, with your own prompt."""
    with reported_errors():
        _distill(**locals())


@app.command()
def dedup(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="JSONL or JSON array.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Kept records, JSONL.")],
    method: Annotated[
        DedupMethod, typer.Option(help="rouge: exact ROUGE-L, for instructions; minhash: "
                                  "MinHash/LSH over word n-grams, for long documents.")
    ] = "rouge",
    similarity_threshold: Annotated[
        float, typer.Option(help="rouge: drop a record whose ROUGE-L vs kept ones is above "
                            "this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerName, typer.Option(help="Tokenizer (the words of the "
                                                       "n-grams for minhash).")]
    = "multilingual",
    against: Annotated[
        Path | None, typer.Option(help="rouge: also drop records similar to this file's texts.")
    ] = None,
    field: Annotated[str, typer.Option(help="The field holding the text; every step uses "
                                       "it.")] = "instruction",
    removed: Annotated[
        Path | None, typer.Option(help="minhash: write removed records here, with "
                                  "duplicate_of and estimated_jaccard.")
    ] = None,
    ngram: Annotated[int, typer.Option(help="minhash: words per shingle.")] = 5,
    bands: Annotated[int, typer.Option(help="minhash: LSH bands.")] = 14,
    rows: Annotated[int, typer.Option(help="minhash: hashes per band.")] = 8,
    num_perm: Annotated[int | None, typer.Option(help="minhash: signature length; must be "
                                                 "bands x rows (a check).")] = None,
    seed: Annotated[int, typer.Option(help="minhash: seed of the hash functions.")] = 1,
    id_field: Annotated[str, typer.Option(help="minhash: the field duplicate_of names (else "
                                          "the kept record's 0-based position).")] = "id",
) -> None:
    """Drop near-duplicates from an existing dataset, keeping the first of each in order."""
    with reported_errors():
        if method == "minhash":
            _refuse_flags(ctx, "--method minhash", ("similarity_threshold", "against"))
            _dedup_minhash(MinHashDedupSettings(
                input=input_path, output=output, removed=removed, field=field,
                id_field=id_field, ngram=ngram, bands=bands, rows=rows, num_perm=num_perm,
                seed=seed, tokenizer=tokenizer,
            ))
        else:
            _refuse_flags(ctx, "--method rouge",
                          ("removed", "ngram", "bands", "rows", "num_perm", "seed", "id_field"))
            _dedup_rouge(input_path, output, similarity_threshold, tokenizer, against,
                         field)


@app.command()
def mix(
    source: Annotated[list[str], typer.Option(
        "--source", help="FILE:WEIGHT, repeatable: JSONL, JSON, CSV/TSV, XLSX or Parquet "
                         "and its weight (normalised over all sources).")],
    num: Annotated[int, typer.Option("--num", "-n", help="Records in the blend.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The blend, .jsonl or "
                                         ".json; mix.json and dataset_info.json go beside "
                                         "it.")],
    seed: Annotated[int, typer.Option(help="Seed of the draw (the same seed, the same "
                                      "blend).")] = 0,
    allow_upsample: Annotated[bool, typer.Option(
        help="Let a source smaller than its part repeat records (whole rounds, then a "
             "draw) instead of stopping.")] = False,
    key: Annotated[list[str] | None, typer.Option(
        help="Field that makes two records the same, repeatable (default: every field "
             "but id).")] = None,
) -> None:
    """Blend datasets by weight: exact parts, duplicates removed across sources, each
    record's source recorded."""
    with reported_errors():
        settings = MixSettings(tuple(MixSource.parse(text) for text in source), num, output,
                               seed=seed, allow_upsample=allow_upsample, key=tuple(key or ()))
        result = mix_sources(settings)
        for line in mix_summary(result):
            say(line)


def _refuse_flags(ctx: typer.Context, method: str, names: tuple[str, ...]) -> None:
    """A flag only the other method reads would be silently ignored: refuse it instead."""
    # By name: typer carries its own copy of click, whose ParameterSource is another enum.
    given = [f"--{name.replace('_', '-')}" for name in names
             if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]
    if given:
        one = len(given) == 1
        raise UserError(f"{', '.join(given)} {'does' if one else 'do'} not apply to {method}; "
                        f"leave {'it' if one else 'them'} out or choose the other --method")


def _dedup_rouge(input_path: Path, output: Path, threshold: float, tokenizer: str,
                 against: Path | None, field: str) -> None:
    """Exact ROUGE-L dedup under a progress bar, then its summary line."""
    if not 0.0 <= threshold <= 1.0:
        raise UserError("--similarity-threshold must be between 0 and 1")
    total = count_records(input_path, field)
    with _progress_bar("dedup") as progress:
        task = progress.add_task("dedup", total=total, detail="")
        summary = dedup_file(
            input_path, output, threshold=threshold, tokenizer=tokenizer, field=field,
            against=against,
            progress=lambda read, kept: progress.update(task, completed=read,
                                                        detail=f"{kept} kept"),
        )
    say(f"kept {summary.kept} of {summary.read} records ({summary.dropped} dropped) "
        f"in {summary.elapsed_seconds:.1f}s, {summary.records_per_second:,.0f} records/s "
        f"-> {output}")


def _dedup_minhash(settings: MinHashDedupSettings) -> None:
    """MinHash dedup under a progress bar (hashing, then writing), then its summary."""
    with _progress_bar("dedup") as progress:
        task = progress.add_task("dedup", total=None, detail="")
        summary = dedup_minhash(settings, progress=lambda step, done: progress.update(
            task, completed=done, detail=step))
    for line in minhash_summary(summary, settings.output, settings.removed):
        say(line)


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
    backend: Backend | None,
    work: Callable[[asyncio.Event, ProgressUpdate], Awaitable[T]],
) -> tuple[T, signal.Signals | None]:
    """Run one stage under a progress bar; SIGINT/SIGTERM stop it cleanly. ``backend``
    is closed afterwards (None: the library's stage function closes its own)."""
    return asyncio.run(_drive(label, total, completed, backend, work))


async def _drive(
    label: str,
    total: int | None,
    completed: int,
    backend: Backend | None,
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
        if backend is not None:
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
