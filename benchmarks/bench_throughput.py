"""Throughput of the pipeline against a model server that costs only time.

    python benchmarks/bench_throughput.py [--quick] [--json results.json] [--code DIR]

Starts ``fake_llm_server.py`` in its own process (fixed latency per request, realistic
answers, see there) and measures, with the real command line (``python -m
selfinstruct ...`` in a child process, the way a user runs it):

1. **Steady-state requests/s** of ``generate`` (resuming a run whose pool was
   pre-filled with 50,000 instructions), ``instances`` and ``reason`` at each
   ``--concurrency`` C, against the ideal C / latency. Each run is stopped with SIGINT
   (the CLI's own clean stop) once its window is long enough. The steady state is cut
   from the server's log: from one latency after the first answer and after every
   slot has been filled once (``generate`` fills them over one or two round trips) to
   the stop. Requests/s is the mean number of requests in
   flight at the server over that window divided by the latency (Little's law; each
   request stays exactly one latency, plus the server's measured lateness), so answers
   coming back in bursts do not skew it; the plain count of answers in the window /
   its length is reported beside it. Also: the client's CPU per request and share of
   a core over the window (sampled from ``/proc``), and the server's.
2. **The pipeline's own CPU per request** (build the prompt, parse the answer,
   heuristic filters, ROUGE-L against the pool, append to the run files) at pool
   sizes 0, 10,000 and 50,000, measured in-process with ``time.process_time`` on
   the ``GenerateLoop`` of a run directory, over answers like the server's.
3. **A stanford_alpaca-shaped loop** (``alpaca_baseline.py``: batches of 5, wait,
   filter with ``rouge_score`` in a process pool) against the same server and
   latency, beside ``generate`` from the same empty pool; the ratio of prompts
   answered per second and of instructions kept per second.

Everything it starts (server, CLI runs, the baseline) is stopped before it returns.
``--quick`` uses shorter windows and a 10,000-instruction pool (about 1.5 minutes);
the full run takes about 4.5 minutes on 2 cores. Results and how to read them:
BENCHMARKS.md, "Throughput".
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
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
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from fake_llm_server import FakeAnswers, load_texts, recombined  # noqa: E402

MODEL = "fake-model"
#: How the command line is started, and in which checkout (``--code``): ``-m`` imports
#: the ``selfinstruct`` package of the directory it starts in.
CLI = [sys.executable, "-m", "selfinstruct"]
CODE = [REPO]
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- server


class FakeServer:
    """The fake model server in a child process, with its control endpoints."""

    def __init__(self, workdir: Path) -> None:
        port_file = workdir / "port"
        port_file.unlink(missing_ok=True)  # a stale one from an earlier run
        self.log_path = workdir / "server.log"
        self._output = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_llm_server.py"), "--port", "0",
             "--port-file", str(port_file), "--model", MODEL],
            stdout=self._output, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake server did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"
        self.base_url = f"{self.url}/v1"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(f"{self.url}{path}", data=data, timeout=60) as response:
            return json.loads(response.read())

    def reset(self, latency: float, stream_writes: int | None = None) -> None:
        """Set the latency (and the writes per streamed answer) and forget the request
        log."""
        self._call("/_bench/reset", {"latency": latency, "stream_writes": stream_writes})

    def log(self) -> dict[str, Any]:
        """Arrival and answer times of every request since the last reset."""
        return self._call("/_bench/log")

    def arrivals(self) -> int:
        """Requests seen since the last reset (cheap enough to poll)."""
        return int(self._call("/_bench/count")["arrivals"])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._output.close()


# ----------------------------------------------------------------------------- CPU


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a live process, from ``/proc`` (None once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


class CpuSampler:
    """Samples the CPU time of some processes every 100 ms, with ``time.monotonic()``,
    so the CPU spent inside a window cut afterwards can be interpolated."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name, pid in self.pids.items():
                used = cpu_seconds(pid)
                if used is not None:
                    self.samples[name].append((now, used))
            self._stop.wait(0.1)

    def between(self, name: str, start: float, end: float) -> float:
        """CPU seconds the process used between two monotonic times (interpolated)."""
        return _interpolate(self.samples[name], end) - _interpolate(self.samples[name], start)


