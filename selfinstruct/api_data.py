"""The library over data you already have: distil the rows of a table, score examples
with a judge, review a sample by hand, report on a run, blend datasets.

The same conventions as :mod:`selfinstruct.api`: keywords named like the command's
flags (``--user-template`` is ``user_template=``), backend keywords and ``backend=`` a
kind or a ready backend object, the key explicit → ``OPENAI_API_KEY``, an
``a``-prefixed coroutine beside each plain function that talks to a model, and a
:class:`~selfinstruct.errors.UserError` for anything the caller can fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.api import (
    Connection,
    as_shard,
    connection,
    no_progress,
    run_sync,
    run_with_backend,
    split_settings,
)
from selfinstruct.errors import UserError
from selfinstruct.llm import Backend
from selfinstruct.llm.thinking import resolve_style
from selfinstruct.stages.distill import DistillJob, DistillSettings, distill_run
from selfinstruct.stages.distill_setup import load_distill_job, parse_extra_body, system_prompt
from selfinstruct.stages.mix import MixResult, MixSettings, MixSource, mix_sources
from selfinstruct.stages.per_record import StageSettings, StageStats
from selfinstruct.stages.pipeline import BackendFlags, connect, resolve_backend
from selfinstruct.stages.report import ReportResult, build_report
from selfinstruct.stages.review import Drawn, Imported, ReviewSettings, write_review_sheet
from selfinstruct.stages.review import import_review as _import_review
from selfinstruct.stages.score import ScoreSettings
from selfinstruct.stages.score_setup import open_score, score_stage
from selfinstruct.text.row_answers import parse_renames
from selfinstruct.text.rubric import RubricError, Scale

#: ``distill`` keywords that are not :class:`DistillSettings` fields as they are: flags
#: the command turns into settings (``map`` → renames, ``system_file`` → system).
_DISTILL_FLAGS = frozenset({"map", "system_file"})


@dataclass(frozen=True)
class _Client:
    """A backend connected for a row stage, and how hard to drive it."""

    backend: Backend
    stage: StageSettings


def prepare_distill(source: str | Path, out: str | Path, *, force: bool = False,
                    **settings: Any) -> tuple[DistillJob, Connection]:
    """Read and select ``source``'s rows and compile the template (``--dry-run`` stops
    here); nothing is sent. The backend's connection comes back for :func:`adistill`."""
    flags = {name: settings.pop(name) for name in _DISTILL_FLAGS if name in settings}
    own = split_settings(settings, DistillSettings, "distill")
    if "user_template" not in own:
        raise TypeError("distill() needs user_template=, the prompt template file")
    link = connection(settings)
    spec, _ = resolve_backend({}, link.flags)
    own.update(
        user_template=Path(own["user_template"]),
        questions=Path(own["questions"]) if own.get("questions") else None,
        system=system_prompt(own.get("system"), _path(flags.get("system_file"))),
        shard=as_shard(own.get("shard")),
        stop=_strings(own.get("stop")),
        extra_body=_extra_body(own.get("extra_body")),
        thinking=_switch(own.get("thinking")),
        thinking_style=resolve_style(own.get("thinking_style", "auto"), spec.kind,
                                     spec.base_urls),
        renames=_renames(flags.get("map", own.get("renames"))),
    )
    job = load_distill_job(Path(source), DistillSettings(**own), Path(out), force=force)
    return job, link


