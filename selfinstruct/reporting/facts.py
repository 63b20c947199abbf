"""Every number the report shows, computed from the run's files.

The funnel of each stage (what came in, what each filter took out, what was kept)
comes from the result files and ``rejected.jsonl``, so it holds for a run resumed any
number of times; the export's comes from ``stats.json``, which ``export`` writes.
Lengths, leading verbs and the similarity to the seeds come from the instructions and
examples themselves; scores and reviews from ``scores.jsonl`` and ``review.jsonl``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.reporting.rates import Rate, review_rates
from selfinstruct.reporting.verbs import VerbCounts, count_verbs
from selfinstruct.runs.dataset import read_dataset
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DIALOGUES_FILE,
    INSTANCES_FILE,
    INSTRUCTIONS_FILE,
    REASONING_FILE,
    REJECTED_FILE,
    REVIEW_FILE,
    SCORES_FILE,
    STATS_FILE,
)
from selfinstruct.runs.pairs import Answered, TrainingExample
from selfinstruct.runs.scores import Review, Score, read_reviews, read_scores
from selfinstruct.runs.seeds import load_seeds
from selfinstruct.runs.store import read_json, read_jsonl
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.stages.ranking import group_by_prompt, spread
from selfinstruct.stages.score import UNPARSEABLE, score_summary, source_language
from selfinstruct.text.rubric import Scale

#: Rejected examples shown per filter.
EXAMPLES_PER_FILTER = 2


@dataclass(frozen=True)
class Funnel:
    """One stage: how many came in, what each filter took out, how many were kept."""

    stage: str
    unit: str
    candidates: int
    rejected: list[tuple[str, int]]
    kept: int
    note: str = ""


@dataclass(frozen=True)
class SeedSimilarity:
    """ROUGE-L of each generated instruction to its most similar seed task."""

    scores: list[float]
    seeds: int
    threshold: float | None


@dataclass
class RunFacts:
    """What the report is made of."""

    run: Path
    language: Language
    funnels: list[Funnel] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    examples: list[Answered] = field(default_factory=list)
    similarity: SeedSimilarity | None = None
    verbs: VerbCounts | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    score_stats: dict[str, Any] = field(default_factory=dict)
    scale: Scale | None = None
    reviews: list[Review] = field(default_factory=list)
    rates: list[Rate] = field(default_factory=list)
    rejected_examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: How far the scores of each prompt's K answers lie apart (:func:`ranking.spread`).
    spread: dict[str, Any] = field(default_factory=dict)

    def lengths(self) -> dict[str, list[int]]:
        """Lengths in words (a Han or kana character counts as one word) of the
        instructions, the non-empty inputs and the outputs."""
        return {
            "instruction": [len(tokenize(t)) for t in self.instructions],
            "input": [len(tokenize(e.input)) for e in self.examples if e.input],
            "output": [len(tokenize(e.output)) for e in self.examples],
        }


def gather(run: Path) -> RunFacts:
    """Read every file of ``run`` the report needs (of a dataset file: its examples)."""
    if not run.exists():
        raise UserError(f"{run}: no such run directory or file")
    config = read_json(run / CONFIG_FILE) or {}
    source, examples, groups = _examples(run)
    instructions = [str(r["instruction"]) for r in read_jsonl(run / INSTRUCTIONS_FILE)]
    if not instructions:
        instructions = list(dict.fromkeys(e.instruction for e in examples))
    if not instructions:
        raise UserError(f"{run}: no instructions or examples to report on")
    language = source_language(source, examples or [Answered("", t, "", "") for t in
                                                    instructions[:1000]], "auto")
    scores = read_scores(run / SCORES_FILE)
    reviews = list(read_reviews(run / REVIEW_FILE).values())
    saved_scale = config.get("score", {}).get("scale")
    return RunFacts(
        run=run, language=language, funnels=funnels(run), instructions=instructions,
        examples=examples, similarity=seed_similarity(run, config),
        verbs=count_verbs(instructions, language), scores=scores,
        score_stats=score_summary(scores) if scores else {},
        scale=Scale.parse(saved_scale) if saved_scale else None,
        reviews=reviews, rates=review_rates(reviews), rejected_examples=rejected_examples(run),
        spread=spread(groups, {key: s.overall for key, s in scores.items()}),
    )


def _examples(run: Path) -> tuple[Path, list[Answered], list[list[TrainingExample]]]:
    """The data the examples come from (what a ``score -o`` directory judged), them, and
    them grouped by the prompt they answer."""
    try:
        dataset = read_dataset(run)
    except UserError:
        if run.is_file():
            raise  # a file is its examples: one that cannot be read has nothing to show
        return run, [], []  # a pool without instances yet: its instructions are worth a look
    return (dataset.source, [Answered.of(example) for example in dataset.examples],
            group_by_prompt(dataset.examples))


def funnels(run: Path) -> list[Funnel]:
    """The funnel of every stage the run has been through."""
    rejected: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for record in read_jsonl(run / REJECTED_FILE):
        if record.get("stage") != "score" or record.get("final"):
            rejected[str(record.get("stage"))][str(record.get("filter"))] += 1
    found = []
    if (run / INSTRUCTIONS_FILE).exists():
        kept = sum(1 for _ in read_jsonl(run / INSTRUCTIONS_FILE))
        answers = rejected["generate"].pop("unparseable", 0)
        note = f"{answers} answers held no task" if answers else ""
        found.append(_funnel("generate", "candidate instructions", rejected["generate"], kept,
                             note))
    if (run / INSTANCES_FILE).exists():
        kept = sum(len(t["instances"]) for t in read_jsonl(run / INSTANCES_FILE))
        found.append(_funnel("instances", "instances", rejected["instances"], kept))
    if (run / REASONING_FILE).exists():
        kept = sum(1 for _ in read_jsonl(run / REASONING_FILE))
        found.append(_funnel("reason", "traces", rejected["reason"], kept))
    if (run / DIALOGUES_FILE).exists():
        found.append(dialogue_funnel(run, rejected["dialogue"]))
    if (run / SCORES_FILE).exists() or rejected["score"]:
        kept = sum(1 for _ in read_jsonl(run / SCORES_FILE))
        found.append(_funnel("score", "verdicts", rejected["score"], kept,
                             "an unreadable verdict is asked once more before it counts"))
    export = (read_json(run / STATS_FILE) or {}).get("export")
    if isinstance(export, dict):
        taken = Counter({name: export.get(name, 0) for name in
                         ("below_min_score", "unscored", "dropped_in_review")})
        found.append(Funnel("export", "examples", export["considered"],
                            [(k, v) for k, v in taken.most_common() if v], export["kept"],
                            f"{export.get('edited', 0)} edited in review"))
    pairs = (read_json(run / STATS_FILE) or {}).get("pairs")
    if isinstance(pairs, dict):
        found.append(pairs_funnel(pairs))
    return found


def dialogue_funnel(run: Path, rejected: Counter[str]) -> Funnel:
    """The conversations kept and rejected, with how many exchanges the kept ones have."""
    lengths = Counter(len(r.get("messages") or []) // 2 for r in read_jsonl(run / DIALOGUES_FILE))
    shape = ", ".join(f"{count} of {turns}" for turns, count in sorted(lengths.items()))
    return _funnel("dialogue", "conversations", rejected, sum(lengths.values()),
                   f"exchanges per conversation: {shape or 'none kept'}")


def pairs_funnel(pairs: dict[str, Any]) -> Funnel:
    """``export --pairs``: the prompts, those the margin and the rest left without a
    pair, and those paired (``stats.json``'s ``pairs`` section)."""
    taken = Counter({name: pairs.get(name, 0) for name in
                     ("below_margin", "single", "unscored", "below_min_score")})
    left = sum(taken.values())
    return Funnel("pairs", "prompts", pairs["prompts"],
                  [(k, v) for k, v in taken.most_common() if v], pairs["prompts"] - left,
                  f"{pairs['pairs']} pairs at least {pairs['margin']:g} apart, ranked by "
                  f"{'the judge' if pairs.get('basis', 'judge') == 'judge' else 'reference'}")


def _funnel(stage: str, unit: str, rejected: Counter[str], kept: int, note: str = "") -> Funnel:
    return Funnel(stage, unit, kept + sum(rejected.values()), rejected.most_common(), kept, note)


def seed_similarity(run: Path, config: dict[str, Any]) -> SeedSimilarity | None:
    """ROUGE-L of each instruction to its nearest seed (a generate run only)."""
    seeds_path = config.get("seeds")
    if not seeds_path or not (run / INSTRUCTIONS_FILE).exists() or not Path(seeds_path).exists():
        return None
    from selfinstruct.similarity.index import SimilarityIndex  # numpy: only for a report

    index = SimilarityIndex(config.get("tokenizer", "multilingual"))
    seeds = load_seeds(Path(seeds_path))
    for seed in seeds:
        index.add(seed.instruction)
    scores = [index.max_score(str(r["instruction"])) for r in read_jsonl(run / INSTRUCTIONS_FILE)]
    return SeedSimilarity(scores, len(seeds), config.get("similarity_threshold"))


def rejected_examples(run: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The first few rejections of each filter, per stage (no two alike)."""
    shown: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    texts: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for record in read_jsonl(run / REJECTED_FILE):
        key = (str(record.get("stage")), str(record.get("filter")))
        if key[1] == UNPARSEABLE and not record.get("final"):
            continue
        text = str(record.get("candidate") or record.get("output") or record.get("answer"))
        if len(shown[key]) < EXAMPLES_PER_FILTER and text not in texts[key]:
            shown[key].append(record)
            texts[key].add(text)
    return dict(shown)
