"""PURE: the arithmetic of a weighted blend: shares, whole-record quotas, draws, identity.

``mix`` blends human, public and synthetic data by ratio. Its numbers must come out
exact and reproducible: weights 0.5 / 0.3 / 0.2 of 100 records are 50 / 30 / 20, never
49 / 30 / 21 from rounding each share on its own, and the same seed draws the same
records. Everything here turns values into values (no files), so the stage that reads
and writes (:mod:`selfinstruct.stages.mix`) stays a thin shell around it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any


def shares(weights: Sequence[float]) -> list[float]:
    """The weights as fractions of one; every weight must be positive and finite."""
    if not weights:
        raise ValueError("no weights")
    for weight in weights:
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight {weight!r} is not a positive number")
    total = math.fsum(weights)
    return [weight / total for weight in weights]


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` in whole numbers that add up to it.

    Hamilton's method: each part gets the whole number below its exact quota, and the
    units still missing go to the largest remainders (the earlier part on a tie). The
    quotas are exact fractions of the weights as written (0.3 is 3/10), so 0.3 of 100
    is 30, not 29.999999999999996 rounded down.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    shares(weights)  # the same checks
    exact_weights = [Fraction(repr(weight)) for weight in weights]
    whole = sum(exact_weights)
    exact = [total * weight / whole for weight in exact_weights]
    floors = [math.floor(value) for value in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:total - sum(floors)]:
        floors[i] += 1
    return floors


def draw(count: int, available: int, rng: random.Random, *,
         allow_repeats: bool = False) -> list[int]:
    """``count`` indices into ``available`` records, drawn without replacement.

    With ``allow_repeats`` a count above ``available`` takes every record the same
    number of times (as many whole rounds as fit) and draws the rest without
    replacement, so no record is repeated more than once beyond another.
    """
    if count < 0 or available < 0:
        raise ValueError("counts must not be negative")
    if count > available and not allow_repeats:
        raise ValueError(f"cannot draw {count} of {available} without repeats")
    if count and not available:
        raise ValueError("nothing to draw from")
    rounds, rest = divmod(count, available) if available else (0, 0)
    return [i for _ in range(rounds) for i in range(available)] + \
        rng.sample(range(available), rest)


def record_key(record: Mapping[str, Any], fields: Iterable[str] | None = None,
               ignore: Iterable[str] = ("id",)) -> str:
    """What makes two records the same: their ``fields`` (default: every field but
    ``ignore``), as canonical JSON, so key order and spacing never matter."""
    if fields is not None:
        chosen = {name: record.get(name) for name in fields}
    else:
        skipped = set(ignore)
        chosen = {name: value for name, value in record.items() if name not in skipped}
    return json.dumps(chosen, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def source_rng(seed: int, index: int) -> random.Random:
    """The generator of source ``index``'s draw: one per source, so a source's records
    depend on the seed and its place alone."""
    return random.Random(f"selfinstruct-mix/{seed}/{index}")
