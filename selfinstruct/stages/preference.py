"""``export --pairs``: preference pairs (chosen, rejected) from each prompt's K answers.

The K answers a prompt got, once judged, are what DPO, ORPO and their kin train on
(UltraFeedback built its pairs this way): the top-scored answer is chosen, the
bottom-scored one rejected, and only when their overall scores lie at least a margin
apart, since a pair the judge barely tells apart teaches noise. ``every`` writes each
ordered pair that far apart instead. A prompt with fewer than two scored answers, or
whose answers lie closer than the margin, is counted and written nowhere.

Three shapes: LLaMA-Factory's Alpaca ranking data (``instruction``, ``input``,
``chosen``, ``rejected``, + ``system``), its ShareGPT ranking data (``conversations``
ending on the user's turn, then one ``chosen`` and one ``rejected`` message), and TRL's
conversational preference data (``prompt``, ``chosen`` and ``rejected`` message lists,
as ``DPOTrainer`` reads them). The first two are registered in ``dataset_info.json``
with ``"ranking": true``; TRL's lists are not LLaMA-Factory's single messages, so that
file is written for TRL and not registered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from selfinstruct.errors import UserError
from selfinstruct.runs.dataset import ExportData, read_dataset
from selfinstruct.runs.layout import update_stats
from selfinstruct.runs.pairs import TrainingExample
from selfinstruct.runs.store import read_json, write_json_atomic
from selfinstruct.stages.export import (
    FIELD_NOTE,
    ExportResult,
    ThinkStyle,
    dataset_name,
    export_path,
    response,
    write_export,
)
from selfinstruct.stages.ranking import rank

PairFormat = Literal["alpaca", "sharegpt", "messages"]

PAIR_FILE_NAMES: dict[PairFormat, str] = {
    "alpaca": "alpaca_pairs.json",
    "sharegpt": "sharegpt_pairs.json",
    "messages": "messages_pairs.jsonl",
}

#: Why a ``messages`` pairs file is not registered for LLaMA-Factory.
MESSAGES_NOTE = ("not registered in dataset_info.json: this is TRL's preference shape "
                 "(chosen and rejected are message lists), which LLaMA-Factory does not "
                 "read; for LLaMA-Factory export pairs with --format alpaca or sharegpt")


@dataclass(frozen=True)
class PreferencePair:
    """Two answers to one prompt, the better first, with the scores that ranked them."""

    chosen: TrainingExample
    rejected: TrainingExample
    chosen_score: float
    rejected_score: float


@dataclass(frozen=True)
class Pairs:
    """The pairs made, and why the other prompts gave none."""

    pairs: list[PreferencePair]
    prompts: int
    margin: float
    #: Prompts none of whose answers was scored.
    unscored: int = 0
    #: Prompts with one scored answer: nothing to compare it with.
    single: int = 0
    #: Prompts whose top and bottom answers lie closer than the margin.
    below_margin: int = 0
    #: Prompts whose best answer scored under ``--min-score``.
    below_min_score: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``pairs`` section of ``stats.json`` (``report`` shows it)."""
        return {"prompts": self.prompts, "pairs": len(self.pairs), "margin": self.margin,
                "unscored": self.unscored, "single": self.single,
                "below_margin": self.below_margin, "below_min_score": self.below_min_score}


def make_pairs(groups: Sequence[Sequence[TrainingExample]], scores: Mapping[str, float],
               margin: float, *, every: bool = False,
               min_score: float | None = None) -> Pairs:
    """One pair per prompt (``every``: each ordered pair) whose scores differ by at least
    ``margin``; ``groups`` are each prompt's answers in sample order, so among equal
    scores the first asked is chosen and the first asked is rejected."""
    pairs: list[PreferencePair] = []
    counts = {"unscored": 0, "single": 0, "below_margin": 0, "below_min_score": 0}
    for group in groups:
        scored = [(example, scores[example.key]) for example in group if example.key in scores]
        if len(scored) < 2:
            counts["unscored" if not scored else "single"] += 1
            continue
        found = _every_pair(scored, margin) if every else _top_bottom(scored, margin)
        if not found:
            counts["below_margin"] += 1
            continue
        good = [p for p in found if min_score is None or p.chosen_score >= min_score]
        if not good:
            counts["below_min_score"] += 1
        pairs += good
    return Pairs(pairs, len(groups), margin, **counts)


def _top_bottom(scored: Sequence[tuple[TrainingExample, float]],
                margin: float) -> list[PreferencePair]:
    top = max(scored, key=lambda item: item[1])
    bottom = min(scored, key=lambda item: item[1])
    if top[1] - bottom[1] < margin:
        return []
    return [PreferencePair(top[0], bottom[0], top[1], bottom[1])]


def _every_pair(scored: Sequence[tuple[TrainingExample, float]],
                margin: float) -> list[PreferencePair]:
    return [PreferencePair(better, worse, high, low)
            for better, high in scored for worse, low in scored
            if high - low >= margin]


def pair_records(pairs: Sequence[PreferencePair], fmt: PairFormat,
                 think: ThinkStyle = "inline") -> list[dict[str, Any]]:
    """The records of ``fmt`` (pure, so each shape is tested directly). Traces follow
    ``think`` as in a plain export: inline before the answer, in a field of their own
    (``reasoning_content`` on a message, ``chosen_reasoning`` / ``rejected_reasoning``
    beside Alpaca's answers), or dropped."""
    return [_record(pair, fmt, think) for pair in pairs]