async def adistill(
    source: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    progress: Callable[[StageStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> StageStats:
    """A teacher model's answer for every row of ``source`` (JSONL, JSON, CSV/TSV, XLSX,
    Parquet) with the prompt of ``user_template``, into ``out`` (resumed if it exists).

    The keywords are ``distill``'s flags: ``questions``, ``system`` or ``system_file``,
    ``sheet``, ``fill_na``, ``id_field``, ``limit``, ``sample``, ``seed``, ``shard``,
    ``stop`` (strings), ``temperature``, ``max_tokens``, ``samples``, ``extra_body`` (a
    dict or its JSON), ``thinking`` (True / False / "on" / "off"), ``thinking_style``,
    ``thinking_budget``, ``parse``, ``separator``, ``map`` ({new: key} or "NEW=KEY"
    strings), and the backend's.
    """
    job, link = prepare_distill(source, out, force=force, **settings)
    return await run_with_backend(
        link, lambda _: _Client(*connect({}, link.flags)),
        lambda client: distill_run(job, Path(out), client.backend, client.stage,
                                   interrupt or asyncio.Event(), progress or no_progress),
    )


def distill(source: str | Path, out: str | Path, **settings: Any) -> StageStats:
    """:func:`adistill`, run to the end."""
    return run_sync(adistill(source, out, **settings))


async def ascore(
    source: str | Path,
    out: str | Path | None = None,
    *,
    rubric: str | Path | None = None,
    scale: str | Scale = "1-5",
    samples: int = 1,
    max_tokens: int = 1024,
    temperature: float | None = None,
    language: str = "auto",
    field: str = "instruction",
    seed: int | None = None,
    force: bool = False,
    progress: Callable[[StageStats], None] | None = None,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> StageStats:
    """Rate every example of ``source`` (a run directory, or an Alpaca / ShareGPT /
    messages file) with a judge model into ``out``/``scores.jsonl`` (default: the run
    directory): per-dimension scores, an overall score and a one-sentence reason."""
    split_settings(settings, BackendFlags, "score")
    judged = score_settings(scale=scale, samples=samples, max_tokens=max_tokens,
                            temperature=temperature, seed=seed)
    link = connection(settings)
    return await run_with_backend(
        link,
        lambda _: open_score(Path(source), _path(out), link.flags, settings=judged,
                             rubric=_path(rubric), language=language, field=field,
                             force=force),
        lambda job: score_stage(job, interrupt or asyncio.Event(), progress or no_progress),
    )


def score(source: str | Path, out: str | Path | None = None, **settings: Any) -> StageStats:
    """:func:`ascore`, run to the end."""
    return run_sync(ascore(source, out, **settings))


def review(run_dir: str | Path, output: str | Path | None = None, *, sample: int = 200,
           seed: int = 0, lowest: int = 0, force: bool = False) -> tuple[Path, Drawn]:
    """Write a review sheet (xlsx, default ``RUN/review.xlsx``) of ``sample`` examples
    drawn by score band, plus the ``lowest`` lowest-scored; returns its path and the
    draw. Fill it in, then :func:`import_review`."""
    return write_review_sheet(Path(run_dir), _path(output),
                              ReviewSettings(sample=sample, seed=seed, lowest=lowest),
                              force=force)


def import_review(run_dir: str | Path, sheet: str | Path) -> Imported:
    """Check every cell of a filled-in review sheet and merge it into
    ``RUN/review.jsonl``, which ``export`` then applies (drop, edit)."""
    return _import_review(Path(run_dir), Path(sheet))


def report(run_dir: str | Path, output: str | Path | None = None) -> ReportResult:
    """Write the run's self-contained HTML report (default ``RUN/report.html``)."""
    return build_report(Path(run_dir), _path(output))


def mix(
    sources: Mapping[str | Path, float] | Sequence[str],
    num: int,
    output: str | Path,
    *,
    seed: int = 0,
    allow_upsample: bool = False,
    key: Sequence[str] = (),
) -> MixResult:
    """Blend datasets by weight into ``output``: ``sources`` maps each file to its weight
    (or lists ``"FILE:WEIGHT"`` strings, as ``--source``); exactly ``num`` records,
    duplicates removed across sources, each record's source recorded."""
    parsed = (tuple(MixSource(Path(path), float(weight)) for path, weight in sources.items())
              if isinstance(sources, Mapping)
              else tuple(MixSource.parse(text) for text in sources))
    return mix_sources(MixSettings(parsed, num, Path(output), seed=seed,
                                   allow_upsample=allow_upsample, key=tuple(key)))


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def score_settings(*, scale: str | Scale = "1-5", samples: int = 1, max_tokens: int = 1024,
                   temperature: float | None = None, seed: int | None = None) -> ScoreSettings:
    """The judge's settings from ``score``'s flags (``scale`` as ``--scale`` writes it,
    e.g. "1-5"); a bad value is a :class:`UserError` naming it."""
    if not isinstance(scale, Scale):
        try:
            scale = Scale.parse(scale)
        except RubricError as err:
            raise UserError(str(err)) from None
    return ScoreSettings(scale=scale, samples=samples, max_tokens=max_tokens,
                         temperature=temperature, seed=seed)


def _strings(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``stop=``: one string or several."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _extra_body(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra_body=``: a dict, or the JSON the flag takes."""
    if value is None or isinstance(value, str):
        return parse_extra_body(value)
    return dict(value)


def _switch(value: bool | str | None) -> bool | None:
    """``thinking=``: True / False, or the flag's ``on`` / ``off``."""
    if value is None or isinstance(value, bool):
        return value
    if value not in ("on", "off"):
        raise UserError(f"--thinking {value}: expected on or off")
    return value == "on"


def _renames(value: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """``map=``: {new: key}, or the flag's ``NEW=KEY`` strings."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return parse_renames([f"{new}={old}" for new, old in value.items()])
    return parse_renames([value] if isinstance(value, str) else list(value))
