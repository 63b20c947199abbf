"""Requests paid for and not used by ``generate -n N`` against a fixed-latency server.

    python benchmarks/bench_waste.py [--n 300 1000 4000] [--concurrency 5 64 256]
        [--latency 0.5] [--repeat 1] [--code DIR] [--json results.json]

Starts ``fake_llm_server.py`` (every request answered after exactly ``--latency``
seconds, 10-20 tasks per answer; see there) and runs ``python -m selfinstruct generate
-o DIR -n N --concurrency C`` to the end, from an empty run directory with the bundled
English seeds, for each N and C. ``--code DIR`` runs the ``selfinstruct`` package of
another checkout (the child process starts in DIR, so ``-m selfinstruct`` imports that
one): how the "before" numbers of BENCHMARKS.md were taken, with the same script.

Per run, from the run directory (``stats.json``, ``instructions.jsonl``,
``rejected.jsonl``):

* **sent**: requests sent; **answered**: answers handled; **abandoned**: sent and
  neither answered nor failed, i.e. cancelled in flight when N was reached (before the
  change this also counts answers that had arrived and were dropped unhandled);
* **used**: answers at least one candidate of which was judged by the filters before N
  was reached (each kept or rejected line names its request); **sent / used** is the
  waste ratio, 1.0 when every request sent was needed;
* **set aside**: candidates recorded as ``over_target`` (kept for a resume to a larger
  N; only after the change);
* **wall**: the command's wall time, and the part from its first request to its exit
  (process start-up, imports and loading the seeds are before it).

Results and how to read them: BENCHMARKS.md, "Requests paid for and not used".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_throughput import MODEL, FakeServer  # noqa: E402


@dataclass
class WasteRun:
    """One ``generate`` run to N at one concurrency."""

    code: str
    n: int
    concurrency: int
    latency: float
    kept: int
    sent: int
    answered: int
    failed: int
    abandoned: int
    used: int
    set_aside: int
    sent_per_used: float
    wall_s: float
    first_request_to_exit_s: float
    server_arrivals: int


def used_requests(run_dir: Path) -> int:
    """Answers that had a candidate judged before the target was reached: the requests
    named by a kept instruction or by a rejection other than ``over_target``."""
    requests: set[Any] = set()
    for name in ("instructions.jsonl", "rejected.jsonl"):
        path = run_dir / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("filter") != "over_target":
                requests.add(record.get("request"))
    return len(requests)


def count_over_target(run_dir: Path) -> int:
    path = run_dir / "rejected.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if json.loads(line).get("filter") == "over_target")


def run_generate(server: FakeServer, code: Path, workdir: Path, n: int, concurrency: int,
                 latency: float) -> WasteRun:
    """``generate -n N --concurrency C`` from an empty run directory, to the end."""
    server.reset(latency)
    run_dir = workdir / f"gen-n{n}-c{concurrency}"
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "selfinstruct", "generate", "-o", str(run_dir),
               "-n", str(n), "--language", "en", "--base-url", server.base_url,
               "--model", MODEL, "--concurrency", str(concurrency)]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=code, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "COLUMNS": "120"})
    ended = time.monotonic()
    if proc.returncode != 0:
        raise RuntimeError(f"generate failed: {proc.stderr[-2000:]}")
    log = server.log()
    stats = json.loads((run_dir / "stats.json").read_text())["generate"]
    requests = stats["requests"]
    used = used_requests(run_dir)
    return WasteRun(
        code=str(code), n=n, concurrency=concurrency, latency=latency, kept=stats["kept"],
        sent=requests["sent"], answered=requests["succeeded"], failed=requests["failed"],
        abandoned=requests["sent"] - requests["succeeded"] - requests["failed"],
        used=used, set_aside=count_over_target(run_dir),
        sent_per_used=round(requests["sent"] / max(used, 1), 2),
        wall_s=round(ended - started, 2),
        first_request_to_exit_s=round(ended - log["arrivals"][0], 2) if log["arrivals"] else 0,
        server_arrivals=len(log["arrivals"]),
    )


def describe(run: WasteRun) -> str:
    return (f"N={run.n:<5} C={run.concurrency:<4} sent {run.sent:4} used {run.used:4} "
            f"(x{run.sent_per_used}) answered {run.answered:4} abandoned {run.abandoned:3} "
            f"set aside {run.set_aside:4} kept {run.kept}; wall {run.wall_s}s "
            f"({run.first_request_to_exit_s}s from the first request)")


def summarise(runs: list[WasteRun]) -> list[dict[str, Any]]:
    """Median of each (N, C) cell over the repeats."""
    cells: dict[tuple[int, int], list[WasteRun]] = {}
    for run in runs:
        cells.setdefault((run.n, run.concurrency), []).append(run)
    rows = []
    for (n, c), group in sorted(cells.items()):
        rows.append({
            "n": n, "concurrency": c, "runs": len(group),
            **{key: statistics.median(getattr(run, key) for run in group)
               for key in ("sent", "used", "answered", "abandoned", "set_aside",
                           "sent_per_used", "wall_s", "first_request_to_exit_s")},
            "sent_each": [run.sent for run in group],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", nargs="+", type=int, default=[300, 1000, 4000])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[5, 64, 256])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--code", type=Path, default=HERE.parent,
                        help="checkout whose selfinstruct package runs (default: this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    began = time.monotonic()
    runs: list[WasteRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-waste-") as tmp:
        workdir = Path(tmp)
        server = FakeServer(workdir)
        try:
            for n in args.n:
                for _ in range(args.repeat):
                    for concurrency in args.concurrency:
                        run = run_generate(server, args.code.resolve(), workdir, n,
                                           concurrency, args.latency)
                        runs.append(run)
                        print(f"[{time.monotonic() - began:6.1f}s] {describe(run)}",
                              flush=True)
        finally:
            server.stop()
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg(),
                    "time": time.strftime("%Y-%m-%d %H:%M")},
        "code": str(args.code.resolve()), "latency": args.latency,
        "runs": [asdict(run) for run in runs], "cells": summarise(runs),
    }
    for row in results["cells"]:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
