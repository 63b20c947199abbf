"""Judge: a model rates every example on a rubric, with an overall score and a reason.

AlpaGasus kept the 9k of Alpaca's 52k examples that a judge scored at least 4.5 and
trained a better model than on all of them; ``export --min-score`` does the same with
``scores.jsonl``. Each example is judged ``samples`` times (one ``scores.jsonl`` line
each; its score is their mean). An answer with no readable verdict is recorded in
``rejected.jsonl`` as ``unparseable_verdict`` and asked once more, with a reminder of the
format; if that fails too the rejection is final (``"final": true``). It is never
scored 0. Resumable by ``(id, sample)``, like ``reason``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.language import Language, detect_language
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.dataset import read_dataset
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    REJECTED_FILE,
    SCORES_FILE,
    STATS_FILE,
    save_config_section,
    update_stats,
)
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.rubrics import load_rubric, rubric_path
from selfinstruct.runs.scores import Score, read_scores
from selfinstruct.runs.store import prepare_out_dir, read_json, read_jsonl
from selfinstruct.runs.templates import PromptTemplate, TemplateName, load_template
from selfinstruct.stages.base import Client, Plan
from selfinstruct.stages.base import check_resume as shared_check_resume
from selfinstruct.stages.per_record import StageSettings, StageStats, run_stage, stage_files
from selfinstruct.text.dialogues import Turn, transcript
from selfinstruct.text.rubric import Dimension, RubricError, Scale, answer_format, describe
from selfinstruct.text.verdicts import Verdict, read_verdict, verdict_schema

UNPARSEABLE = "unparseable_verdict"

#: Added to the prompt when the first answer could not be read.
REMINDER: dict[Language, str] = {
    "en": "Your previous answer could not be read. Answer with the JSON object only.",
    "zh": "上一次的回答无法读取。只回答那个 JSON 对象，不要写别的。",
}
_NO_INPUT: dict[Language, str] = {"en": "(none)", "zh": "（无）"}
#: The heading of ``--context``: the fields of the source an answer was grounded in.
_CONTEXT: dict[Language, str] = {
    "en": "The facts the response must be grounded in (check it against them):",
    "zh": "回答必须依据的资料（请据此核对回答）：",
}

#: The bundled rubric of each judge template (``prompts/LANG/…``).
BUNDLED_RUBRICS: dict[TemplateName, str] = {"judge": "rubric.txt",
                                            "dialogue-judge": "dialogue_rubric.txt"}


@dataclass(frozen=True)
class ScoreSettings:
    """How the judge is asked; validated here, once, for the CLI and the library alike."""

    scale: Scale = field(default_factory=Scale)
    samples: int = 1
    max_tokens: int = 1024
    #: None: greedy (0) for one sample, 0.7 when several are drawn to be averaged.
    temperature: float | None = None
    seed: int | None = None
    #: How often an unreadable answer is asked again.
    retries: int = 1
    #: Rubric file, one ``dimension: description`` a line (None: ``prompts/LANG/rubric.txt``).
    rubric: Path | None = None
    #: ``en``, ``zh``, or ``auto``: the run's, else detected from the instructions.
    language: str = "auto"
    #: The field holding the instruction, in a dataset file.
    field: str = "instruction"
    #: Fields of each example's record the judge sees, to check the answer against them
    #: (a distilled record's row columns, a file's own fields).
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UserError("--samples must be at least 1")
        if self.max_tokens < 16:
            raise UserError("--max-tokens must be at least 16")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise UserError("--temperature must be between 0 and 2")
        if self.retries < 0:
            raise UserError("retries must not be negative")

    @classmethod
    def of(cls, values: dict[str, Any]) -> ScoreSettings:
        """The settings from keywords named like ``score``'s flags (``scale`` as
        ``--scale`` writes it, e.g. "1-5"); a bad value is a :class:`UserError`."""
        own = dict(values)
        scale = own.get("scale", "1-5")
        if not isinstance(scale, Scale):
            try:
                own["scale"] = Scale.parse(scale)
            except RubricError as err:
                raise UserError(str(err)) from None
        if own.get("rubric") is not None:
            own["rubric"] = Path(own["rubric"])
        context = own.get("context") or ()
        own["context"] = (context,) if isinstance(context, str) else tuple(context)
        return cls(**own)

    @property
    def sampling_temperature(self) -> float:
        """The temperature sent: several greedy samples would all be the same."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.7


