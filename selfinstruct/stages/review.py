"""A human review round trip: a sample of examples out to a spreadsheet, verdicts back.

Self-Instruct had an expert rate 200 sampled instructions on three questions; the
articles we follow ask for manual QC of the training set and for human review where it
matters most. ``review RUN --sample N`` draws N examples stratified by score band (each
band of the judge's overall score, and the unscored, in proportion to its size, so the
review rates estimate the whole set's), plus with ``--lowest K`` the K lowest scored,
where a human look matters most; examples reviewed in an earlier round are not drawn
again. ``review RUN --import`` checks the filled-in sheet and merges it into
``review.jsonl``, which ``export`` applies (``drop`` removes, ``edit`` replaces the output).
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.runs.dataset import read_dataset
from selfinstruct.runs.layout import CONFIG_FILE, REVIEW_FILE, SCORES_FILE
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.review_sheet import SheetRow, read_sheet, write_sheet
from selfinstruct.runs.scores import Review, Score, read_reviews, read_scores
from selfinstruct.runs.store import read_json, write_atomic
from selfinstruct.stages.score import source_language

UNSCORED = "unscored"


@dataclass(frozen=True)
class ReviewSettings:
    """How the sample is drawn."""

    sample: int = 200
    seed: int = 0
    lowest: int = 0

    def __post_init__(self) -> None:
        if self.sample < 0 or self.lowest < 0:
            raise UserError("--sample and --lowest must not be negative")
        if self.sample + self.lowest == 0:
            raise UserError("nothing to review: give --sample N (and/or --lowest K)")


@dataclass(frozen=True)
class ReviewData:
    """A scored run as review sees it: its examples, their scores, earlier reviews."""

    run: Path
    examples: list[Answered]
    scores: dict[str, Score]
    reviews: dict[str, Review]
    language: Language


@dataclass(frozen=True)
class Drawn:
    """The examples drawn for the sheet, in sheet order, and how many per band."""

    rows: list[SheetRow]
    bands: dict[str, int]
    lowest: int


def load_review_data(run: Path) -> ReviewData:
    """The examples of a scored directory (a run scored in place, or the directory
    ``score -o`` wrote, read through the data it judged) or of a run directory that was
    never scored (then every example is unscored)."""
    if not run.is_dir():
        raise UserError(f"{run}: no such directory; give the directory score wrote to "
                        f"(score a file first: selfinstruct score {run} -o DIR)")
    dataset = read_dataset(run)
    examples = [Answered.of(example) for example in dataset.examples]
    saved = (read_json(run / CONFIG_FILE) or {}).get("score") or {}
    language = source_language(dataset.source, examples, saved.get("language", "auto"))
    return ReviewData(run, examples, read_scores(run / SCORES_FILE),
                      read_reviews(run / REVIEW_FILE), language)


def score_band(score: Score | None) -> str:
    """The band an example is drawn from: its overall score rounded down, or unscored."""
    return UNSCORED if score is None else str(math.floor(score.overall))


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` draws over bands in proportion to their sizes (largest remainder,
    ties to the larger band), never more than a band holds."""
    available = sum(sizes.values())
    total = min(total, available)
    if not total:
        return dict.fromkeys(sizes, 0)
    exact = {band: total * size / available for band, size in sizes.items()}
    counts = {band: math.floor(share) for band, share in exact.items()}
    order = sorted(sizes, key=lambda b: (counts[b] - exact[b], -sizes[b], b))
    for band in order[: total - sum(counts.values())]:
        counts[band] += 1
    return counts


def draw(data: ReviewData, settings: ReviewSettings) -> Drawn:
    """The stratified sample, then the lowest scored (pure given ``data``, seeded)."""
    rng = random.Random(settings.seed)
    candidates = [e for e in data.examples if e.id not in data.reviews]
    by_band: dict[str, list[Answered]] = {}
    for example in candidates:
        by_band.setdefault(score_band(data.scores.get(example.id)), []).append(example)
    counts = allocate({band: len(items) for band, items in by_band.items()}, settings.sample)
    sampled = [e for band in sorted(by_band) for e in rng.sample(by_band[band], counts[band])]
    rng.shuffle(sampled)
    chosen = {e.id for e in sampled}
    scored = sorted((data.scores[e.id].overall, e.id, e) for e in candidates
                    if e.id in data.scores and e.id not in chosen)
    lowest = [e for _, _, e in scored[: settings.lowest]]
    rows = [_row(e, "sample", data.scores) for e in sampled]
    rows += [_row(e, "lowest", data.scores) for e in lowest]
    return Drawn(rows, {band: n for band, n in sorted(counts.items()) if n}, len(lowest))


def _row(example: Answered, picked: str, scores: dict[str, Score]) -> SheetRow:
    score = scores.get(example.id)
    return SheetRow(example.id, picked, example.instruction, example.input, example.output,
                    score.overall if score else None, score.reason if score else "")


def write_review_sheet(
    run: Path, output: Path | None, settings: ReviewSettings, *, force: bool = False,
    dry_run: bool = False,
) -> tuple[Path, Drawn]:
    """Draw the sample and write the sheet (``RUN/review.xlsx`` unless told). An existing
    sheet may hold a reviewer's work, so it is only replaced with ``force``."""
    path = output or run / "review.xlsx"
    if path.suffix.lower() != ".xlsx":
        raise UserError(f"{path}: the review sheet must be an .xlsx file")
    if path.exists() and not force and not dry_run:
        raise UserError(f"{path} exists and may hold a reviewer's work; import it with "
                        f"--import {path}, or pass --force to draw a new sheet over it")
    data = load_review_data(run)
    drawn = draw(data, settings)
    if not drawn.rows:
        raise UserError(f"{run}: nothing left to review ({len(data.reviews)} of "
                        f"{len(data.examples)} examples reviewed already)")
    if not dry_run:
        write_sheet(path, drawn.rows, data.language)
    return path, drawn


@dataclass(frozen=True)
class Imported:
    """What an imported sheet held."""

    path: Path
    reviewed: int
    verdicts: dict[str, int]
    total_reviews: int


def import_review(run: Path, sheet: Path, *, dry_run: bool = False) -> Imported:
    """Check every cell of ``sheet`` and merge its reviews into ``review.jsonl`` (a later
    review of an example replaces the earlier one)."""
    data = load_review_data(run)
    reviews = read_sheet(sheet, {example.id for example in data.examples})
    merged = {**data.reviews, **{review.id: review for review in reviews}}
    path = run / REVIEW_FILE
    if not dry_run:
        lines = "".join(_json_line(review) for review in merged.values())
        write_atomic(path, lambda fp: fp.write(lines))
    verdicts = Counter(review.verdict for review in reviews)
    return Imported(path, len(reviews), dict(verdicts.most_common()), len(merged))


def _json_line(review: Review) -> str:
    return json.dumps(asdict(review), ensure_ascii=False) + "\n"
