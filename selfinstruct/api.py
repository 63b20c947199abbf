"""The library: one function per command, for Python users and for the CLI alike.

Every function takes keyword arguments named like its command's flags:
``generate("runs/x", num_instructions=50, base_url=URL, model="m")``. A keyword that is
not a setting is a ``TypeError`` at the call, naming it. ``backend=`` takes a kind
(``"openai"``, ``"local"``, ``"vllm"``, ``"fake"``) or a ready
:class:`~selfinstruct.llm.base.Backend` object (a fake in tests, a model built
beforehand), which the caller keeps and closes. The API key comes from ``api_key=`` or
``OPENAI_API_KEY`` and is never saved.

Each model stage has three functions: ``*_job`` prepares it (reads and checks its inputs;
nothing is sent or written: what ``--dry-run`` shows), the ``a``-prefixed coroutine runs
it for callers that already run an event loop (a notebook), and the plain one runs that
to the end. ``asyncio.run`` is called in the plain ones only. A problem the caller can
fix is a :class:`~selfinstruct.errors.UserError` whose message says what to do, whether
or not an event loop is running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from selfinstruct.errors import UserError
from selfinstruct.llm import settings as backend_settings
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.runs.shard import Shard
from selfinstruct.similarity import DedupMethod, TokenizerName
from selfinstruct.stages.base import Connection, Job, Stats, execute
from selfinstruct.stages.classify import ClassifyJob, prepare_classify
from selfinstruct.stages.dialogue import (
    DialogueJob,
    DialogueSettings,
    prepare_dialogue,
    user_backend_settings,
)
from selfinstruct.stages.distill import DistillJob, prepare_distill
from selfinstruct.stages.export import ExportResult, export_run
from selfinstruct.stages.generate import (
    GenerateJob,
    GenerateSettings,
    GenerateStats,
    prepare_generate,
)
from selfinstruct.stages.instances import InstanceOptions, InstancesJob, prepare_instances
from selfinstruct.stages.per_record import StageStats
from selfinstruct.stages.reason import ReasonJob, ReasonSettings, prepare_reason
from selfinstruct.stages.score import ScoreJob, ScoreSettings, prepare_score
from selfinstruct.stages.teacher import KEYWORDS as TEACHER_KEYWORDS
from selfinstruct.stages.teacher import Teacher

if TYPE_CHECKING:
    from selfinstruct.stages.dedup import DedupSummary, MinHashSummary
    from selfinstruct.stages.mix import MixResult
    from selfinstruct.stages.report import ReportResult
    from selfinstruct.stages.review import Drawn, Imported

T = TypeVar("T")
S = TypeVar("S", bound=Stats)


def run_sync(work: Awaitable[T]) -> T:
    """Run a stage's coroutine to the end from plain synchronous code."""
    async def wrapped() -> T:
        return await work

    return asyncio.run(wrapped())


def _own(settings: Mapping[str, Any], names: set[str], function: str) -> dict[str, Any]:
    """The keywords of ``settings`` that are the stage's own (``names``); any that is
    neither the stage's nor the backend's is a ``TypeError`` naming it and the ones
    allowed."""
    unknown = sorted(set(settings) - names - backend_settings.KEYWORDS)
    if unknown:
        raise TypeError(
            f"{function}() got an unexpected keyword argument {unknown[0]!r}; its settings "
            f"are {', '.join(sorted(names | backend_settings.KEYWORDS))}"
        )
    return {name: value for name, value in settings.items() if name in names}


def _fields(cls: type[Any]) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def _backend(settings: Mapping[str, Any]) -> BackendSettings:
    """The backend settings among the keywords, the key explicit → environment."""
    given = BackendSettings.of(settings)
    if given.api_key is None and os.environ.get("OPENAI_API_KEY"):
        given = dataclasses.replace(given, api_key=os.environ["OPENAI_API_KEY"])
    return given


def connection(settings: Mapping[str, Any], *, check: bool = True) -> Connection:
    """How a stage reaches its model, from the same keywords (``backend=`` a kind or a
    ready backend object)."""
    backend = settings.get("backend")
    given = None if backend is None or isinstance(backend, str) else backend
    return Connection(_backend(settings), given, check)


async def _execute(job: Job[S], settings: Mapping[str, Any], *, check: bool = True,
                   progress: Callable[[S], None] | None = None,
                   interrupt: asyncio.Event | None = None) -> S:
    return await execute(job, connection(settings, check=check), interrupt, progress)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


