"""Fixtures for the reliability suite: the fault server and seeds.

The ways to run the CLI against it (in-process ``invoke``, or a real ``python -m
selfinstruct`` subprocess with ``start`` / ``run_cli`` that can be killed) and the checks
on what a run wrote live in ``tests/helpers.py``. Every run talks to the scripted fault
server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ENGLISH_SEEDS

from .faultserver import FaultServer


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
        for i, text in enumerate(ENGLISH_SEEDS)
    ))
    return path
