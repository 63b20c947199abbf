"""What the command says and how it runs a prepared stage: one path for every command.

A model stage is run by :func:`run_job`: ``--dry-run`` prints the job's plan; otherwise
the job runs under a progress bar (SIGINT/SIGTERM stop it cleanly), its summary is
printed (also when it stopped on an error) and a signal ends in the shell's exit code.
Any :class:`UserError` becomes one line on stderr and a non-zero exit code, never a
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from selfinstruct.cli.argv import resume_command
from selfinstruct.errors import StageAborted, UserError
from selfinstruct.stages.base import Connection, Job, Stats, dry_run_lines, execute

err_console = Console(stderr=True)

T = TypeVar("T")
S = TypeVar("S", bound=Stats)

#: Exit codes for a run stopped by a signal, as shells report them (128 + signal number).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: How a stage reports progress: (done, detail, total).
ProgressUpdate = Callable[[int, str, "int | None"], None]


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


def say_all(lines: list[str]) -> None:
    """Several report lines."""
    for line in lines:
        say(line)


def run_job(job: Job[S], connection: Connection, *, dry_run: bool) -> None:
    """The one way a command runs a model stage (see the module)."""
    if dry_run:
        say_all(dry_run_lines(job))
        return
    try:
        stats, stopped_by = drive(job.name, lambda stop, update: execute(
            job, connection, stop, lambda stats: update(*stats.progress())))
    except StageAborted as err:
        say_all(job.summary(err.stats))  # type: ignore[arg-type]
        raise
    say_all(job.summary(stats))
    if stopped_by is not None:
        say(f"stopped; resume with: {resume_command(sys.argv[1:])}")
        raise typer.Exit(SIGNAL_EXIT[stopped_by])


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


def progress_bar(label: str) -> Progress:
    """The progress bar every command shows on stderr."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
    )


def drive(label: str, work: Callable[[asyncio.Event, ProgressUpdate], Awaitable[T]],
          ) -> tuple[T, signal.Signals | None]:
    """Run one stage under a progress bar; SIGINT/SIGTERM stop it cleanly."""
    return asyncio.run(_drive(label, work))


async def _drive(label: str, work: Callable[[asyncio.Event, ProgressUpdate], Awaitable[T]],
                 ) -> tuple[T, signal.Signals | None]:
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()
    for signum in SIGNAL_EXIT:
        loop.add_signal_handler(signum, _stopper(stop, received, signum))
    try:
        with progress_bar(label) as progress:
            task = progress.add_task(label, total=None, detail="")

            def update(done: int, detail: str, total: int | None) -> None:
                progress.update(task, completed=done, detail=detail, total=total)

            result = await work(stop, update)
    finally:
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
    return result, received[0] if received else None


def _stopper(stop: asyncio.Event, received: list[signal.Signals],
             signum: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        received.append(signum)
        stop.set()

    return handler


def run_quietly(work: Callable[[Callable[[str, int], None]], T], label: str) -> T:
    """A stage that sends nothing (dedup) under a progress bar of its own."""
    with progress_bar(label) as progress:
        task = progress.add_task(label, total=None, detail="")
        return work(lambda detail, done: progress.update(task, completed=done, detail=detail))