# --- generate -----------------------------------------------------------------------


def generate_job(out: str | Path, *, force: bool = False, **settings: Any) -> GenerateJob:
    """Resolve a ``generate`` run's settings, read its seeds and check a resumed run;
    nothing is sent or written."""
    own = _own(settings, _fields(GenerateSettings), "generate")
    for name in ("seeds", "prompt_dir"):
        if own.get(name) is not None:
            own[name] = Path(own[name])
    if "blacklist" in own:
        own["blacklist"] = tuple(own["blacklist"] or ())
    return prepare_generate(Path(out), GenerateSettings(**own), _backend(settings),
                            force=force)


async def agenerate(out: str | Path, *, force: bool = False,
                    progress: Callable[[GenerateStats], None] | None = None,
                    interrupt: asyncio.Event | None = None, **settings: Any) -> GenerateStats:
    """Grow the pool in ``out`` to ``num_instructions`` kept instructions (resuming what
    is there); settings as ``selfinstruct generate``'s flags."""
    job = generate_job(out, force=force, **settings)
    return await _execute(job, settings, progress=progress, interrupt=interrupt)


def generate(out: str | Path, **settings: Any) -> GenerateStats:
    """:func:`agenerate`, run to the end."""
    return run_sync(agenerate(out, **settings))


# --- classify, instances --------------------------------------------------------------


def classify_job(run_dir: str | Path, **settings: Any) -> ClassifyJob:
    """``classify`` over ``run_dir`` prepared; the backend is the run's unless the
    keywords say otherwise."""
    _own(settings, set(), "classify")
    return prepare_classify(Path(run_dir), _backend(settings))


async def aclassify(run_dir: str | Path, *, progress: Callable[[StageStats], None] | None = None,
                    interrupt: asyncio.Event | None = None, check: bool = True,
                    **settings: Any) -> StageStats:
    """Mark which instructions of ``run_dir`` are classification tasks."""
    return await _execute(classify_job(run_dir, **settings), settings, check=check,
                          progress=progress, interrupt=interrupt)


def classify(run_dir: str | Path, **settings: Any) -> StageStats:
    """:func:`aclassify`, run to the end."""
    return run_sync(aclassify(run_dir, **settings))


def instances_job(run_dir: str | Path, *, per_task: int = InstanceOptions.per_task,
                  instance_max_tokens: int = InstanceOptions.max_tokens,
                  shard: str | Shard | None = None, **settings: Any) -> InstancesJob:
    """``instances`` over ``run_dir`` prepared."""
    _own(settings, set(), "instances")
    options = InstanceOptions(per_task=per_task, max_tokens=instance_max_tokens,
                              shard=Shard.of(shard))
    return prepare_instances(Path(run_dir), options, _backend(settings))


async def ainstances(run_dir: str | Path, *,
                     progress: Callable[[StageStats], None] | None = None,
                     interrupt: asyncio.Event | None = None, check: bool = True,
                     **settings: Any) -> StageStats:
    """Write ``per_task`` input/output instances for every classified instruction
    (``per_task``, ``instance_max_tokens``, ``shard`` as ``instances``'s flags)."""
    return await _execute(instances_job(run_dir, **settings), settings, check=check,
                          progress=progress, interrupt=interrupt)


def instances(run_dir: str | Path, **settings: Any) -> StageStats:
    """:func:`ainstances`, run to the end."""
    return run_sync(ainstances(run_dir, **settings))


# --- reason, distill, score ---------------------------------------------------------------


def reason_job(source: str | Path, out: str | Path | None = None, **settings: Any) -> ReasonJob:
    """``reason`` prepared: the prompts of ``source`` (a run directory or a dataset file)
    read; keywords as ``reason``'s flags (``language="auto"``: any language)."""
    own = _own(settings, _fields(ReasonSettings) | TEACHER_KEYWORDS, "reason")
    if own.get("language") not in ("en", "zh"):
        own["language"] = None
    if "shard" in own:
        own["shard"] = Shard.of(own["shard"])
    teacher = {name: own.pop(name) for name in TEACHER_KEYWORDS if name in own}
    if teacher:
        own["teacher"] = Teacher.of(teacher)
    return prepare_reason(Path(source), _path(out), ReasonSettings(**own), _backend(settings))


async def areason(source: str | Path, out: str | Path | None = None, *,
                  progress: Callable[[StageStats], None] | None = None,
                  interrupt: asyncio.Event | None = None, **settings: Any) -> StageStats:
    """Distil reasoning traces for every prompt of ``source`` into ``out``."""
    return await _execute(reason_job(source, out, **settings), settings, progress=progress,
                          interrupt=interrupt)