def _interpolate(samples: list[tuple[float, float]], when: float) -> float:
    if not samples:
        return 0.0
    if when <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= when <= t1:
            return v0 + (v1 - v0) * (when - t0) / (t1 - t0) if t1 > t0 else v1
    return samples[-1][1]


# ----------------------------------------------------------------------------- runs


@dataclass
class RunResult:
    """One measured run of one command at one concurrency and latency."""

    stage: str
    concurrency: int
    latency: float
    ideal: float
    #: Requests/s from the mean number in flight at the server (Little's law: each one
    #: stays exactly ``latency``): robust to answers coming back in bursts.
    achieved: float
    percent: float
    #: The same, over the window cut one latency after the first answer whether or not
    #: every slot was filled by then (the window before generate's slow start).
    percent_from_first_answer: float
    window_starts_after_first_request_s: float
    #: Answers counted inside the window / its length: the same, but sensitive to where
    #: the window cuts a burst when the latency is long next to the window.
    achieved_by_count: float
    window_s: float
    answers_in_window: int
    mean_in_flight: float
    client_cpu_ms_per_request: float
    client_cpu_share: float
    server_cpu_share: float
    server_late_p99_ms: float
    startup_s: float
    pool_before: int | None = None
    pool_after: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def steady_state(log: dict[str, Any], latency: float, stop_at: float,
                 concurrency: int) -> tuple[float, float]:
    """The window to measure: one latency after the first answer and after every slot
    has been filled once, to the stop (or to the last request sent, when the command
    ran out of work before it).

    ``generate`` fills its slots over one or two round trips (a few requests until an
    answer shows what an answer brings, then at most 8 in flight per answer seen), so
    for C > 32 the slots are full only after the first answer's round trip: the window
    starts one latency after that, where the start-up has settled. Every other command
    fills its slots at once, and its window starts one latency after the first answer,
    as it always did.
    """
    start = max(log["completions"][0], filled_at(log, concurrency)) + latency
    end = min(stop_at, log["arrivals"][-1])
    return start, end


def filled_at(log: dict[str, Any], concurrency: int) -> float:
    """When the server first held ``concurrency`` requests at once (or its most ever)."""
    events = sorted([(t, 1) for t in log["arrivals"]] + [(t, -1) for t in log["completions"]])
    held, most, when = 0, 0, events[0][0]
    for t, change in events:
        held += change
        if held > most:
            most, when = held, t
        if held >= concurrency:
            return t
    return when


def in_flight(log: dict[str, Any], start: float, end: float, points: int = 400) -> float:
    """Mean requests in flight over [start, end], sampled on a grid from the log."""
    arrivals, completions = log["arrivals"], sorted(log["completions"])
    total = 0
    for i in range(points):
        t = start + (end - start) * (i + 0.5) / points
        total += bisect.bisect_right(arrivals, t) - bisect.bisect_right(completions, t)
    return total / points


def run_time(duration: float, latency: float) -> float:
    """How long to let a command run after its first request: the window starts two or
    three latencies in (see :func:`steady_state`) and lasts ``duration`` or 5
    latencies."""
    return max(duration, 5 * latency) + 3 * latency


