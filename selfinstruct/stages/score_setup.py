"""Open a ``score`` job: the examples to judge, the rubric, the output directory, the judge.

SOURCE is anything :func:`~selfinstruct.runs.dataset.read_dataset` reads, with the ids
``export`` reads it with: a run directory (instances, an Alpaca pool's tasks, reasoning
traces or distilled records), a dataset file (Alpaca, ShareGPT, ``messages``, JSONL, the
output of ``dedup`` or ``mix``) or an earlier ``score -o`` directory. Like ``reason``,
the judge comes from the flags, never from a run's config: the judge is usually not the
model that wrote the data.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.language import Language, detect_language
from selfinstruct.llm.base import Backend
from selfinstruct.runs.dataset import read_dataset
from selfinstruct.runs.layout import CONFIG_FILE, SCORES_FILE, save_config_section
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.rubrics import load_rubric, rubric_path
from selfinstruct.runs.store import prepare_out_dir, read_json
from selfinstruct.runs.templates import load_template
from selfinstruct.stages.dryrun import Plan
from selfinstruct.stages.per_record import StageSettings, StageStats
from selfinstruct.stages.pipeline import BackendFlags, _destination, connect, resolve_backend
from selfinstruct.stages.score import Judge, ScoreSettings, score_run, unjudged

#: Settings that change what a score means; a resumed run must not mix two of them.
SCORE_DEFINING = ("dimensions", "scale")


@dataclass(frozen=True)
class ScoreJob:
    """A ``score`` invocation, ready to run."""

    examples: list[Answered]
    out_dir: Path
    backend: Backend
    settings: StageSettings
    judge: Judge


def source_examples(source: Path, *, field: str = "instruction") -> list[Answered]:
    """The examples of ``source`` as the judge sees them, under the ids ``export``,
    ``review`` and ``report`` give them too."""
    return [Answered.of(example) for example in read_dataset(source, field=field).examples]


def source_language(source: Path, examples: list[Answered], language: str) -> Language:
    """``en`` / ``zh`` as given, else the run's, else detected from the instructions."""
    if language in ("en", "zh"):
        return language  # type: ignore[return-value]
    config = read_json(source / CONFIG_FILE) if source.is_dir() else None
    if config and config.get("language") in ("en", "zh"):
        return config["language"]  # type: ignore[no-any-return]
    return detect_language(example.instruction for example in examples[:1000])


def output_dir(source: Path, out_dir: Path | None) -> Path:
    """Where ``scores.jsonl`` goes: ``-o``, or the run directory itself."""
    if out_dir is not None:
        return out_dir
    if not source.is_dir():
        raise UserError("-o OUT_DIR is needed when SOURCE is a file")
    return source


def make_judge(
    source: Path, examples: list[Answered], *, rubric: Path | None, language: str,
    settings: ScoreSettings, prompt_dir: Path | None = None,
) -> Judge:
    """The rubric and the judge template in the data's language."""
    lang = source_language(source, examples, language)
    return Judge(load_rubric(rubric, lang), load_template("judge", lang, prompt_dir), settings)


def open_score(
    source: Path,
    out_dir: Path | None,
    flags: BackendFlags,
    *,
    settings: ScoreSettings,
    rubric: Path | None = None,
    language: str = "auto",
    field: str = "instruction",
    force: bool = False,
) -> ScoreJob:
    """Read the examples and the rubric, prepare the output directory, connect the judge."""
    out = output_dir(source, out_dir)
    examples = source_examples(source, field=field)
    judge = make_judge(source, examples, rubric=rubric, language=language, settings=settings)
    section = score_config(source, judge, rubric, field)
    check_resume(out, section, force=force)
    prepare_out_dir(out)
    backend, stage_settings = connect({}, flags)
    save_config_section(out, "score", {**section, "model": backend.name})
    return ScoreJob(examples, out, backend, stage_settings, judge)


def score_config(source: Path, judge: Judge, rubric: Path | None, field: str) -> dict[str, Any]:
    """The ``score`` section of ``config.json``: what ``review`` and ``report`` read back."""
    settings = judge.settings
    return {
        "source": str(source.resolve()),
        "field": field,
        "rubric": str(rubric_path(rubric, judge.template.language)),
        "dimensions": [d.name for d in judge.dimensions],
        "scale": str(settings.scale),
        "language": judge.template.language,
        **{k: v for k, v in dataclasses.asdict(settings).items() if k != "scale"},
    }


def check_resume(out: Path, section: dict[str, Any], *, force: bool) -> None:
    """Refuse to add scores on another scale or rubric to an existing ``scores.jsonl``."""
    saved = (read_json(out / CONFIG_FILE) or {}).get("score") if out.is_dir() else None
    if force or not saved or not (out / SCORES_FILE).exists():
        return
    for key in SCORE_DEFINING:
        if key in saved and saved[key] != section[key]:
            raise UserError(
                f"{out}: its scores were made with {key}={saved[key]!r}, now {section[key]!r};"
                " one scores.jsonl would mix two scales. Use the same rubric and scale, "
                "another -o directory, or --force"
            )


async def score_stage(
    job: ScoreJob, stop: asyncio.Event, progress: Callable[[StageStats], None]
) -> StageStats:
    """Judge the examples of a prepared ``score`` job."""
    return await score_run(job.examples, job.out_dir, job.backend, job.judge, job.settings,
                           stop, progress)


def dry_run_score(
    source: Path,
    out_dir: Path | None,
    flags: BackendFlags,
    *,
    settings: ScoreSettings,
    rubric: Path | None = None,
    language: str = "auto",
    field: str = "instruction",
) -> list[str]:
    """``--dry-run`` of score: nothing is loaded, sent or written."""
    spec, drive = resolve_backend({}, flags)
    examples = source_examples(source, field=field)
    judge = make_judge(source, examples, rubric=rubric, language=language, settings=settings)
    out = output_dir(source, out_dir)
    pending = unjudged(examples, settings.samples, out)
    sample = judge.request(pending[0].example, pending[0].sample) if pending else None
    note = f" ({len(examples)} examples x {settings.samples} samples, " \
           f"{len(examples) * settings.samples - len(pending)} done)"
    plan = Plan("score", len(pending), sample, note if pending else "all judged")
    return [_destination(spec, drive), *plan.lines()]
