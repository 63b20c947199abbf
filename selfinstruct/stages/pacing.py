"""Send only the requests that the run is expected to need.

``generate`` wants exactly N kept instructions, and each answer brings an unknown number
of them. Keeping all C slots busy to the last moment means that, when the N-th
instruction is kept, up to C answers are still on their way or queued: on a paid API
those are billed tokens nobody uses (BENCHMARKS.md, "Requests paid for and not used").
So the source asks the pacer before it hands out a request: is what is already in flight
expected to cover what is still missing?

The pacer learns the number of instructions kept per answer as the run goes (a smoothed
mean and spread, since the rate falls as the pool fills up and more candidates are
near-duplicates) and holds a request back while ``kept + in_flight x rate`` covers N:

* with a safety margin of one standard deviation of what the answers in flight will
  bring: without it, half the runs would come up a little short and wait a whole round
  trip for a last straggler request; with a larger one, more answers arrive after the
  target;
* with a rate that gives the benefit of the doubt while it rests on few answers (the
  mean plus 1.5 standard errors): the first handful of answers can make the rate look
  much lower than it is, and trusting them would send far more than needed at once;
  a rate that is too high only costs one more, small, round of requests, sent with a
  rate known from many more answers.

Before the first answer nothing is known, so the run starts slowly: a few requests, and
then at most 8 in flight per answer seen, i.e. the full concurrency one round trip later
up to C = 32 and two round trips later beyond. The constants come from simulating the
fixed-latency benchmark and a noisier model (BENCHMARKS.md, "Requests paid for and not
used"): without the ramp, four unlucky first answers at C = 64 made one run in ten send
twice what C = 5 sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Requests in flight before the first answer has shown how much an answer brings.
SLOW_START = 4
#: Requests in flight per answer seen, at most, while few answers have been seen.
RAMP = 8
#: How many standard deviations of the forecast the in-flight requests must cover N by.
MARGIN_SIGMAS = 1.0
#: How many standard errors above the measured rate the forecast assumes.
BENEFIT_OF_DOUBT = 1.5
#: Weight of the newest answer in the smoothed rate once enough answers have been seen:
#: the rate follows a pool that fills up over some tens of answers, not every single one.
SMOOTHING = 0.05
#: The smallest spread assumed, relative to the rate: a few answers that happen to agree
#: must not convince the pacer that every answer brings exactly as much.
MIN_RELATIVE_SPREAD = 0.25


@dataclass
class Pacer:
    """Decides whether one more request is needed to reach ``target`` kept items."""

    target: int
    slow_start: int = SLOW_START
    ramp: int = RAMP
    margin_sigmas: float = MARGIN_SIGMAS
    benefit_of_doubt: float = BENEFIT_OF_DOUBT
    #: Requests handed out whose answer (or failure) has not been handled yet.
    in_flight: int = 0
    #: Answers seen so far (only those handled before the target was reached).
    answers: int = 0
    #: Smoothed items kept per answer, and the smoothed variance around it.
    rate: float = 0.0
    variance: float = 0.0

    def wants_more(self, kept: int) -> bool:
        """Whether a new request is expected to be needed, given ``kept`` so far."""
        missing = self.target - kept
        if missing <= 0:
            return False
        if self.in_flight >= max(self.slow_start, self.ramp * self.answers):
            return False
        return self.answers == 0 or self.expected_cover(self.in_flight) < missing

    def expected_cover(self, requests: int) -> float:
        """What ``requests`` answers are expected to keep, less the safety margin."""
        if requests <= 0:
            return 0.0
        spread = math.sqrt(max(self.variance, (MIN_RELATIVE_SPREAD * self.rate) ** 2))
        # The smoothed rate rests on the last ~2/SMOOTHING answers at most.
        seen = min(self.answers, (2 - SMOOTHING) / SMOOTHING)
        rate = self.rate + self.benefit_of_doubt * spread / math.sqrt(seen)
        return requests * rate - self.margin_sigmas * math.sqrt(requests) * spread

    def sent(self) -> None:
        """A request was handed out."""
        self.in_flight += 1

    def settled(self) -> None:
        """A request's answer or failure was handled."""
        self.in_flight = max(0, self.in_flight - 1)

    def observe(self, kept: int) -> None:
        """One whole answer was handled and kept ``kept`` items."""
        self.answers += 1
        weight = max(1 / self.answers, SMOOTHING)
        delta = kept - self.rate
        self.rate += weight * delta
        self.variance = (1 - weight) * (self.variance + weight * delta * delta)
