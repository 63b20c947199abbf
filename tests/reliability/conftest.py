"""Fixtures for the reliability suite: the fault server, seeds, and ways to run the CLI.

The CLI runs either in-process (``invoke``, fast, for everything a signal is not needed
for) or as a real ``python -m selfinstruct`` subprocess (``start`` / ``run_cli``) that
can be killed. Every run talks to the scripted fault server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from selfinstruct.cli import commands as cli
from selfinstruct.similarity.index import rouge_l, tokenize
from tests.conftest import ENGLISH_SEEDS

from .faultserver import MODEL, FaultServer

ROOT = Path(__file__).resolve().parents[2]

#: A key that must never show up anywhere a run writes or prints.
PLANTED_KEY = "sk-planted-reliability-7c1d9e3f5a"

SEEDS = ENGLISH_SEEDS


@pytest.fixture(scope="session")
def _server() -> Iterator[FaultServer]:
    server = FaultServer(seed=7).start()
    yield server
    server.stop()


@pytest.fixture
def server(_server: FaultServer) -> Iterator[FaultServer]:
    """The fault server, answering normally with an empty script and log."""
    _server.clear()
    yield _server
    _server.clear()


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """Ten English seed tasks in Self-Instruct JSONL."""
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(
        json.dumps({"id": f"s{i}", "name": f"t{i}", "instruction": text,
                    "instances": [{"input": "", "output": f"answer {i}"}],
                    "is_classification": False}) + "\n"
        for i, text in enumerate(SEEDS)
    ))
    return path


def backend_flags(server: FaultServer, *, retries: int = 0, timeout: float = 1.0,
                  concurrency: int = 1, max_failures: int = 20) -> list[str]:
    """Flags that point a command at the fault server, with small timings."""
    return ["--base-url", server.base_url, "--model", MODEL, "--timeout", str(timeout),
            "--max-retries", str(retries), "--concurrency", str(concurrency),
            "--max-failures", str(max_failures)]


def generate_args(server: FaultServer, seeds: Path, out: Path, n: int, **flags: Any) -> list[str]:
    """A ``generate`` command line against the fault server."""
    return ["generate", "--seeds", str(seeds), "-o", str(out), "-n", str(n), "--seed", "1",
            *backend_flags(server, **flags)]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in this process (no OPENAI_API_KEY unless ``env`` gives one)."""
    environ = {"OPENAI_API_KEY": None, **(env or {})}
    return CliRunner().invoke(cli.app, list(args), env=environ)  # type: ignore[arg-type]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: no key unless given, wide terminal."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update({"COLUMNS": "400", "PYTHONPATH": str(ROOT)}, **(extra or {}))
    return env


def start(*args: str, env: dict[str, str] | None = None,
          prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start ``python -m selfinstruct ARGS`` as a real process."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "selfinstruct", *args], cwd=ROOT, env=cli_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m selfinstruct ARGS`` to the end."""
    process = start(*args, env=env, prefix=prefix)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def flat(text: str) -> str:
    """Output with line wrapping undone."""
    return " ".join(text.split())


def error_lines(output: str) -> list[str]:
    """The lines of ``output`` that report an error."""
    return [line for line in output.splitlines() if line.startswith("Error:")]


def assert_one_clear_error(output: str, *expected: str) -> str:
    """Exactly one ``Error:`` line, containing every ``expected`` text, and no traceback."""
    assert "Traceback" not in output, output
    errors = error_lines(output)
    assert len(errors) == 1, output
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a run file, which must be complete JSON objects, newline-terminated."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in a torn line"
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def assert_pool_is_novel(out: Path, threshold: float = 0.7) -> None:
    """Every kept instruction is at most ``threshold`` ROUGE-L from the seeds and every
    instruction kept before it, ids are sequential, and no instruction is repeated."""
    kept = read_records(out / "instructions.jsonl")
    assert [record["id"] for record in kept] == [f"gen_{i:06d}" for i in range(len(kept))]
    pool = [tokenize(text) for text in SEEDS]
    for record in kept:
        tokens = tokenize(record["instruction"])
        score = max(rouge_l(tokens, other) for other in pool)
        assert score <= threshold, (record, score)
        pool.append(tokens)


def run_files(out: Path) -> dict[str, bytes]:
    """The bytes of every file under a run directory, by relative path."""
    return {str(path.relative_to(out)): path.read_bytes()
            for path in sorted(out.rglob("*")) if path.is_file()}
