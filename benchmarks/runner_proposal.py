"""The ``selfinstruct`` command with a proposed change to ``Runner.run``, to measure it.

    python benchmarks/runner_proposal.py generate ...   (same arguments as selfinstruct)

``bench_throughput.py --runner-proposal`` runs every command through this file instead
of ``python -m selfinstruct``, so the proposal is measured under exactly the same
conditions as the current code. Nothing in the library changes.

The proposal: when several answers are ready at once, the current loop handles all of
them and only then refills the free slots, so with answers that cost CPU (generate at
a big pool: ~9 ms each) the next requests wait for the whole batch, and the answers
of a fixed-latency server keep coming back in bursts. Here the free slots are refilled
first (the prompts are built from the pool as it is; a few tasks kept from these
answers are not sampled into them, which changes nothing that matters), and the loop
yields once after each handled answer, so the new requests get onto the wire while
the rest of the batch is processed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfinstruct import runner
from selfinstruct.llm.base import Completion, Request


async def run(self: runner.Runner[Any], source: Callable[[], tuple[Any, Request] | None],
              handle: Callable[[Any, Completion], bool], stop: asyncio.Event) -> None:
    """``Runner.run`` with refill-first and a yield after each handled answer."""
    in_flight: set[asyncio.Task[Any]] = set()
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            self._fill(in_flight, source)
            if not in_flight:
                return
            done, _ = await asyncio.wait({*in_flight, stopper},
                                         return_when=asyncio.FIRST_COMPLETED)
            finished = [task for task in done if task is not stopper]
            finished.sort(key=runner._is_failure)
            in_flight.difference_update(finished)
            self._fill(in_flight, source)
            for task in finished:
                job, outcome, epoch = task.result()
                if self._settle(job, outcome, epoch, handle):
                    return
                await asyncio.sleep(0)
    finally:
        stopper.cancel()
        for task in in_flight:
            task.cancel()
        await asyncio.gather(stopper, *in_flight, return_exceptions=True)


def main() -> None:
    runner.Runner.run = run  # type: ignore[method-assign]
    from selfinstruct.cli import main as cli_main

    sys.argv[0] = "selfinstruct"
    cli_main()


if __name__ == "__main__":
    main()