def reason(source: str | Path, out: str | Path | None = None, **settings: Any) -> StageStats:
    """:func:`areason`, run to the end."""
    return run_sync(areason(source, out, **settings))


#: ``distill`` keywords that are flags turned into settings (see ``DistillSettings.of``).
_DISTILL_FLAGS = {"map"} | TEACHER_KEYWORDS


def distill_job(source: str | Path, out: str | Path, *, force: bool = False,
                reparse: bool = False, retry_rejected: bool = False,
                **settings: Any) -> DistillJob:
    """Read and select ``source``'s rows, compile the template and check a resumed run
    (``--dry-run`` stops here); nothing is sent or written. ``reparse`` reads the stored
    answers again with the current settings first; ``retry_rejected`` asks the rows whose
    answers were all rejected again."""
    from selfinstruct.stages.distill import DistillSettings

    own = _own(settings, _fields(DistillSettings) | _DISTILL_FLAGS, "distill")
    return prepare_distill(Path(source), Path(out), own, _backend(settings), force=force,
                           reparse=reparse, retry_rejected=retry_rejected)


async def adistill(source: str | Path, out: str | Path, *, force: bool = False,
                   reparse: bool = False, retry_rejected: bool = False,
                   progress: Callable[[StageStats], None] | None = None,
                   interrupt: asyncio.Event | None = None, **settings: Any) -> StageStats:
    """A teacher model's answer for every row of ``source`` (JSONL, JSON, CSV/TSV, XLSX,
    Parquet) with the prompt of ``user_template``, into ``out`` (resumed if it exists).

    The keywords are ``distill``'s flags: ``questions``, ``system`` or ``system_file``,
    ``sheet``, ``fill_na``, ``id_field``, ``limit``, ``sample``, ``seed``, ``shard``,
    ``stop`` (strings), ``temperature``, ``max_tokens``, ``samples``, ``extra_body`` (a
    dict or its JSON), ``thinking`` (True / False / "on" / "off"), ``thinking_style``,
    ``thinking_budget``, ``parse``, ``separator``, ``map`` ({new: key} or "NEW=KEY"
    strings), and the backend's.
    """
    job = distill_job(source, out, force=force, reparse=reparse,
                      retry_rejected=retry_rejected, **settings)
    return await _execute(job, settings, progress=progress, interrupt=interrupt)


def distill(source: str | Path, out: str | Path, **settings: Any) -> StageStats:
    """:func:`adistill`, run to the end."""
    return run_sync(adistill(source, out, **settings))


#: ``dialogue`` keywords that are not settings: a flag read into one, and the simulated
#: user's own model (``user_backend``: a ready backend object, like ``backend``).
_DIALOGUE_FLAGS = {"system_file", "user_model", "user_base_url", "user_backend"}


def dialogue_job(source: str | Path, out: str | Path, *, force: bool = False,
                 **settings: Any) -> DialogueJob:
    """Read the topics of ``source``, plan the conversations, load the prompts and check
    a resumed run (``--dry-run`` stops here); nothing is sent or written."""
    own = _own(settings, _fields(DialogueSettings) | _DIALOGUE_FLAGS, "dialogue")
    backend = _backend(settings)
    user_given = own.pop("user_backend", None)
    user = user_backend_settings(backend, own.pop("user_model", None),
                                 own.pop("user_base_url", None))
    return prepare_dialogue(Path(source), Path(out), own, backend, user=user,
                            user_backend=user_given, force=force)


async def adialogue(source: str | Path, out: str | Path, *, force: bool = False,
                    progress: Callable[[StageStats], None] | None = None,
                    interrupt: asyncio.Event | None = None, **settings: Any) -> StageStats:
    """Multi-turn conversations about the topics of ``source`` (a topics file, one a
    line or JSONL with ``topic`` / ``persona`` / ``system``, or a dataset whose
    ``field`` is the topic) into ``out``/``dialogues.jsonl`` (resumed if it exists).

    The keywords are ``dialogue``'s flags: ``mode`` ("script" or "self-chat"),
    ``turns``, ``min_turns``, ``num_dialogues``, ``outline``, ``system`` or
    ``system_file``, ``personas``, ``field``, ``language``, ``max_turn_similarity``,
    ``drift_floor``, ``stop_phrase``, ``temperature``, ``max_tokens``, ``seed``,
    ``prompt_dir``, ``user_model`` / ``user_base_url`` (or ``user_backend``, a ready
    backend) for the simulated user, and the backend's.
    """
    job = dialogue_job(source, out, force=force, **settings)
    backend = {k: v for k, v in settings.items() if k not in _DIALOGUE_FLAGS}
    return await _execute(job, backend, progress=progress, interrupt=interrupt)