def _record(pair: PreferencePair, fmt: PairFormat, think: ThinkStyle) -> dict[str, Any]:
    prompt = pair.chosen
    answers = {"chosen": pair.chosen, "rejected": pair.rejected}
    if fmt == "alpaca":
        record: dict[str, Any] = {"instruction": prompt.instruction, "input": prompt.input}
        for side, example in answers.items():
            record[side] = response(example, think)
            if think == "field" and example.reasoning:
                record[f"{side}_reasoning"] = example.reasoning
        if prompt.system:
            record["system"] = prompt.system
        return record
    role, content, roles = (("from", "value", ("system", "human", "gpt")) if fmt == "sharegpt"
                            else ("role", "content", ("system", "user", "assistant")))
    turns = [{role: roles[1], content: prompt.prompt}]
    if prompt.system:
        turns.insert(0, {role: roles[0], content: prompt.system})
    replies = {}
    for side, example in answers.items():
        reply = {role: roles[2], content: response(example, think)}
        if think == "field" and example.reasoning:
            reply["reasoning_content"] = example.reasoning
        replies[side] = reply
    if fmt == "sharegpt":
        return {"conversations": turns, **replies}
    return {"prompt": turns, **{side: [reply] for side, reply in replies.items()}}


def pair_dataset_info_entry(fmt: PairFormat, file_name: str,
                            system: bool = False) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for ranking data of ``fmt`` (alpaca or
    sharegpt; TRL's ``messages`` shape has none)."""
    if fmt == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "chosen": "chosen",
                   "rejected": "rejected"}
        if system:
            columns["system"] = "system"
        return {"file_name": file_name, "ranking": True, "columns": columns}
    if fmt == "sharegpt":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen",
                        "rejected": "rejected"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt", "system_tag": "system"},
        }
    raise ValueError(f"{fmt}: LLaMA-Factory reads no ranking data of this shape")


def export_pairs(
    source: Path,
    fmt: PairFormat,
    output: Path | None = None,
    *,
    data: ExportData = "auto",
    think: ThinkStyle = "inline",
    margin: float = 1.0,
    every: bool = False,
    min_score: float | None = None,
    fields: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write the preference pairs of ``source`` (a run or ``score -o`` directory: the
    scores, or a reason run's reference checks, live there) as ``fmt`` and register them
    in ``dataset_info.json`` beside them; ``min_score`` keeps the pairs whose chosen answer
    scored at least that. The counts go to the ``pairs`` section of ``stats.json``."""
    if margin <= 0:
        raise UserError("--min-margin must be positive: answers of equal score make no "
                        "preference")
    dataset = read_dataset(source, data=data, fields=fields)
    ranked = rank(dataset, min_score, flag="--pairs")
    made = make_pairs(ranked.groups(), ranked.scores, margin, every=every, min_score=min_score)
    pairs = [p for p in made.pairs
             if p.chosen.instruction and p.chosen.output and p.rejected.output]
    path = output or export_path(dataset, PAIR_FILE_NAMES[fmt])
    write_export(path, dataset, pair_records(pairs, fmt, think), jsonl=fmt == "messages")
    if dataset.directory is not None:
        update_stats(dataset.directory, "pairs", {**made.to_json(), "basis": ranked.basis})
    info_path = path.parent / "dataset_info.json"
    lines = (pairs_line(made, ranked.basis),)
    skipped = len(made.pairs) - len(pairs)
    traced = any(p.chosen.reasoning or p.rejected.reasoning for p in pairs)
    note = MESSAGES_NOTE if fmt == "messages" else FIELD_NOTE if think == "field" and traced \
        else ""
    if note:
        return ExportResult(path, len(pairs), info_path, None, ranked.reviewed, skipped,
                            note=note, summary=lines, unit="pairs")
    name = dataset_name(dataset.path, f"{fmt}_pairs")
    info = read_json(info_path) or {}
    info[name] = pair_dataset_info_entry(fmt, path.name, any(p.chosen.system for p in pairs))
    write_json_atomic(info_path, info)
    return ExportResult(path, len(pairs), info_path, name, ranked.reviewed, skipped,
                        summary=lines, unit="pairs")


def pairs_line(made: Pairs, basis: str) -> str:
    """What ``export --pairs`` says about the prompts it paired and those it did not."""
    ranked_by = "the judge's scores" if basis == "judge" else "reference answers (correct 1, " \
                                                             "wrong 0)"
    line = (f"--pairs (ranked by {ranked_by}): {len(made.pairs)} pairs from {made.prompts} "
            f"prompts; left out: {made.below_margin} with top and bottom closer than "
            f"{made.margin:g}, {made.single} with one scored answer, {made.unscored} with none")
    if made.below_min_score:
        line += f", {made.below_min_score} whose best scored under --min-score"
    return line


def pair_format(fmt: str, *, best_of: bool, include_seeds: bool) -> PairFormat:
    """``--format`` as a pairs format; the export flags that make no sense for pairs are
    refused here, before anything is read."""
    if fmt not in get_args(PairFormat):
        raise UserError(f"--pairs --format {fmt}: pairs are written as "
                        f"{', '.join(PAIR_FILE_NAMES)}")
    if best_of:
        raise UserError("--best-of keeps one answer per prompt; --pairs keeps two: pick one")
    if include_seeds:
        raise UserError("--include-seeds adds the seed tasks' one answer each, which make "
                        "no pair; leave it out with --pairs")
    return cast(PairFormat, fmt)
