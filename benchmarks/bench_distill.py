"""Throughput of ``distill`` against a model server that costs only time.

    python benchmarks/bench_distill.py [--json results.json] [--at C=LATENCY ...]
        [--only steady stage baseline] [--duration S] [--rows N]

Three measurements, all with the fake server of ``fake_llm_server.py`` (each ``Answer
as a JSON list`` prompt gets a short trace and a fenced list of three q/a pairs):

1. **Steady state** of the real command line (``python -m selfinstruct distill ...
   --parse json --map instruction=q --map output=a``, a system prompt, a template with
   ``{row}`` and ``{questions}``) at each ``C=LATENCY``, measured exactly as
   ``bench_throughput.py`` measures the other stages (Little's law on the server's log
   over the steady-state window; client CPU from ``/proc``): rows/s against the ideal
   C / latency, and client CPU per row.
2. **The stage's own CPU per row**, in-process: ``distill_run`` on an instant fake
   backend (the runner, rendering the template, parsing the answer, writing the
   records), ``time.process_time`` over all rows: the client's work without HTTP.
3. **The articles' loop** (``distill_baseline.py``: a process pool, one blocking
   request per row, one file per row) beside ``distill`` on the same rows, server and
   latency, each run to the end: wall time, rows/s and CPU per row (the whole process
   tree's, start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_throughput import (  # noqa: E402
    CLI,
    MODEL,
    REPO,
    FakeServer,
    RunResult,
    describe,
    machine_info,
    parse_pairs,
    records_needed,
    run_cli,
    stage_stats,
)
from fake_llm_server import FakeAnswers, load_texts  # noqa: E402

TEMPLATE = ("Answer as a JSON list of q/a pairs, one per question, about this row.\n"
            "# Row\n{row}\n# Questions\n{questions}\n")
QUESTIONS = "What does {instruction} ask for?\nHow hard is it: {instruction}\nWho asks {id}?\n"
SYSTEM = "You annotate rows. Answer only with a fenced JSON list of {\"q\", \"a\"} objects."


def write_inputs(workdir: Path, texts: list[str], rows: int) -> list[str]:
    """The rows file, template, questions and the flags that use them."""
    source = workdir / f"rows-{rows}.jsonl"
    with source.open("w", encoding="utf-8") as fp:
        for i in range(rows):
            fp.write(json.dumps({"id": f"r{i}", "instruction": texts[i % len(texts)],
                                 "source": "bench"}, ensure_ascii=False) + "\n")
    (workdir / "t.txt").write_text(TEMPLATE, encoding="utf-8")
    (workdir / "q.txt").write_text(QUESTIONS, encoding="utf-8")
    return ["distill", str(source), "--user-template", str(workdir / "t.txt"),
            "--questions", str(workdir / "q.txt"), "--system", SYSTEM, "--parse", "json",
            "--map", "instruction=q", "--map", "output=a"]


def steady(server: FakeServer, workdir: Path, texts: list[str], concurrency: int,
           latency: float, duration: float) -> RunResult:
    out = workdir / f"distill-c{concurrency}"
    args = write_inputs(workdir, texts, records_needed(concurrency, latency, duration))
    result = run_cli(server, "distill", [*args, "-o", str(out)], concurrency, latency,
                     duration, workdir)
    result.stats = stage_stats(out, "distill")
    return result


def stage_cpu(texts: list[str], rows: int, workdir: Path) -> dict[str, Any]:
    """CPU per row of distill's own work: an instant backend, everything else real."""
    sys.path.insert(0, str(REPO))
    from selfinstruct.llm.fake import FakeBackend, completion
    from selfinstruct.stages.distill import DistillSettings, distill_run, load_distill_job
    from selfinstruct.stages.per_record import StageSettings
    from selfinstruct.stages.teacher import Teacher

    write_inputs(workdir, texts, rows)
    answers = FakeAnswers(texts)
    backend = FakeBackend(lambda request, number: completion(answers.qa_pairs()))
    settings = DistillSettings(user_template=workdir / "t.txt", questions=workdir / "q.txt",
                               teacher=Teacher(system=SYSTEM), parse="json",
                               renames={"instruction": "q", "output": "a"})
    out = workdir / "stage-cpu"
    began = time.process_time()
    job = load_distill_job(workdir / f"rows-{rows}.jsonl", settings, out)
    loaded = time.process_time()
    stats = asyncio.run(distill_run(job, out, backend, StageSettings(concurrency=64)))
    ran = time.process_time()
    return {"rows": rows, "records": stats.seen["records"],
            "load_ms_per_row": round(1000 * (loaded - began) / rows, 4),
            "run_ms_per_row": round(1000 * (ran - loaded) / rows, 4)}


def to_the_end(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (the whole process tree) of a command run to the end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def baseline(server: FakeServer, workdir: Path, texts: list[str], rows: int,
             concurrency: int, latency: float) -> dict[str, Any]:
    """The articles' pool of ``concurrency`` processes, then distill at ``--concurrency``,
    on the same rows; each to the end."""
    args = write_inputs(workdir, texts, rows)
    results: dict[str, Any] = {"rows": rows, "concurrency": concurrency, "latency": latency,
                               "ideal_rows_per_s": round(concurrency / latency, 1)}
    server.reset(latency)
    wall, cpu, _ = to_the_end(
        [sys.executable, str(HERE / "distill_baseline.py"), args[1],
         str(workdir / "baseline-out"), "--base-url", server.base_url, "--model", MODEL,
         "--processes", str(concurrency), "--template", TEMPLATE.replace(
             "{row}", "{instruction}").replace("{questions}", "{source}"),
         "--system", SYSTEM], REPO)
    results["pool"] = {"seconds": round(wall, 2), "rows_per_s": round(rows / wall, 1),
                       "cpu_ms_per_row": round(1000 * cpu / rows, 2),
                       "files": len(list((workdir / "baseline-out").iterdir()))}
    server.reset(latency)
    wall, cpu, _ = to_the_end([*CLI, *args, "-o", str(workdir / "distill-out"),
                               "--base-url", server.base_url, "--model", MODEL,
                               "--concurrency", str(concurrency)], REPO)
    results["distill"] = {"seconds": round(wall, 2), "rows_per_s": round(rows / wall, 1),
                          "cpu_ms_per_row": round(1000 * cpu / rows, 2),
                          "records": stage_stats(workdir / "distill-out",
                                                 "distill")["seen"]["records"]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--at", nargs="+", metavar="C=LATENCY", default=["64=0.5", "256=2"])
    parser.add_argument("--only", nargs="+", choices=("steady", "stage", "baseline"))
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=2000, help="rows for the baseline")
    args = parser.parse_args()
    parts = set(args.only or ("steady", "stage", "baseline"))
    texts = load_texts()
    results: dict[str, Any] = {"machine": machine_info(), "runs": []}
    began = time.monotonic()

    def show(line: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {line}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        workdir = Path(tmp)
        if "stage" in parts:
            results["stage_cpu"] = stage_cpu(texts, 5000, workdir)
            show(f"stage CPU: {results['stage_cpu']}")
        server = FakeServer(workdir)
        try:
            if "steady" in parts:
                for concurrency, latency in parse_pairs(args.at):
                    run = steady(server, workdir, texts, concurrency, latency, args.duration)
                    results["runs"].append(run.__dict__)
                    show(describe(run))
            if "baseline" in parts:
                results["baseline"] = baseline(server, workdir, texts, args.rows, 64, 0.5)
                show(f"baseline: {results['baseline']}")
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