def dialogue(source: str | Path, out: str | Path, **settings: Any) -> StageStats:
    """:func:`adialogue`, run to the end."""
    return run_sync(adialogue(source, out, **settings))


def score_job(source: str | Path, out: str | Path | None = None, *, force: bool = False,
              **settings: Any) -> ScoreJob:
    """``score`` prepared: the examples of ``source`` (a run directory, or an Alpaca /
    ShareGPT / messages file) and the rubric read."""
    own = _own(settings, _fields(ScoreSettings), "score")
    return prepare_score(Path(source), _path(out), ScoreSettings.of(own), _backend(settings),
                         force=force)


async def ascore(source: str | Path, out: str | Path | None = None, *, force: bool = False,
                 progress: Callable[[StageStats], None] | None = None,
                 interrupt: asyncio.Event | None = None, **settings: Any) -> StageStats:
    """Rate every example of ``source`` with a judge model into ``out``/``scores.jsonl``
    (default: the run directory): per-dimension scores, an overall score and a reason."""
    job = score_job(source, out, force=force, **settings)
    return await _execute(job, settings, progress=progress, interrupt=interrupt)


def score(source: str | Path, out: str | Path | None = None, **settings: Any) -> StageStats:
    """:func:`ascore`, run to the end."""
    return run_sync(ascore(source, out, **settings))


# --- the stages that send nothing ---------------------------------------------------------


def export(
    run_dir: str | Path,
    format: str = "alpaca",
    output: str | Path | None = None,
    *,
    include_seeds: bool = False,
    data: str = "auto",
    think: str = "inline",
    min_score: float | None = None,
    fields: Mapping[str, str] | None = None,
    best_of: bool = False,
    pairs: bool = False,
    pairs_all: bool = False,
    min_margin: float = 1.0,
) -> ExportResult:
    """Write ``run_dir`` (a run directory, a ``score -o`` directory or a dataset file) as
    training data (alpaca, sharegpt, messages, text) and register it in
    ``dataset_info.json`` for LLaMA-Factory; ``best_of`` keeps each prompt's top-scored
    answer. With ``pairs`` (``pairs_all``: every ordered pair), preference pairs at least
    ``min_margin`` apart instead, registered as a ranking dataset."""
    if pairs or pairs_all:
        from selfinstruct.stages.preference import export_pairs, pair_format

        return export_pairs(Path(run_dir), pair_format(format, best_of=best_of,
                                                       include_seeds=include_seeds),
                            _path(output), data=data, think=think,  # type: ignore[arg-type]
                            margin=min_margin, every=pairs_all, min_score=min_score,
                            fields=fields)
    return export_run(Path(run_dir), format, _path(output),  # type: ignore[arg-type]
                      include_seeds=include_seeds, data=data, think=think,  # type: ignore[arg-type]
                      min_score=min_score, fields=fields, best_of=best_of)


def dedup(
    input: str | Path,
    output: str | Path,
    *,
    method: DedupMethod = "rouge",
    similarity_threshold: float = 0.7,
    tokenizer: TokenizerName = "multilingual",
    field: str = "instruction",
    against: str | Path | None = None,
    progress: Callable[[str, int], None] | None = None,
    **minhash: Any,
) -> DedupSummary | MinHashSummary:
    """Drop near-duplicates from ``input`` into ``output``, keeping the first of each:
    exact ROUGE-L against everything kept (``method="rouge"``), or MinHash/LSH for long
    documents (``method="minhash"``, with ``ngram``, ``bands``, ``rows``, ``num_perm``,
    ``seed``, ``removed``, ``id_field`` as ``dedup``'s flags). ``progress(step, done)``
    hears how far it got."""
    from selfinstruct.stages.dedup import MinHashDedupSettings, dedup_file, dedup_minhash

    if method == "minhash":
        extra: dict[str, Any] = dict(minhash)
        if extra.get("removed") is not None:
            extra["removed"] = Path(extra["removed"])
        return dedup_minhash(MinHashDedupSettings(
            input=Path(input), output=Path(output), field=field,
            tokenizer=tokenizer, **extra), progress=progress)
    if method != "rouge":
        raise UserError(f"unknown dedup method {method!r}; use rouge or minhash")
    if minhash:
        raise TypeError(f"dedup() got MinHash settings {sorted(minhash)} with method='rouge'")
    if not 0.0 <= similarity_threshold <= 1.0:
        raise UserError("--similarity-threshold must be between 0 and 1")
    return dedup_file(Path(input), Path(output), threshold=similarity_threshold,
                      tokenizer=tokenizer, field=field, against=_path(against),
                      progress=None if progress is None
                      else lambda read, kept: progress(f"{kept} kept", read))