@dataclass(frozen=True)
class Judge:
    """What the judge reads: the rubric's dimensions, the prompt, the settings."""

    dimensions: tuple[Dimension, ...]
    template: PromptTemplate
    settings: ScoreSettings = field(default_factory=ScoreSettings)

    def prompt(self, example: Answered, attempt: int = 0) -> str:
        """The judge's prompt for ``example``; a retry adds a reminder of the format.
        A conversation is judged whole, from its transcript."""
        scale = self.settings.scale
        common = {"dimensions": describe(self.dimensions), "low": scale.low,
                  "high": scale.high, "answer_format": answer_format(self.dimensions, scale)}
        language = self.template.language
        context = ""
        if example.context:
            facts = "\n".join(f"{name}: {value}" for name, value in example.context)
            context = f"{_CONTEXT[language]}\n{facts}\n\n"
        if self.template.name == "dialogue-judge":
            turns = example.turns or (("user", example.instruction),
                                      ("assistant", example.output))
            text = self.template.render(**common, transcript=context + transcript(
                [Turn(role, content) for role, content in turns], language))
        else:
            given = example.input or _NO_INPUT[language]
            if context and "{context}" not in self.template.text:  # the user's own template
                given, context = f"{given}\n\n{context.rstrip()}", ""
            text = self.template.render(
                **common, instruction=example.instruction, input=given, context=context,
                output=example.output)
        return f"{text}\n\n{REMINDER[language]}" if attempt else text

    def request(self, example: Answered, sample: int, attempt: int = 0) -> Request:
        """One judge request. Its seed differs per example and sample (several samples
        with one seed would be one sample drawn several times) yet is the same on every
        run. The verdict's schema goes with it, for backends that hold an answer to one;
        :meth:`read` reads an answer in free text too."""
        seed = self.settings.seed
        return Request(
            prompt=self.prompt(example, attempt),
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.sampling_temperature,
            top_p=1.0,
            seed=None if seed is None else zlib.crc32(f"{seed}/{example.id}/{sample}".encode()),
            schema=verdict_schema(self.dimensions, self.settings.scale),
            schema_name="verdict",
        )

    def read(self, text: str) -> Verdict | str:
        """The verdict in an answer, or why there is none."""
        verdict = read_verdict(text, self.dimensions, self.settings.scale)
        return verdict if isinstance(verdict, Verdict) else verdict.detail


@dataclass(frozen=True)
class Pending:
    """A judge sample still to draw, and how many unreadable answers it has had."""

    example: Answered
    sample: int
    attempt: int = 0


def unjudged(examples: Sequence[Answered], samples: int, out_dir: Path) -> list[Pending]:
    """Each ``(example, sample)`` with no score and no final rejection in ``out_dir``: what
    a resumed run still has to ask (and what ``--dry-run`` counts)."""
    done = {(str(r["id"]), r["sample"]) for r in read_jsonl(out_dir / SCORES_FILE)}
    attempts: Counter[tuple[str, int]] = Counter()
    for record in read_jsonl(out_dir / REJECTED_FILE):
        if record.get("stage") == "score":
            key = (str(record["id"]), record["sample"])
            if record.get("final"):
                done.add(key)
            attempts[key] += 1
    return [Pending(example, sample, attempts[(example.id, sample)])
            for example in examples for sample in range(samples)
            if (example.id, sample) not in done]


