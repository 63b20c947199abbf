"""The ``selfinstruct`` command: thin wrappers over the library.

Commands parse flags, call the library and report. Any :class:`UserError` becomes one
line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from selfinstruct.bootstrap import Bootstrap, GenerateStats
from selfinstruct.errors import UserError
from selfinstruct.generate import create_run_backend, open_run, resolve_config
from selfinstruct.report import generate_summary, resume_command

app = typer.Typer(
    help="Grow instruction-tuning data from seed tasks with an LLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

#: Exit codes for a run stopped by a signal, as shells report them (128 + signal number).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Style(str, Enum):
    """Prompt styles."""

    self_instruct = "self-instruct"
    alpaca = "alpaca"


class LanguageOption(str, Enum):
    """Languages; ``auto`` decides from the seeds."""

    auto = "auto"
    en = "en"
    zh = "zh"


class ApiOption(str, Enum):
    """Which OpenAI endpoint to call."""

    chat = "chat"
    completions = "completions"


class TokenizerOption(str, Enum):
    """ROUGE tokenizers."""

    multilingual = "multilingual"
    rouge = "rouge"


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Print a :class:`UserError` as one line and exit with its code."""
    try:
        yield
    except UserError as err:
        err_console.print(f"[bold red]Error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None


@app.callback()
def selfinstruct() -> None:
    """Grow instruction-tuning data from seed tasks with an LLM."""


@app.command()
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
    base_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1. "
                     "Without it the embedded local model runs."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model name on the server, or a .gguf path for the local backend."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="OPENAI_API_KEY", show_default=False, show_envvar=True,
                     help="API key (never written to disk)."),
    ] = None,
    api: Annotated[ApiOption, typer.Option(help="completions for base models.")]
    = ApiOption.chat,
    concurrency: Annotated[
        int, typer.Option(help="Requests in flight (the local model runs one at a time).")
    ] = 8,
    similarity_threshold: Annotated[
        float, typer.Option(help="Reject a candidate whose ROUGE-L vs the pool is above this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerOption, typer.Option(help="ROUGE tokenizer.")]
    = TokenizerOption.multilingual,
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
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 600.0,
    max_retries: Annotated[int, typer.Option(help="HTTP retries per request.")] = 5,
    max_failures: Annotated[
        int, typer.Option(help="Stop after this many failed requests in a row.")
    ] = 20,
    force: Annotated[
        bool, typer.Option(help="Resume even though pool-defining settings changed.")
    ] = False,
) -> None:
    """Grow a pool of new instructions from seed tasks."""
    with reported_errors():
        if model is None and base_url is not None:
            raise UserError("--base-url needs --model NAME (the name the server serves)")
        config, seed_tasks = resolve_config(
            out=out,
            seeds_path=seeds,
            language=language.value,
            prompt_style=prompt_style.value,  # type: ignore[arg-type]
            options={
                "num_instructions": num_instructions,
                "backend": "openai" if base_url else "local",
                "model": model or "",
                "base_url": base_url,
                "api": api.value,
                "concurrency": concurrency,
                "similarity_threshold": similarity_threshold,
                "tokenizer": tokenizer.value,
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
                "timeout": timeout,
                "max_retries": max_retries,
                "max_consecutive_failures": max_failures,
            },
        )
        err_console.print(
            f"selfinstruct: {config.language} seeds from {config.seeds} ({len(seed_tasks)} tasks), "
            f"{config.prompt_style} prompts, model "
            f"{config.model or 'embedded SmolLM2-135M-Instruct'}",
            highlight=False,
            soft_wrap=True,
        )
        backend = create_run_backend(config, api_key)
        bootstrap = open_run(config, seed_tasks, backend, force=force)
        stats, stopped_by = asyncio.run(_run_with_progress(bootstrap))
        for line in generate_summary(stats, out):
            err_console.print(line, highlight=False, soft_wrap=True)
        if stopped_by is not None:
            err_console.print(f"stopped; resume with: {resume_command(sys.argv[1:])}",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(SIGNAL_EXIT[stopped_by])


async def _run_with_progress(bootstrap: Bootstrap) -> tuple[GenerateStats, signal.Signals | None]:
    """Run the loop under a progress bar; SIGINT/SIGTERM stop it cleanly."""
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()
    for signum in SIGNAL_EXIT:
        loop.add_signal_handler(signum, _stopper(stop, received, signum))
    try:
        with Progress(
            TextColumn("[bold]generate"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as progress:
            stats = bootstrap.stats
            task = progress.add_task(
                "generate", total=stats.target, completed=stats.kept, detail=""
            )

            def update(current: GenerateStats) -> None:
                progress.update(
                    task,
                    completed=current.kept,
                    detail=f"{current.requests.sent} req, {current.requests.failed} failed, "
                    f"{sum(current.rejected.values())} rejected",
                )

            stats = await bootstrap.run(stop, update)
    finally:
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
        await bootstrap.backend.aclose()
    return stats, received[0] if received else None


def _stopper(
    stop: asyncio.Event, received: list[signal.Signals], signum: signal.Signals
) -> Callable[[], None]:
    def handler() -> None:
        received.append(signum)
        stop.set()

    return handler


def main() -> None:
    """Console-script entry point."""
    app()
