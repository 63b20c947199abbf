"""Review rates with their uncertainty, next to Self-Instruct's.

A reviewer answers Self-Instruct's three questions for a sample; with 200 examples a
rate of 58% is really "somewhere between 51% and 65%", so each rate is shown with its
95% Wilson score interval, which stays inside [0, 1] and behaves at small counts and at
rates near 0 or 1, where the normal approximation does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from selfinstruct.runs.scores import QUESTIONS, Review

#: Self-Instruct §4, 200 sampled instructions rated by an expert.
SELF_INSTRUCT = {"valid_instruction": 0.92, "appropriate_input": 0.79, "correct_output": 0.58,
                 "all_three": 0.54}
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """``yes`` of ``answered`` said yes, and the 95% interval of the rate."""

    name: str
    yes: int
    answered: int

    @property
    def value(self) -> float | None:
        """The rate, or None when nobody answered."""
        return self.yes / self.answered if self.answered else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson score interval."""
        return wilson(self.yes, self.answered)


def wilson(yes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval of ``yes`` successes in ``n`` trials (None for n = 0)."""
    if n == 0:
        return None
    p = yes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if yes == 0 else max(0.0, centre - half)
    high = 1.0 if yes == n else min(1.0, centre + half)
    return low, high


def review_rates(reviews: Iterable[Review]) -> list[Rate]:
    """Each question's rate over the rows that answered it, and "all three" over the rows
    that answered all three (the stratified sample only: the lowest-scored rows added by
    ``--lowest`` would bias the rates down)."""
    sampled = [r for r in reviews if r.picked == "sample"]
    rates = []
    for name in QUESTIONS:
        answers = [getattr(r, name) for r in sampled if getattr(r, name) is not None]
        rates.append(Rate(name, sum(answers), len(answers)))
    complete = [r for r in sampled if all(v is not None for v in r.answers().values())]
    rates.append(Rate("all_three", sum(all(r.answers().values()) for r in complete),
                      len(complete)))
    return rates
