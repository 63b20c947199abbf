"""Start-up cost of the command line (issue 18): what a user waits for before any work.

    python benchmarks/bench_startup.py [--runs 5] [--code DIR] [--json results.json]

Measures, with the real command line (``python -m selfinstruct ...`` in a child
process, started in the checkout ``--code``, default this one):

1. **``selfinstruct --help``, CPU seconds**: user + system time of the child (and
   anything it starts), from ``resource.getrusage(RUSAGE_CHILDREN)`` around the run;
   the median of ``--runs`` runs. CPU, not wall time, because the machine is shared and
   wall time mostly measures the neighbours.
2. **``generate``: launch to first request**: from just before the child is started to
   the arrival of its first completion request at ``fake_llm_server.py`` (both read
   CLOCK_MONOTONIC, which all processes share), for ``generate -n 1 --base-url
   http://127.0.0.1:PORT/v1 --model m -o TMP`` from an empty run directory (the bundled
   seeds); the median of ``--runs`` runs, each in a fresh directory, run to its end.

Caches are warm: one unmeasured run of each command comes first, and the children
write and read their compiled bytecode under one directory of the system's temporary
folder (``PYTHONPYCACHEPREFIX``; ``PYTHONDONTWRITEBYTECODE`` is dropped), as an
installed package would have it, without writing into the checkout measured. numba's
cache of the similarity kernel lives beside its source (or in the user's cache when
that is read-only) and is warmed by the same first run.

Before / after: run this script with ``--code`` pointing at another checkout (the
script and the fake server stay this checkout's). Results: BENCHMARKS.md, "Start-up".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_distill import to_the_end  # noqa: E402
from bench_throughput import CLI, MODEL, REPO, FakeServer, machine_info  # noqa: E402

#: Where the children's bytecode goes: one folder for every run of this script, so the
#: second run of a session finds it warm.
PYCACHE = Path(tempfile.gettempdir()) / "selfinstruct-bench-startup-pycache"
#: How long one ``generate -n 1`` may take before the benchmark gives up on it.
RUN_TIMEOUT = 120.0


def cache_bytecode() -> None:
    """Let every child this process starts write and read its bytecode under
    :data:`PYCACHE` (they inherit this environment)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)


def help_cpu(code: Path, runs: int) -> list[float]:
    """CPU seconds of ``selfinstruct --help``, once per run (after one warm-up run)."""
    command = [*CLI, "--help"]
    to_the_end(command, code)
    return [to_the_end(command, code)[1] for _ in range(runs)]


def first_request(server: FakeServer, code: Path, out: Path) -> float:
    """Seconds from launching ``generate -n 1`` to its first request at the server. The
    command runs to its end (it must succeed) before the server's log is read, so that
    no polling competes with it for the CPU; the log holds the arrival time."""
    server.reset(0.05)
    command = [*CLI, "generate", "-n", "1", "--base-url", server.base_url, "--model", MODEL,
               "-o", str(out)]
    launched = time.monotonic()
    done = subprocess.run(command, cwd=code, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
    arrivals = server.log()["arrivals"]
    if done.returncode != 0 or not arrivals:
        raise RuntimeError(f"generate failed (exit {done.returncode}): {done.stderr}")
    return float(arrivals[0] - launched)


def generate_first_request(code: Path, runs: int, workdir: Path) -> list[float]:
    """:func:`first_request` once per run, each in a new directory (after one warm-up)."""
    server = FakeServer(workdir)
    try:
        first_request(server, code, workdir / "warm-up")
        return [first_request(server, code, workdir / f"run-{i}") for i in range(runs)]
    finally:
        server.stop()


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3),
            "runs": [round(value, 3) for value in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each command")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="checkout whose selfinstruct the commands run (default: this one)")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    code = args.code.resolve()
    cache_bytecode()
    results: dict[str, Any] = {"machine": machine_info(), "code": str(code)}
    results["help_cpu_s"] = summary(help_cpu(code, args.runs))
    print(f"{code}: selfinstruct --help: {results['help_cpu_s']['median']:.3f} s CPU "
          f"(median of {args.runs}: {results['help_cpu_s']['runs']})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        results["generate_first_request_s"] = summary(
            generate_first_request(code, args.runs, Path(tmp)))
    print(f"{code}: generate, launch to first request: "
          f"{results['generate_first_request_s']['median']:.3f} s "
          f"(median of {args.runs}: {results['generate_first_request_s']['runs']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
