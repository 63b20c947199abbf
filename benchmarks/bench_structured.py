"""Structured output against free text on the bundled 135M model (issue 11).

    python benchmarks/bench_structured.py [--json results.json] [--modes off json]
        [--where embedded server] [-n 10] [--per-task 2] [--seed 3]

Runs the whole job, ``selfinstruct run -n N --per-task K --seed S --format alpaca``,
once per ``--structured`` mode and per place the model runs:

- ``embedded``: the in-process llama.cpp model (no server, no key), where a schema
  becomes a grammar;
- ``server``: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, started here
  with the same model, where a schema travels as ``response_format``.

For each stage it reports how many answers were read as JSON or as text, the
rejections that mean "the answer had no usable shape" (classify ``unparsed_answer``,
instances ``unparseable``, generate's ``unparseable`` if any) against the stage's
answers, every other rejection, and the stage's wall time, from the run's own
``stats.json``; and the number of records in ``export/alpaca.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL_ALIAS = "smollm2"
SHAPELESS = {"generate": "unparseable", "classify": "unparsed_answer",
             "instances": "unparseable"}


def free_port() -> int:
    """A port nothing listens on, for the server started here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server() -> Iterator[str]:
    """llama-cpp-python's server with the bundled model on 127.0.0.1; stopped on exit."""
    from selfinstruct.llm.cpu_probe import llama_server_command
    from selfinstruct.llm.local import default_model_path

    port = free_port()
    process = subprocess.Popen(
        llama_server_command(default_model_path(), "--model_alias", MODEL_ALIAS, "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                             "--n_threads", str(os.cpu_count() or 1)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"{base_url}/models"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("llama_cpp.server did not start")
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def run_job(out: Path, mode: str, base_url: str | None, args: argparse.Namespace
            ) -> dict[str, Any]:
    """One ``selfinstruct run`` to the end; its stats per stage and the export size."""
    command = [sys.executable, "-m", "selfinstruct", "run", "-o", str(out),
               "-n", str(args.n), "--per-task", str(args.per_task), "--seed", str(args.seed),
               "--format", "alpaca", "--structured", mode]
    if base_url:
        command += ["--base-url", base_url, "--model", MODEL_ALIAS, "--api-key", "unused"]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=args.timeout)
    wall = time.monotonic() - started
    stats = json.loads((out / "stats.json").read_text()) if (out / "stats.json").exists() \
        else {}
    export = out / "export" / "alpaca.json"
    records = len(json.loads(export.read_text())) if export.exists() else 0
    return {"exit": done.returncode, "wall_seconds": round(wall, 1), "records": records,
            "stages": {name: stage_row(name, stats.get(name, {})) for name in SHAPELESS},
            "stderr_tail": done.stderr[-400:] if done.returncode else ""}


def stage_row(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """What one stage's stats say about the shape of its answers."""
    parsed = stats.get("parsed", {})
    rejected = dict(stats.get("rejected", {}))
    shapeless = rejected.pop(SHAPELESS[name], 0)
    answers = stats.get("requests", {}).get("succeeded", 0)
    return {"answers": answers, "json": parsed.get("json", 0), "text": parsed.get("text", 0),
            "shapeless": shapeless, "other_rejections": rejected,
            "seconds": stats.get("elapsed_seconds")}


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table BENCHMARKS.md records."""
    lines = ["| where | --structured | stage | answers | read as JSON | read as text | "
             "no usable shape | other rejections | stage time |",
             "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for key, result in results.items():
        where, mode = key.split("/")
        for name, row in result["stages"].items():
            other = ", ".join(f"{k} {v}" for k, v in row["other_rejections"].items()) or "-"
            lines.append(f"| {where} | {mode} | {name} | {row['answers']} | {row['json']} | "
                         f"{row['text']} | {row['shapeless']} | {other} | {row['seconds']} s |")
        lines.append(f"| {where} | {mode} | **export** | exit {result['exit']} | "
                     f"{result['records']} records | | | | {result['wall_seconds']} s "
                     "whole run |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["off", "json"])
    parser.add_argument("--where", nargs="+", default=["embedded", "server"])
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--per-task", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
          flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for where in args.where:
            with (llama_server() if where == "server" else _nothing()) as base_url:
                for mode in args.modes:
                    key = f"{where}/{mode}"
                    results[key] = run_job(Path(tmp) / key.replace("/", "-"), mode,
                                           base_url, args)
                    print(key, json.dumps(results[key]), flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