def review(run_dir: str | Path, output: str | Path | None = None, *, sample: int = 200,
           seed: int = 0, lowest: int = 0, force: bool = False,
           dry_run: bool = False) -> tuple[Path, Drawn]:
    """Write a review sheet (xlsx, default ``RUN/review.xlsx``) of ``sample`` examples
    drawn by score band, plus the ``lowest`` lowest-scored; returns its path and the
    draw. Fill it in, then :func:`import_review`."""
    from selfinstruct.stages.review import ReviewSettings, write_review_sheet

    return write_review_sheet(Path(run_dir), _path(output),
                              ReviewSettings(sample=sample, seed=seed, lowest=lowest),
                              force=force, dry_run=dry_run)


def import_review(run_dir: str | Path, sheet: str | Path, *, dry_run: bool = False) -> Imported:
    """Check every cell of a filled-in review sheet and merge it into
    ``RUN/review.jsonl``, which ``export`` then applies (drop, edit)."""
    from selfinstruct.stages.review import import_review as merge_review

    return merge_review(Path(run_dir), Path(sheet), dry_run=dry_run)


def report(run_dir: str | Path, output: str | Path | None = None, *,
           dry_run: bool = False) -> ReportResult:
    """Write the run's self-contained HTML report (default ``RUN/report.html``)."""
    from selfinstruct.stages.report import build_report

    return build_report(Path(run_dir), _path(output), dry_run=dry_run)


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
    from selfinstruct.stages.mix import MixSettings, MixSource, mix_sources

    parsed = (tuple(MixSource(Path(path), float(weight)) for path, weight in sources.items())
              if isinstance(sources, Mapping)
              else tuple(MixSource.parse(text) for text in sources))
    return mix_sources(MixSettings(parsed, num, Path(output), seed=seed,
                                   allow_upsample=allow_upsample, key=tuple(key)))


# --- run: generate → classify → instances → export --------------------------------------


@dataclass(frozen=True)
class RunResult:
    """What ``run`` did, stage by stage (classify and instances: None for an Alpaca-style
    pool, whose tasks carry their own output)."""

    generate: GenerateStats
    classify: StageStats | None
    instances: StageStats | None
    export: ExportResult


def later_stages(prompt_style: str) -> Sequence[str]:
    """The stages ``run`` goes through after ``generate``, before ``export``: none for an
    Alpaca-style pool, whose tasks carry their own input and output."""
    return () if prompt_style == "alpaca" else ("classify", "instances")


async def arun(
    out: str | Path,
    *,
    per_task: int = InstanceOptions.per_task,
    instance_max_tokens: int = InstanceOptions.max_tokens,
    format: str = "alpaca",
    include_seeds: bool = False,
    force: bool = False,
    interrupt: asyncio.Event | None = None,
    **settings: Any,
) -> RunResult:
    """generate → classify → instances → export, each stage resuming; the server is
    checked once, before generate."""
    stop = interrupt or asyncio.Event()
    job = generate_job(out, force=force, **settings)
    generated = await _execute(job, settings, interrupt=stop)
    backend = {k: v for k, v in settings.items() if k in backend_settings.KEYWORDS}
    results: dict[str, StageStats] = {}
    for stage in later_stages(job.config.prompt_style):
        if stop.is_set():
            break
        if stage == "classify":
            results[stage] = await aclassify(out, interrupt=stop, check=False, **backend)
        else:
            results[stage] = await ainstances(out, per_task=per_task, interrupt=stop,
                                              check=False,
                                              instance_max_tokens=instance_max_tokens,
                                              **backend)
    exported = export(out, format, include_seeds=include_seeds)
    return RunResult(generated, results.get("classify"), results.get("instances"), exported)


def run(out: str | Path, **settings: Any) -> RunResult:
    """:func:`arun`, run to the end."""
    return run_sync(arun(out, **settings))