async def score_run(
    examples: Sequence[Answered],
    out_dir: Path,
    backend: Backend,
    judge: Judge,
    settings: StageSettings,
    stop: asyncio.Event,
    progress: Callable[[StageStats], None] | None = None,
) -> StageStats:
    """Judge every missing sample of every example; ``stats.json`` gets the histogram."""
    samples = judge.settings.samples
    with stage_files(out_dir, SCORES_FILE) as files:
        pending = [{"id": p.example.id, "pending": p}
                   for p in unjudged(examples, samples, out_dir)]
        total = len(examples) * samples
        stats = StageStats("score", total=total, done_before=total - len(pending))

        def make_request(item: dict[str, Any]) -> Request:
            p: Pending = item["pending"]
            return judge.request(p.example, p.sample, p.attempt)

        def handle(item: dict[str, Any], completion: Completion) -> dict[str, Any] | None:
            p: Pending = item["pending"]
            model = completion.model or backend.name
            verdict = judge.read(completion.text)
            if isinstance(verdict, Verdict):
                files.results.write({
                    "id": p.example.id, "sample": p.sample,
                    "scores": {name: plain(v) for name, v in verdict.scores.items()},
                    "overall": plain(verdict.overall), "reason": verdict.reason, "model": model,
                })
                return None
            final = p.attempt >= judge.settings.retries
            files.rejected.write({
                "stage": "score", "filter": UNPARSEABLE, "detail": verdict,
                "id": p.example.id, "sample": p.sample, "attempt": p.attempt, "final": final,
                "answer": completion.text, "finish_reason": completion.finish_reason,
                "model": model,
            })
            if final:
                stats.rejected[UNPARSEABLE] += 1
                return None
            stats.seen["asked_again"] += 1
            return {**item, "pending": dataclasses.replace(p, attempt=p.attempt + 1)}

        try:
            return await run_stage(
                pending, backend=backend, settings=settings, make_request=make_request,
                handle=handle, files=files, stats=stats, stop=stop, progress=progress,
            )
        finally:
            update_stats(out_dir, "score", score_summary(read_scores(out_dir / SCORES_FILE)))


def plain(value: float) -> int | float:
    """4.0 as 4: scores on a whole-number scale read as whole numbers in the file."""
    return int(value) if value.is_integer() else value


def score_summary(scores: dict[str, Score]) -> dict[str, Any]:
    """The score part of ``stats.json``: how many examples are scored, the histogram of
    their overall scores, the mean and the mean of each dimension."""
    histogram = Counter(format(score.overall, "g") for score in scores.values())
    names = dict.fromkeys(name for score in scores.values() for name in score.scores)
    means = {}
    for name in names:
        values = [s.scores[name] for s in scores.values() if name in s.scores]
        means[name] = round(sum(values) / len(values), 4)
    overall = [score.overall for score in scores.values()]
    return {
        "scored": len(scores),
        "histogram": {key: histogram[key] for key in sorted(histogram, key=float)},
        "mean": round(sum(overall) / len(overall), 4) if overall else None,
        "dimension_means": means,
    }


#: Settings that change what a score means; a resumed run must not mix two of them.
SCORE_DEFINING = ("dimensions", "scale")


@dataclass(frozen=True)
class ScoreJob:
    """A ``score`` run, ready to send: the examples read, the judge and its model
    resolved. Like ``reason``, the judge comes from the flags, never from a run's config:
    the judge is usually not the model that wrote the data."""

    source: Path
    examples: list[Answered]
    out_dir: Path
    judge: Judge
    #: The ``score`` section of ``config.json`` (the model is added once connected).
    section: dict[str, Any]
    spec: BackendSpec
    name: str = "score"

    def plan(self) -> list[str]:
        """One request per example and sample not judged yet."""
        samples = self.judge.settings.samples
        pending = unjudged(self.examples, samples, self.out_dir)
        sample = self.judge.request(pending[0].example, pending[0].sample) if pending else None
        note = (f" ({len(self.examples)} examples x {samples} samples, "
                f"{len(self.examples) * samples - len(pending)} done)")
        return Plan(self.name, len(pending), sample, note if pending else "all judged").lines()

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Judge every example and sample not judged yet."""
        prepare_out_dir(self.out_dir)
        save_config_section(self.out_dir, "score", {**self.section,
                                                     "model": client.backend.name})
        return await score_run(self.examples, self.out_dir, client.backend, self.judge,
                               client.settings, stop, progress)

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, then how the examples scored: the histogram and the means."""
        section = (read_json(self.out_dir / STATS_FILE) or {}).get("score", {})
        if not section.get("scored"):
            return [*stats.summary(),
                    f"score: nothing scored yet in {self.out_dir / SCORES_FILE}"]
        histogram = ", ".join(f"{key}: {count}" for key, count in section["histogram"].items())
        means = ", ".join(f"{name} {value:g}"
                          for name, value in section["dimension_means"].items())
        lines = [*stats.summary(),
                 f"score: {section['scored']} examples scored in {self.out_dir / SCORES_FILE}"
                 f"; overall mean {section['mean']:g} ({histogram})"]
        if means:
            lines.append(f"dimension means: {means}")
        return lines


