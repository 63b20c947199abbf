"""``export --best-of``: of each prompt's K answers, keep the one the judge scored highest.

AlpaGasus showed that training on the judge's best answers beats training on all of
them; with ``--samples K`` the best of K is the cheapest way there. A tie goes to the
lower sample number (the first asked), so the same scores always keep the same answer;
a prompt none of whose answers was scored keeps nothing and is counted, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selfinstruct.runs.pairs import TrainingExample


@dataclass(frozen=True)
class BestOf:
    """The best answer of each prompt, and how many prompts had none scored."""

    examples: list[TrainingExample]
    prompts: int
    unscored_prompts: int

    def to_json(self) -> dict[str, int]:
        """The ``best_of`` part of the ``export`` section of ``stats.json``."""
        return {"prompts": self.prompts, "best_of_kept": len(self.examples),
                "unscored_prompts": self.unscored_prompts}

    def line(self) -> str:
        """What ``export`` says about it."""
        return (f"--best-of: the top-scored answer of {len(self.examples)} of {self.prompts} "
                f"prompts; {self.unscored_prompts} prompts without a scored answer left out")


def best_of(groups: Sequence[Sequence[TrainingExample]],
            scores: Mapping[str, float]) -> BestOf:
    """Per group (one prompt's answers, in sample order) the first of the top-scored."""
    kept: list[TrainingExample] = []
    unscored = 0
    for group in groups:
        scored = [example for example in group if example.key in scores]
        if not scored:
            unscored += 1
            continue
        # max() returns the first of equal maxima: the lowest sample wins a tie.
        kept.append(max(scored, key=lambda example: scores[example.key]))
    return BestOf(kept, len(groups), unscored)
