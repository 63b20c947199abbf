"""``reason --executor ray`` against the same command without it, on the same rows.

    python benchmarks/bench_ray.py [--rows N ...] [--at C=LATENCY ...] [--repeat K] [--json OUT]

Starts ``fake_llm_server.py`` (a fixed latency per request, realistic ``reason``
answers) in its own process and runs ``python -m selfinstruct reason PROMPTS -o DIR
--concurrency C`` to the end, once locally and once with ``--executor ray --ray-address
local`` (a local Ray that the command starts and stops), alternating, ``--repeat`` times
each. The goal is Ray's overhead, not a speed-up: one machine, the same server.

Per run:

* **steady req/s**: from the server's log, the mean number of requests in flight from
  one latency after the first answer to the last request sent, divided by the latency
  (Little's law, as ``bench_throughput.py``); the share of the ideal C / latency.
* **work span**: first request to last answer, and rows / span.
* **start / end**: launch to first request (imports, Ray start, actors), last answer to
  exit (the last writes, Ray's shutdown).
* **CPU per row**: user + system CPU of the command and every process below it (Ray's
  GCS, raylet, agents, workers), sampled from ``/proc`` every 50 ms (each process's last
  sample; what a process spends in its last 50 ms is missed). This process is a child
  subreaper, so Ray processes orphaned at shutdown stay in the tree; those still running
  when the command has exited are killed here, by pid. With two ``--rows`` counts, the
  summary splits each executor's CPU into a fixed part and a part per row (a line
  through the medians), and Ray's overhead per row is the difference of the slopes.

The server runs beside the command on the same two cores; its CPU is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_throughput import MODEL, FakeServer, in_flight  # noqa: E402
from fake_llm_server import load_texts  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def become_subreaper() -> None:
    """Orphans of the commands (Ray's processes) are re-parented here, not to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children(of: int) -> list[int]:
    """Live processes whose parent is ``of``."""
    return [pid for pid, (parent, _) in process_table().items() if parent == of]


def reap_leftovers(keep: set[int]) -> int:
    """Kill (by pid) and reap every child of this process but ``keep``; how many."""
    killed = 0
    for pid in children(os.getpid()):
        if pid in keep:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not [pid for pid in children(os.getpid()) if pid not in keep]:
            try:  # zombies already gone from /proc are reaped below
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
            return killed
        for pid in children(os.getpid()):
            if pid not in keep:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    return killed


def process_table() -> dict[int, tuple[int, float]]:
    """``pid -> (parent, own CPU seconds)`` of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]),
                                      (int(fields[11]) + int(fields[12])) / CLOCK_TICK)
    return table


class TreeCpu:
    """The CPU of every process below this one but ``exclude``, sampled until stopped."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def total(self) -> float:
        return sum(self.last.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.05)

    def sample(self) -> None:
        table = process_table()
        below: set[int] = set()
        frontier = {os.getpid()}
        while frontier:
            frontier = {pid for pid, (parent, _) in table.items()
                        if parent in frontier and pid not in self.exclude} - below
            below |= frontier
        for pid in below:
            self.last[pid] = max(self.last.get(pid, 0.0), table[pid][1])


def write_prompts(path: Path, rows: int) -> None:
    texts = load_texts()
    with path.open("w", encoding="utf-8") as fp:
        for i in range(rows):
            fp.write(json.dumps({"id": f"p{i}", "instruction": texts[i % len(texts)]}) + "\n")


def run_once(server: FakeServer, prompts: Path, workdir: Path, executor: str,
             concurrency: int, latency: float, rows: int, label: str) -> dict[str, Any]:
    out = workdir / f"{label}-out"
    shutil.rmtree(out, ignore_errors=True)
    server.reset(latency)
    command = [sys.executable, "-m", "selfinstruct", "reason", str(prompts), "-o", str(out),
               "--base-url", server.base_url, "--model", MODEL,
               "--concurrency", str(concurrency), "--max-tokens", "4096"]
    if executor == "ray":
        command += ["--executor", "ray", "--ray-address", "local"]
    stderr = workdir / f"{label}.stderr"
    launched = time.monotonic()
    with stderr.open("w") as err, TreeCpu({server.proc.pid}) as tree:
        proc = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
                              env={**os.environ, "COLUMNS": "120"}, check=False)
        exited = time.monotonic()
        tree.sample()
        leftovers = reap_leftovers({server.proc.pid})
    cpu = tree.total()
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: exit {proc.returncode}; see {stderr}")
    log = server.log()
    arrivals, completions = log["arrivals"], sorted(log["completions"])
    late = statistics.fmean(log["late"]) if log["late"] else 0.0
    start, end = completions[0] + latency, arrivals[-1]
    steady = in_flight(log, start, end) / (latency + late) if end > start else float("nan")
    span = completions[-1] - arrivals[0]
    kept = sum(1 for _ in (out / "reasoning.jsonl").open())
    plan = [line for line in stderr.read_text().splitlines() if line.startswith("sending from")]
    return {
        "executor": executor, "concurrency": concurrency, "latency": latency, "rows": rows,
        "answered": len(completions), "kept": kept,
        "ideal_rps": round(concurrency / latency, 1),
        "steady_rps": round(steady, 1),
        "steady_percent": round(100 * steady * latency / concurrency, 1),
        "window_s": round(end - start, 2),
        "work_span_s": round(span, 2), "rows_per_s_over_span": round(rows / span, 1),
        "start_s": round(arrivals[0] - launched, 2), "end_s": round(exited - completions[-1], 2),
        "wall_s": round(exited - launched, 2),
        "cpu_s": round(cpu, 2), "cpu_ms_per_row": round(1000 * cpu / rows, 3),
        "leftover_processes_killed": leftovers, "plan": plan[0] if plan else "",
    }