def run_cli(server: FakeServer, stage: str, args: list[str], concurrency: int,
            latency: float, duration: float, workdir: Path) -> RunResult:
    """Run ``python -m selfinstruct ARGS`` until its steady-state window has lasted about
    ``duration`` seconds, stop it with SIGINT, and measure that window."""
    server.reset(latency)
    command = [*CLI, *args, "--base-url", server.base_url,
               "--model", MODEL, "--concurrency", str(concurrency)]
    err = (workdir / f"{stage}-c{concurrency}.stderr").open("w")
    launched = time.monotonic()
    proc = subprocess.Popen(command, cwd=CODE[0], stdout=subprocess.DEVNULL, stderr=err,
                            env={**os.environ, "COLUMNS": "120"})
    try:
        with CpuSampler({"client": proc.pid, "server": server.proc.pid}) as cpu:
            first = None
            while proc.poll() is None:
                if first is None and server.arrivals() > 0:
                    first = time.monotonic()
                if first is not None and time.monotonic() - first >= run_time(duration, latency):
                    break
                time.sleep(0.05)
            stop_at = time.monotonic()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    log = server.log()
    if len(log["completions"]) < 2:
        raise RuntimeError(f"{stage}: no answers; see {err.name}")
    start, end = steady_state(log, latency, stop_at, concurrency)
    answers = sum(1 for t in log["completions"] if start <= t <= end)
    window = end - start
    occupancy = in_flight(log, start, end)
    late = sorted(log["late"])
    achieved = occupancy / (latency + statistics.fmean(late))
    ideal = concurrency / latency
    # The window as it was cut before generate's slow start, for comparison.
    first_answer = log["completions"][0] + latency
    from_first_answer = in_flight(log, first_answer, end) / (latency + statistics.fmean(late))
    client_cpu = cpu.between("client", start, end)
    return RunResult(
        stage=stage, concurrency=concurrency, latency=latency, ideal=round(ideal, 1),
        achieved=round(achieved, 1), percent=round(100 * achieved / ideal, 1),
        percent_from_first_answer=round(100 * from_first_answer / ideal, 1),
        window_starts_after_first_request_s=round(start - log["arrivals"][0], 2),
        achieved_by_count=round(answers / window, 1),
        window_s=round(window, 2), answers_in_window=answers,
        mean_in_flight=round(occupancy, 1),
        client_cpu_ms_per_request=round(1000 * client_cpu / max(answers, 1), 3),
        client_cpu_share=round(client_cpu / window, 2),
        server_cpu_share=round(cpu.between("server", start, end) / window, 2),
        server_late_p99_ms=round(1000 * late[int(0.99 * (len(late) - 1))], 2),
        startup_s=round(log["arrivals"][0] - launched, 2),
    )


def count_lines(path: Path) -> int:
    with path.open("rb") as fp:
        return sum(1 for _ in fp)


def write_pool(path: Path, texts: list[str], size: int) -> None:
    """``size`` kept instructions: the bench texts, then recombinations of them."""
    with path.open("w", encoding="utf-8") as fp:
        for i in range(size):
            fp.write(json.dumps({"id": f"pre_{i:06d}", "instruction": recombined(texts, i),
                                 "source": "prefill"}, ensure_ascii=False) + "\n")


def stage_stats(run_dir: Path, stage: str) -> dict[str, Any]:
    """The stage's section of ``stats.json`` (requests, tokens, tokens/s)."""
    path = run_dir / "stats.json"
    return json.loads(path.read_text()).get(stage, {}) if path.exists() else {}


def bench_generate(server: FakeServer, workdir: Path, template: Path, concurrency: int,
                   latency: float, duration: float) -> RunResult:
    """``generate`` resuming a run whose pool holds the pre-filled instructions."""
    run_dir = workdir / f"generate-c{concurrency}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    if template.exists():
        shutil.copy(template, run_dir / "instructions.jsonl")
    before = count_lines(run_dir / "instructions.jsonl") if template.exists() else 0
    result = run_cli(server, "generate",
                     ["generate", "-o", str(run_dir), "-n", "10000000"],
                     concurrency, latency, duration, workdir)
    result.pool_before = before
    result.pool_after = count_lines(run_dir / "instructions.jsonl")
    result.stats = stage_stats(run_dir, "generate")
    return result


def make_config(workdir: Path) -> Path:
    """A run's ``config.json`` as ``generate`` would save it, for the later stages."""
    from selfinstruct.llm.settings import BackendSettings
    from selfinstruct.stages.generate import GenerateSettings, resolve_config

    config, _, _ = resolve_config(
        workdir, GenerateSettings(num_instructions=1, language="en"),
        BackendSettings(base_url=("http://127.0.0.1:1/v1",), model=MODEL))
    path = workdir / "config.json"
    path.write_text(json.dumps(config.to_json(), indent=2))
    return path


