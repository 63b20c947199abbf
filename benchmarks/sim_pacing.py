"""Simulate ``generate``'s pacing against a fixed-latency server, to choose its constants.

    python benchmarks/sim_pacing.py [--trials 300] [--wide]
        [--slow-start 4] [--ramp 8] [--margin 1.0] [--benefit 1.5]

Why a simulation beside ``bench_waste.py``: the waste of one run depends on how the
first few answers happen to fall, so comparing settings needs hundreds of runs per
cell, which the real command line on two shared cores cannot give. The real
:class:`selfinstruct.stages.pacing.Pacer` decides; only the server and the filters are
modelled. With a fixed latency every request sent together comes back together, so a
run is a series of rounds: the answers of a round are handled one by one, and after
each the pacer may send requests, which form the next round. An answer brings 10-20
candidates of which each is kept with probability 0.9 (the fake server from the seeds),
or with ``--wide`` 2-28 candidates kept with probability 0.7 (a model whose answers
vary more than the fake's: the hard case for an estimate from four answers).

Per N and C: mean and 90th percentile of the requests sent, the answers used (handled
before N was reached), the rounds (the wall time in latencies) and the requests still
in flight when N was reached. BENCHMARKS.md, "Requests paid for and not used", has the
table behind the constants in ``pacing.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selfinstruct.stages.pacing import (
    BENEFIT_OF_DOUBT,
    MARGIN_SIGMAS,
    RAMP,
    SLOW_START,
    Pacer,
)


@dataclass(frozen=True)
class Model:
    """How many candidates an answer brings and how likely each is to be kept."""

    fewest: int
    most: int
    keep: float

    def answer(self, rng: random.Random) -> int:
        """The instructions one answer adds to the pool."""
        return sum(rng.random() < self.keep for _ in range(rng.randint(self.fewest, self.most)))


FAKE_SERVER = Model(10, 20, 0.9)
WIDE = Model(2, 28, 0.7)


@dataclass(frozen=True)
class Outcome:
    """One simulated run."""

    sent: int
    used: int
    rounds: int
    abandoned: int


def simulate(pacer: Pacer, concurrency: int, model: Model, rng: random.Random) -> Outcome:
    """One run to ``pacer.target``, round by round."""
    kept = sent = used = rounds = 0
    next_round = 0

    def send(in_flight: int) -> int:
        nonlocal sent
        added = 0
        while in_flight + added < concurrency and pacer.wants_more(kept):
            pacer.sent()
            sent += 1
            added += 1
        return added

    next_round = send(0)
    while next_round:
        this_round, next_round = next_round, 0
        rounds += 1
        for handled in range(1, this_round + 1):
            pacer.settled()
            if kept >= pacer.target:
                continue
            used += 1
            gained = model.answer(rng)
            if kept + gained >= pacer.target:
                kept = pacer.target
                continue
            kept += gained
            pacer.observe(gained)
            next_round += send(this_round - handled + next_round)
        if kept >= pacer.target:
            return Outcome(sent, used, rounds, next_round)
    raise RuntimeError("the pacer stopped sending before the target was reached")


def describe(outcomes: list[Outcome]) -> str:
    sent = sorted(outcome.sent for outcome in outcomes)
    return (f"sent {statistics.fmean(sent):6.1f} (p90 {sent[int(0.9 * len(sent))]:4}) "
            f"used {statistics.fmean(o.used for o in outcomes):6.1f} "
            f"rounds {statistics.fmean(o.rounds for o in outcomes):4.1f} "
            f"abandoned {statistics.fmean(o.abandoned for o in outcomes):3.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--wide", action="store_true", help="answers that vary more")
    parser.add_argument("--n", nargs="+", type=int, default=[300, 1000, 4000])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[5, 64, 256])
    parser.add_argument("--slow-start", type=int, default=SLOW_START)
    parser.add_argument("--ramp", type=int, default=RAMP, help="a large value: no ramp")
    parser.add_argument("--margin", type=float, default=MARGIN_SIGMAS)
    parser.add_argument("--benefit", type=float, default=BENEFIT_OF_DOUBT)
    args = parser.parse_args()
    model = WIDE if args.wide else FAKE_SERVER
    for n in args.n:
        for concurrency in args.concurrency:
            rng = random.Random(1)
            outcomes = [
                simulate(Pacer(target=n, slow_start=args.slow_start, ramp=args.ramp,
                               margin_sigmas=args.margin, benefit_of_doubt=args.benefit),
                         concurrency, model, rng)
                for _ in range(args.trials)
            ]
            print(f"N={n:<5} C={concurrency:<4} {describe(outcomes)}", flush=True)


if __name__ == "__main__":
    main()
