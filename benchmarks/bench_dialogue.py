"""Throughput of ``dialogue`` (script and self-chat) against a model server that costs
only time.

    python benchmarks/bench_dialogue.py [--json results.json] [--at C=LATENCY ...]
        [--modes script self-chat] [--duration S] [--turns T]

The real command line (``python -m selfinstruct dialogue TOPICS -o OUT --mode M
--turns T --system ...``) runs against ``fake_llm_server.py`` (a script prompt gets the
JSON of the exchanges it asks for, a chat turn a sentence or two) at each
``C=LATENCY``, and is measured exactly as ``bench_throughput.py`` measures the other
stages: Little's law on the server's log over the steady-state window, against the
ideal C / latency, with the client's CPU from ``/proc``. In self-chat every request is
one turn (the simulated user's or the assistant's), so the rate is turns per second;
each conversation has one request in flight at a time, so the run holds many more
conversations than C.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_throughput import (  # noqa: E402
    FakeServer,
    RunResult,
    describe,
    machine_info,
    parse_pairs,
    records_needed,
    run_cli,
    stage_stats,
)
from fake_llm_server import load_texts  # noqa: E402

SYSTEM = "You are a patient, concise assistant."


def write_topics(workdir: Path, texts: list[str], count: int) -> Path:
    """``count`` topics, one a line (the bench's instructions, reused in order)."""
    path = workdir / f"topics-{count}.txt"
    path.write_text("".join(f"{texts[i % len(texts)]}\n" for i in range(count)),
                    encoding="utf-8")
    return path


def steady(server: FakeServer, workdir: Path, texts: list[str], mode: str, turns: int,
           concurrency: int, latency: float, duration: float) -> RunResult:
    """One measured run of ``dialogue --mode MODE`` at ``concurrency`` and ``latency``."""
    out = workdir / f"dialogue-{mode}-c{concurrency}"
    topics = write_topics(workdir, texts, records_needed(concurrency, latency, duration))
    args = ["dialogue", str(topics), "-o", str(out), "--mode", mode, "--turns", str(turns),
            "--system", SYSTEM]
    result = run_cli(server, f"dialogue-{mode}", args, concurrency, latency, duration,
                     workdir)
    result.stats = stage_stats(out, "dialogue")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--at", nargs="+", metavar="C=LATENCY", default=["64=0.5"])
    parser.add_argument("--modes", nargs="+", choices=("script", "self-chat"),
                        default=["script", "self-chat"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    texts = load_texts()
    results: dict[str, Any] = {"machine": machine_info(), "runs": []}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-dialogue-") as tmp:
        workdir = Path(tmp)
        server = FakeServer(workdir)
        try:
            for mode in args.modes:
                for concurrency, latency in parse_pairs(args.at):
                    run = steady(server, workdir, texts, mode, args.turns, concurrency,
                                 latency, args.duration)
                    results["runs"].append(run.__dict__)
                    print(f"[{time.monotonic() - began:6.1f}s] {describe(run)}", flush=True)
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
