"""Decide what ``export`` keeps, from the judge's scores and the reviewers' verdicts.

The two compose, in this order: ``--min-score X`` keeps the examples whose overall
score is at least X (an example with no score, because it was never judged or its
verdict was unreadable, is not at least X); then a reviewer's ``drop`` removes an example
and ``edit`` replaces its output with the reviewer's. Examples without a key (the seed
tasks' own instances, added by ``--include-seeds``) were written by people and pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.dataset import Dataset
from selfinstruct.runs.layout import REVIEW_FILE, SCORES_FILE
from selfinstruct.runs.pairs import TrainingExample
from selfinstruct.runs.scores import Review, Score, read_reviews, read_scores


@dataclass(frozen=True)
class Curated:
    """The examples kept, and how many each rule took out or changed."""

    examples: list[TrainingExample]
    considered: int
    min_score: float | None = None
    below_min_score: int = 0
    unscored: int = 0
    dropped_in_review: int = 0
    edited: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``export`` part of ``stats.json``."""
        data = dataclasses.asdict(self)
        data["kept"] = len(data.pop("examples"))
        return data


def curate(
    examples: Sequence[TrainingExample],
    scores: dict[str, Score],
    reviews: dict[str, Review],
    min_score: float | None,
) -> Curated:
    """Apply ``--min-score`` and the review verdicts (pure, so each rule is tested)."""
    kept: list[TrainingExample] = []
    counts = {"below_min_score": 0, "unscored": 0, "dropped_in_review": 0, "edited": 0}
    for example in examples:
        if example.key and min_score is not None:
            score = scores.get(example.key)
            if score is None or score.overall < min_score:
                counts["unscored" if score is None else "below_min_score"] += 1
                continue
        review = reviews.get(example.key) if example.key else None
        if review is not None and review.verdict == "drop":
            counts["dropped_in_review"] += 1
            continue
        if review is not None and review.verdict == "edit":
            example = dataclasses.replace(example, output=review.edited_output)
            counts["edited"] += 1
        kept.append(example)
    return Curated(kept, len(examples), min_score, **counts)


def curate_dataset(dataset: Dataset, min_score: float | None) -> Curated:
    """:func:`curate` with the ``scores.jsonl`` and ``review.jsonl`` of the dataset's
    directory (a run, or what ``score -o`` wrote); a file has neither."""
    directory = dataset.directory
    if min_score is not None and directory is None:
        raise UserError(f"{dataset.path}: a file holds no scores for --min-score; run "
                        f"selfinstruct score {dataset.path} -o DIR, then selfinstruct "
                        f"export DIR --min-score {min_score:g}")
    if directory is None:
        return curate(dataset.examples, {}, {}, None)
    scores_path = directory / SCORES_FILE
    if min_score is not None and not scores_path.exists():
        raise UserError(f"{directory}: no {SCORES_FILE} for --min-score; run selfinstruct "
                        f"score {directory} first")
    scores = read_scores(scores_path) if min_score is not None else {}
    return curate(dataset.examples, scores, read_reviews(directory / REVIEW_FILE), min_score)
