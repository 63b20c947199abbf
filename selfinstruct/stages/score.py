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
from selfinstruct.language import Language
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.runs.layout import REJECTED_FILE, SCORES_FILE, update_stats
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.scores import Score, read_scores
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate
from selfinstruct.stages.per_record import StageSettings, StageStats, run_stage, stage_files
from selfinstruct.text.rubric import Dimension, Scale, answer_format, describe
from selfinstruct.text.verdicts import Verdict, read_verdict, verdict_schema

UNPARSEABLE = "unparseable_verdict"

#: Added to the prompt when the first answer could not be read.
REMINDER: dict[Language, str] = {
    "en": "Your previous answer could not be read. Answer with the JSON object only.",
    "zh": "上一次的回答无法读取。只回答那个 JSON 对象，不要写别的。",
}
_NO_INPUT: dict[Language, str] = {"en": "(none)", "zh": "（无）"}


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

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UserError("--samples must be at least 1")
        if self.max_tokens < 16:
            raise UserError("--max-tokens must be at least 16")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise UserError("--temperature must be between 0 and 2")
        if self.retries < 0:
            raise UserError("retries must not be negative")

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
        """The judge's prompt for ``example``; a retry adds a reminder of the format."""
        scale = self.settings.scale
        text = self.template.render(
            dimensions=describe(self.dimensions), low=scale.low, high=scale.high,
            instruction=example.instruction,
            input=example.input or _NO_INPUT[self.template.language],
            output=example.output, answer_format=answer_format(self.dimensions, scale),
        )
        return f"{text}\n\n{REMINDER[self.template.language]}" if attempt else text

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
