"""The K answers of each prompt, and how they rank: by the judge, or by the reference.

``--samples K`` gives each prompt several answers; ``export --best-of`` keeps the best
of them and ``export --pairs`` turns the best and the worst into a preference pair. Both
need the same two things, kept here: which answers answer the same prompt (the *prompt
unit*) and what each answer is worth (its *rank score*).

The prompt unit is read from the record an example came from, not from its text, so
that two prompts that happen to read alike stay apart: a distilled record's row and item
(its id is ``row/item/sample``), a reasoning trace's prompt id (``id/sample``). Examples
without such a record (the instances of a generated pool, a plain file) are grouped by
what the model was asked: the system prompt, the instruction and the input.

The rank score is the judge's overall score (``scores.jsonl``, the mean of its samples).
A ``reason`` run made with ``--reference-field`` and never judged ranks by the rule
instead: a trace whose answer matches the reference scores 1, a wrong one 0 (the wrong
ones wait in ``rejected.jsonl`` with the full record, filter ``wrong_answer``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.runs.dataset import Dataset
from selfinstruct.runs.layout import REASONING_FILE, REJECTED_FILE, REVIEW_FILE, SCORES_FILE
from selfinstruct.runs.pairs import TrainingExample, trace_key
from selfinstruct.runs.scores import Score, read_reviews, read_scores
from selfinstruct.runs.store import read_jsonl
from selfinstruct.stages.curate import Curated, curate

#: Where the rank scores came from.
Basis = Literal["judge", "reference"]
#: The filter ``reason`` rejects a trace with when its answer is not the reference.
WRONG_ANSWER = "wrong_answer"


@dataclass(frozen=True)
class Ranked:
    """A dataset's examples after review, and their rank scores."""

    #: The examples a reviewer did not drop (edits applied), with the review's counts.
    reviewed: Curated
    #: Rank score by example key; an example without one was never judged.
    scores: Mapping[str, float]
    #: The judge's scores (empty when ranked by reference), for ``--min-score``.
    judged: Mapping[str, Score]
    basis: Basis

    def groups(self) -> list[list[TrainingExample]]:
        """The examples of each prompt, in the order the prompts first appear."""
        return group_by_prompt(self.reviewed.examples)

    def at_least(self, examples: Sequence[TrainingExample], min_score: float | None) -> Curated:
        """``--min-score`` on ``examples`` (already reviewed): those the judge scored at
        least that high, with the counts of the others."""
        return curate(examples, dict(self.judged), {}, min_score)


def prompt_unit(example: TrainingExample) -> tuple[str, ...]:
    """What an example answers: its record's row and item (distilled), its prompt id (a
    trace), else the system prompt, instruction and input it was asked."""
    record = example.fields
    if "sample" in record and "id" in record:
        if "response" in record and "prompt" in record:
            return ("distilled", str(record["id"]), str(record.get("item", 0)))
        return ("trace", str(record["id"]))
    return ("text", example.system or "", example.instruction, example.input)


def sample_number(example: TrainingExample) -> int:
    """The example's sample number (0 for data without one): ties go to the lower."""
    value = example.fields.get("sample", 0)
    return value if isinstance(value, int) else 0


def group_by_prompt(examples: Iterable[TrainingExample]) -> list[list[TrainingExample]]:
    """The examples of each prompt unit, each group in sample order (answers arrive in
    the order the server finished them, not the order they were asked)."""
    groups: dict[tuple[str, ...], list[TrainingExample]] = {}
    for example in examples:
        groups.setdefault(prompt_unit(example), []).append(example)
    return [sorted(group, key=sample_number) for group in groups.values()]


def rank(dataset: Dataset, min_score: float | None, *, flag: str) -> Ranked:
    """The examples of ``dataset`` after review, with their rank scores: the judge's, or
    (a ``reason`` run with references and no ``scores.jsonl``) correct 1 / wrong 0.
    ``flag`` names the option that needs them, for the error that says how to get them."""
    directory = dataset.directory
    if directory is None:
        raise UserError(f"{dataset.path}: a file holds no scores for {flag}; run "
                        f"selfinstruct score {dataset.path} -o DIR, then selfinstruct "
                        f"export DIR {flag}")
    reviews = read_reviews(directory / REVIEW_FILE)
    if (directory / SCORES_FILE).exists():
        judged = read_scores(directory / SCORES_FILE)
        return Ranked(curate(dataset.examples, {}, reviews, None),
                      {key: score.overall for key, score in judged.items()}, judged, "judge")
    wrong = wrong_traces(dataset.source)
    if wrong is None:
        raise UserError(f"{directory}: no {SCORES_FILE} for {flag}; run selfinstruct score "
                        f"{dataset.path} -o DIR first (or reason --reference-field, whose "
                        "correct and wrong traces rank without a judge)")
    if min_score is not None:
        raise UserError("--min-score needs the judge's scores; this reason run is ranked by "
                        "its reference answers (correct or wrong): leave --min-score out")
    examples = [*dataset.examples, *wrong]
    scores = {e.key: 1.0 if e.fields.get("correct", True) else 0.0 for e in examples}
    return Ranked(curate(examples, {}, reviews, None), scores, {}, "reference")


def wrong_traces(source: Path) -> list[TrainingExample] | None:
    """The traces a ``reason`` run with references rejected for a wrong answer, as
    examples; None when ``source`` is not such a run (no reference was checked)."""
    if not source.is_dir() or not (source / REASONING_FILE).exists():
        return None
    kept = list(read_jsonl(source / REASONING_FILE))
    rejected = [r for r in read_jsonl(source / REJECTED_FILE)
                if r.get("stage") == "reason" and r.get("filter") == WRONG_ANSWER]
    if not rejected and not any("correct" in r for r in kept):
        return None
    return [_trace_example(r) for r in rejected]


def _trace_example(record: Mapping[str, Any]) -> TrainingExample:
    return TrainingExample(record["instruction"], record["input"], record["answer"],
                           record.get("reasoning") or None,
                           trace_key(record["id"], record["sample"]), fields=record)


def spread(groups: Sequence[Sequence[TrainingExample]],
           scores: Mapping[str, float]) -> dict[str, Any]:
    """How far the scores of each prompt's answers lie apart: prompts with two or more
    scored answers, how many of them disagree (not all the same score), and the spread
    (top minus bottom) of each, for ``report``."""
    spreads = []
    for group in groups:
        values = [scores[e.key] for e in group if e.key in scores]
        if len(values) >= 2:
            spreads.append(round(max(values) - min(values), 4))
    return {"prompts": len(spreads), "disagree": sum(1 for s in spreads if s > 0),
            "spreads": spreads}