def per_row(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per executor and setting, CPU = fixed + rows x per-row, through the medians of
    the smallest and the largest row count."""
    lines = []
    settings = sorted({(r["executor"], r["concurrency"], r["latency"]) for r in runs})
    for executor, concurrency, latency in settings:
        mine = [r for r in runs if (r["executor"], r["concurrency"], r["latency"])
                == (executor, concurrency, latency)]
        counts = sorted({r["rows"] for r in mine})
        if len(counts) < 2:
            continue
        low, high = counts[0], counts[-1]
        cpu = {n: statistics.median(r["cpu_s"] for r in mine if r["rows"] == n)
               for n in (low, high)}
        wall = {n: statistics.median(r["wall_s"] for r in mine if r["rows"] == n)
                for n in (low, high)}
        slope = (cpu[high] - cpu[low]) / (high - low)
        wall_slope = (wall[high] - wall[low]) / (high - low)
        lines.append({
            "executor": executor, "concurrency": concurrency, "latency": latency,
            "cpu_ms_per_row": round(1000 * slope, 3),
            "cpu_fixed_s": round(cpu[low] - slope * low, 2),
            "wall_ms_per_row": round(1000 * wall_slope, 3),
            "wall_fixed_s": round(wall[low] - wall_slope * low, 2),
            "summary": (f"{executor} C={concurrency} latency {latency}: CPU "
                        f"{1000 * slope:.3f} ms per row + {cpu[low] - slope * low:.2f} s "
                        f"fixed; wall {1000 * wall_slope:.3f} ms per row + "
                        f"{wall[low] - wall_slope * low:.2f} s fixed"),
        })
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[6000],
                        help="rows per run; two counts separate Ray's fixed cost from its "
                             "cost per row")
    parser.add_argument("--at", nargs="+", default=["64=0.5", "64=0.05"],
                        metavar="C=LATENCY")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    become_subreaper()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": {"platform": platform.platform(),
                                           "cpus": os.cpu_count(),
                                           "python": platform.python_version()},
                               "runs": []}
    began = time.monotonic()
    server = FakeServer(workdir)
    try:
        for pair, rows in ((pair, rows) for pair in args.at for rows in args.rows):
            concurrency, latency = int(pair.split("=")[0]), float(pair.split("=")[1])
            prompts = workdir / f"prompts-{rows}.jsonl"
            if not prompts.exists():
                write_prompts(prompts, rows)
            for repeat in range(args.repeat):
                for executor in ("local", "ray") if repeat % 2 == 0 else ("ray", "local"):
                    label = f"{executor}-c{concurrency}-l{latency}-n{rows}-{repeat}"
                    row = run_once(server, prompts, workdir, executor, concurrency, latency,
                                   rows, label)
                    results["runs"].append(row)
                    print(f"[{time.monotonic() - began:6.1f}s] {label}: steady "
                          f"{row['steady_rps']} req/s ({row['steady_percent']}%), "
                          f"{row['rows_per_s_over_span']} rows/s over the work span "
                          f"({row['work_span_s']} s), start {row['start_s']} s, end "
                          f"{row['end_s']} s, CPU {row['cpu_ms_per_row']} ms/row "
                          f"{row['plan']}", flush=True)
    finally:
        server.stop()
        reap_leftovers(set())
    results["per_row"] = per_row(results["runs"])
    for line in results["per_row"]:
        print(line["summary"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