def source_examples(source: Path, *, field: str = "instruction",
                    context: Sequence[str] = ()) -> list[Answered]:
    """The examples of ``source`` as the judge sees them, under the ids ``export``,
    ``review`` and ``report`` give them too: anything
    :func:`~selfinstruct.runs.dataset.read_dataset` reads (a run directory, a dataset
    file, the output of ``dedup`` or ``mix``, an earlier ``score -o`` directory). A
    ``context`` field no example has is an error naming the fields there are."""
    examples = read_dataset(source, field=field).examples
    for name in context:
        if not any(name in example.fields for example in examples):
            there = sorted({key for example in examples[:100] for key in example.fields})
            raise UserError(f"--context {name}: no example of {source} has that field "
                            f"(fields: {', '.join(there) or 'none'})")
    return [Answered.of(example, context) for example in examples]


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
    """The rubric and the judge template in the data's language: for conversations (of
    ``dialogue``, or multi-turn files) the dialogue judge and its rubric."""
    lang = source_language(source, examples, language)
    name: TemplateName = ("dialogue-judge" if any(e.turns for e in examples) else "judge")
    return Judge(load_rubric(rubric, lang, BUNDLED_RUBRICS[name]),
                 load_template(name, lang, prompt_dir), settings)


def prepare_score(source: Path, out_dir: Path | None, settings: ScoreSettings,
                  backend: BackendSettings, *, force: bool = False) -> ScoreJob:
    """Read the examples and the rubric and check a resumed run; nothing is sent or
    written."""
    out = output_dir(source, out_dir)
    examples = source_examples(source, field=settings.field, context=settings.context)
    judge = make_judge(source, examples, rubric=settings.rubric, language=settings.language,
                       settings=settings)
    section = score_config(source, judge, settings.rubric, settings.field)
    check_resume(out, section, force=force)
    return ScoreJob(source, examples, out, judge, section, resolve_backend({}, backend))


def score_config(source: Path, judge: Judge, rubric: Path | None, field: str) -> dict[str, Any]:
    """The ``score`` section of ``config.json``: what ``review`` and ``report`` read back."""
    settings = judge.settings
    return {
        "source": str(source.resolve()),
        "field": field,
        "rubric": str(rubric_path(rubric, judge.template.language,
                                  BUNDLED_RUBRICS[judge.template.name])),
        "dimensions": [d.name for d in judge.dimensions],
        "scale": str(settings.scale),
        "language": judge.template.language,
        **{k: v for k, v in dataclasses.asdict(settings).items()
           if k not in ("scale", "rubric", "language", "field", "context")},
        "context": list(settings.context),
    }


def check_resume(out: Path, section: dict[str, Any], *, force: bool) -> None:
    """Refuse to add scores on another scale or rubric to an existing ``scores.jsonl``."""
    saved = (read_json(out / CONFIG_FILE) or {}).get("score") if out.is_dir() else None
    if not (out / SCORES_FILE).exists():
        return
    shared_check_resume(str(out), saved, section, SCORE_DEFINING, force=force,
                        consequence="one scores.jsonl would mix two scales")