def prepare_stage_dir(run_dir: Path, texts: list[str], size: int, config: Path) -> None:
    """A run directory with ``size`` classified instructions, for ``instances``."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    shutil.copy(config, run_dir / "config.json")
    with (run_dir / "instructions.jsonl").open("w") as tasks, \
            (run_dir / "classification.jsonl").open("w") as labels:
        for i in range(size):
            key = f"gen_{i:06d}"
            tasks.write(json.dumps({"id": key, "instruction": texts[i % len(texts)]}) + "\n")
            labels.write(json.dumps({"id": key, "is_classification": i % 4 == 0,
                                     "answer": "Yes" if i % 4 == 0 else "No",
                                     "parsed": True}) + "\n")


def bench_instances(server: FakeServer, workdir: Path, texts: list[str], config: Path,
                    concurrency: int, latency: float, duration: float) -> RunResult:
    run_dir = workdir / f"instances-c{concurrency}"
    prepare_stage_dir(run_dir, texts, records_needed(concurrency, latency, duration), config)
    result = run_cli(server, "instances", ["instances", str(run_dir)],
                     concurrency, latency, duration, workdir)
    result.stats = stage_stats(run_dir, "instances")
    return result


def bench_reason(server: FakeServer, workdir: Path, texts: list[str], concurrency: int,
                 latency: float, duration: float) -> RunResult:
    out = workdir / f"reason-c{concurrency}"
    shutil.rmtree(out, ignore_errors=True)
    source = workdir / f"reason-c{concurrency}.jsonl"
    with source.open("w") as fp:
        for i in range(records_needed(concurrency, latency, duration)):
            fp.write(json.dumps({"id": f"p{i}", "instruction": texts[i % len(texts)]}) + "\n")
    result = run_cli(server, "reason", ["reason", str(source), "-o", str(out)],
                     concurrency, latency, duration, workdir)
    result.stats = stage_stats(out, "reason")
    return result


def records_needed(concurrency: int, latency: float, duration: float) -> int:
    """Enough records that the stage never runs dry before it is stopped."""
    return int(concurrency / latency * run_time(duration, latency) * 1.5) + concurrency


# ----------------------------------------------------------------------------- pipeline CPU


class _NoBackend:
    """Never called: the pipeline measurement hands answers to the loop directly."""

    name = "fake"

    async def complete(self, request: object) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def pipeline_cpu(texts: list[str], pool: int, requests: int, workdir: Path,
                 most_similar: int = 0) -> dict[str, Any]:
    """CPU per request of ``GenerateLoop``'s own work at a given pool size.

    Per request: the next prompt (sample examples, render) and the handling of one
    answer of 10-20 tasks (parse, heuristic filters, the ROUGE-L filter against the
    pool, or a top-k search with ``most_similar`` = k, append to instructions.jsonl /
    rejected.jsonl, grow the pool). The pool grows as tasks are kept, so "at 50,000"
    means from 50,000 on.
    """
    from selfinstruct.llm.base import Completion, Usage
    from selfinstruct.llm.settings import BackendSettings
    from selfinstruct.stages.generate import GenerateSettings, open_run, resolve_config

    run_dir = workdir / f"pipeline-{pool}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    write_pool(run_dir / "instructions.jsonl", texts, pool)
    config, seeds, _ = resolve_config(
        run_dir, GenerateSettings(num_instructions=10_000_000, language="en",
                                 most_similar=most_similar),
        BackendSettings(base_url=("http://127.0.0.1:1/v1",), model=MODEL))
    bootstrap = open_run(config, seeds, _NoBackend(), force=False)  # type: ignore[arg-type]
    answers = FakeAnswers(texts)
    answers._next_task = 10_000_000  # a stretch of the stream the servers never reach
    warmup = 20  # first calls compile regexes and fill caches: not the steady state
    completions = [
        Completion(text=answers.answer("Task 1: x\nTask 9:")[0], finish_reason="stop",
                   usage=Usage(600, 300), model=MODEL)
        for _ in range(warmup + requests)
    ]
    # Time the similarity search apart: it is the part that grows with the pool.
    in_search = [0.0]

    def timed(search: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            begin = time.process_time()
            try:
                return search(*args)
            finally:
                in_search[0] += time.process_time() - begin
        return wrapper

    for name in ("first_above", "most_similar_ids"):
        setattr(bootstrap.index, name, timed(getattr(bootstrap.index, name)))
    with bootstrap.session():
        for number, completion in enumerate(completions):
            if number == warmup:
                start, candidates_before, in_search[0] = time.process_time(), \
                    bootstrap.stats.candidates, 0.0
                pool_before = len(bootstrap.index)
            job, _request = bootstrap._next_job()  # type: ignore[misc]
            bootstrap._handle(job, completion)
        used = time.process_time() - start
    stats = bootstrap.stats
    candidates = stats.candidates - candidates_before
    return {
        "pool": pool, "most_similar": most_similar, "pool_measured_from": pool_before,
        "pool_after": len(bootstrap.index),
        "requests": requests,
        "ms_per_request": round(1000 * used / requests, 3),
        "similarity_ms_per_request": round(1000 * in_search[0] / requests, 3),
        "candidates_per_request": round(candidates / requests, 1),
        "us_per_candidate": round(1e6 * used / max(candidates, 1), 1),
        "rejected": dict(stats.rejected),
    }


# ----------------------------------------------------------------------------- baseline


def bench_baseline(server: FakeServer, workdir: Path, latency: float,
                   duration: float) -> dict[str, Any]:
    """The stanford_alpaca-shaped loop, measured from its second round on."""
    server.reset(latency)
    out = workdir / "alpaca-baseline"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, str(HERE / "alpaca_baseline.py"), "--base-url", server.base_url,
         "--duration", str(duration), "--out", str(out)],
        capture_output=True, text=True, timeout=duration + 600, cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"alpaca baseline failed: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rounds, kept = report["rounds"], report["kept_after_round"]
    if len(rounds) < 2:
        raise RuntimeError("alpaca baseline: fewer than 2 rounds; give it more --duration")
    # Steady state: from the end of the first round to the end of the last.
    window = rounds[-1] - rounds[0]
    measured_rounds = len(rounds) - 1
    prompts = measured_rounds * report["prompts_per_round"]
    return {
        "latency": latency, "rounds": len(rounds), "window_s": round(window, 2),
        "prompts_per_second": round(prompts / window, 2),
        "kept_per_second": round((kept[-1] - kept[0]) / window, 2),
        "candidates": report["candidates"], "kept": report["kept"],
        "seconds_per_round": round(window / measured_rounds, 2),
        "pool_after": report["pool"],
    }


# ----------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Plan:
    """What one invocation measures."""

    pool: int
    duration: float
    concurrency_latency: tuple[tuple[int, float], ...]
    stages: tuple[str, ...]
    #: More (C, latency) points for ``generate`` alone: where its own CPU allows 90%.
    generate_extra: tuple[tuple[int, float], ...]
    pipeline_pools: tuple[int, ...]
    pipeline_requests: int
    baseline_latency: float
    baseline_duration: float
    compare_concurrency: tuple[int, ...]


FULL = Plan(pool=50_000, duration=10.0,
            concurrency_latency=((16, 0.2), (64, 0.5), (256, 2.0)),
            stages=("generate", "instances", "reason"),
            generate_extra=((64, 2.0), (256, 8.0)), pipeline_pools=(0, 10_000, 50_000),
            pipeline_requests=300, baseline_latency=0.2, baseline_duration=30.0,
            compare_concurrency=(5, 64))
QUICK = Plan(pool=10_000, duration=4.0,
             concurrency_latency=((16, 0.2), (64, 0.5), (256, 2.0)),
             stages=("generate", "instances", "reason"), generate_extra=(),
             pipeline_pools=(0, 10_000),
             pipeline_requests=100, baseline_latency=0.2, baseline_duration=10.0,
             compare_concurrency=(64,))


def describe(result: RunResult) -> str:
    """One progress line for a run."""
    pool = (f", pool {result.pool_before}->{result.pool_after}"
            if result.pool_before is not None else "")
    return (f"{result.stage:9} C={result.concurrency:<4} latency {result.latency}s: "
            f"{result.achieved}/{result.ideal} req/s = {result.percent}% "
            f"({result.percent_from_first_answer}% from the first answer; in flight "
            f"{result.mean_in_flight}, client {result.client_cpu_ms_per_request} ms CPU/req, "
            f"{result.client_cpu_share} core{pool})")


def parse_pairs(values: list[str]) -> tuple[tuple[int, float], ...]:
    """``["16=0.2", "256=1"]`` -> ``((16, 0.2), (256, 1.0))``."""
    pairs = []
    for value in values:
        c, _, latency = value.partition("=")
        pairs.append((int(c), float(latency)))
    return tuple(pairs)


def machine_info() -> dict[str, Any]:
    import numpy as np

    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "numpy": np.__version__,
        "load_average_at_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M"),
    }


@contextlib.contextmanager
def working_dir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, 10k pool")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--workdir", type=Path, help="keep run directories here")
    parser.add_argument("--at", nargs="+", metavar="C=LATENCY",
                        help="concurrency=latency pairs (default per plan)")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="checkout whose selfinstruct the commands run (default: this one)")
    parser.add_argument("--only", nargs="+",
                        choices=("generate", "instances", "reason", "pipeline", "baseline"))
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    CODE[0] = args.code.resolve()
    pairs = parse_pairs(args.at) if args.at else plan.concurrency_latency
    parts = set(args.only or ("generate", "instances", "reason", "pipeline", "baseline"))
    texts = load_texts()
    results: dict[str, Any] = {"machine": machine_info(), "plan": asdict(plan), "runs": []}
    began = time.monotonic()

    def show(line: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {line}", flush=True)

    with working_dir(args.workdir) as workdir:
        if "pipeline" in parts:
            results["pipeline"] = []
            for pool, most_similar in itertools.product(plan.pipeline_pools, (0, 5)):
                row = pipeline_cpu(texts, pool, plan.pipeline_requests, workdir, most_similar)
                results["pipeline"].append(row)
                show(f"pipeline CPU at pool {pool}, --most-similar {most_similar}: "
                     f"{row['ms_per_request']} ms/request, "
                     f"{row['similarity_ms_per_request']} of it ROUGE-L "
                     f"({row['candidates_per_request']} candidates, "
                     f"{row['us_per_candidate']} us each; pool {row['pool_measured_from']}"
                     f"->{row['pool_after']})")
        server = FakeServer(workdir)
        try:
            template = workdir / "pool.jsonl"
            write_pool(template, texts, plan.pool)
            config = make_config(workdir)
            for concurrency, latency in pairs:
                for stage in plan.stages:
                    if stage not in parts:
                        continue
                    if stage == "generate":
                        result = bench_generate(server, workdir, template, concurrency,
                                                latency, plan.duration)
                    elif stage == "instances":
                        result = bench_instances(server, workdir, texts, config, concurrency,
                                                 latency, plan.duration)
                    else:
                        result = bench_reason(server, workdir, texts, concurrency, latency,
                                              plan.duration)
                    results["runs"].append(asdict(result))
                    show(describe(result))
            if "generate" in parts and not args.at:
                for concurrency, latency in plan.generate_extra:
                    result = bench_generate(server, workdir, template, concurrency, latency,
                                            plan.duration)
                    results["runs"].append(asdict(result))
                    show(describe(result))
            if "baseline" in parts:
                baseline = bench_baseline(server, workdir, plan.baseline_latency,
                                          plan.baseline_duration)
                show(f"alpaca-shaped loop at {plan.baseline_latency}s: "
                     f"{baseline['prompts_per_second']} prompts/s, "
                     f"{baseline['kept_per_second']} kept/s "
                     f"({baseline['seconds_per_round']} s per round of 5)")
                ours = []
                empty = workdir / "no-pool.jsonl"
                for concurrency in plan.compare_concurrency:
                    result = bench_generate(server, workdir, empty, concurrency,
                                            plan.baseline_latency, plan.duration)
                    # Kept per second over the steady window: kept per answer (whole run)
                    # times answers per second (window).
                    answered = result.stats.get("requests", {}).get("succeeded") or 1
                    kept_rate = result.achieved * (result.pool_after or 0) / answered
                    ours.append({**asdict(result), "kept_per_second": round(kept_rate, 1)})
                    show(f"generate  C={concurrency:<4} from an empty pool: "
                         f"{result.achieved} req/s (x"
                         f"{result.achieved / baseline['prompts_per_second']:.0f} the "
                         f"baseline), {ours[-1]['kept_per_second']} kept/s (x"
                         f"{kept_rate / max(baseline['kept_per_second'], 1e-9):.0f})")
                results["baseline"] = {"alpaca_shaped": baseline, "ours": ours}
        finally:
            server.stop()
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    show(f"done in {results['elapsed_s']}s")


if __name__ == "__main__":
    main()
