"""What the judge and the reviewers said about each example, as the later steps read it.

``scores.jsonl`` holds one line per judge sample (``--samples K`` draws K); an example's
score is the mean over its samples, per dimension and overall. ``review.jsonl`` holds a
reviewer's answers per example. ``export``, ``review`` and ``report`` read both through
this module, so they agree on what an example's score is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.runs.store import read_jsonl

ReviewVerdict = Literal["keep", "drop", "edit"]
#: Self-Instruct's three questions (§4), asked of every reviewed example.
QUESTIONS = ("valid_instruction", "appropriate_input", "correct_output")


@dataclass(frozen=True)
class Score:
    """An example's score: the mean of its judge samples."""

    id: str
    overall: float
    scores: dict[str, float]
    reason: str
    samples: int
    model: str


@dataclass(frozen=True)
class Review:
    """A reviewer's answers about one example; a question left blank is None."""

    id: str
    verdict: ReviewVerdict
    valid_instruction: bool | None = None
    appropriate_input: bool | None = None
    correct_output: bool | None = None
    edited_output: str = ""
    comment: str = ""
    #: How the example came into the sheet: ``sample`` (stratified) or ``lowest``.
    picked: str = "sample"

    def answers(self) -> dict[str, bool | None]:
        """The three questions and their answers."""
        return {name: getattr(self, name) for name in QUESTIONS}


def read_scores(path: Path) -> dict[str, Score]:
    """Every scored example of ``scores.jsonl``, in the order first scored."""
    samples: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_jsonl(path):
        samples[str(record["id"])].append(record)
    return {key: _mean(key, records) for key, records in samples.items()}


def _mean(key: str, records: list[dict[str, Any]]) -> Score:
    names = dict.fromkeys(name for r in records for name in r.get("scores", {}))
    scores = {}
    for name in names:
        values = [r["scores"][name] for r in records if name in r.get("scores", {})]
        scores[name] = round(sum(values) / len(values), 4)
    overall = round(sum(r["overall"] for r in records) / len(records), 4)
    return Score(key, overall, scores, str(records[0].get("reason", "")), len(records),
                 str(records[0].get("model", "")))


def read_reviews(path: Path) -> dict[str, Review]:
    """The reviews of ``review.jsonl`` by example id (a later line for an id wins)."""
    reviews: dict[str, Review] = {}
    for record in read_jsonl(path):
        fields = {name: record.get(name) for name in QUESTIONS}
        reviews[str(record["id"])] = Review(
            id=str(record["id"]), verdict=record["verdict"],
            edited_output=str(record.get("edited_output") or ""),
            comment=str(record.get("comment") or ""),
            picked=str(record.get("picked") or "sample"), **fields,
        )
    return reviews
