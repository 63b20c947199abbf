"""Fixtures for the playground's tests: rows, a template, a scripted model that answers
from the prompt (so a row's answer is the same whoever asks: the page or distill), and
the page served on 127.0.0.1 over it."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfinstruct.llm import use_backend
from selfinstruct.llm.base import Request
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.ui.session import Playground, PlaygroundSettings

# Gradio's client and server read this when they start: no telemetry, no update check.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

TOPICS = ["tea", "rust", "sql", "jazz", "moss"]
TEMPLATE = 'Ask one question about {topic} ({level}) as a JSON list of {{"q": .., "a": ..}}.\n'
#: The flags of the Done-when command line, as keywords.
FLAGS = {"parse": "json", "map": ["instruction=q", "output=a"], "stop": ["<END>"],
         "max_tokens": 300}
#: The fake backend's settings as the CLI would give them (the key must never show).
BACKEND = BackendSettings(backend="fake", model="answers.jsonl", api_key="sk-never-shown-42")


def answer(request: Request, number: int) -> str:
    """A JSON list naming the prompt's topic; no JSON at all when the prompt says NOJSON."""
    if "NOJSON" in request.prompt:
        return "I would rather not answer in JSON."
    topic = match.group(1) if (match := re.search(r"about (\w+)", request.prompt)) else "?"
    pairs = [{"q": f"What is {topic}?", "a": f"{topic} is a topic."}]
    return f"<think>thinking about {topic}</think>```json\n{json.dumps(pairs)}\n```"


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"topic": topic, "level": "easy" if i % 2 else "hard"})
                            + "\n" for i, topic in enumerate(TOPICS)), encoding="utf-8")
    return path


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.txt"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


@pytest.fixture
def model() -> Iterator[FakeBackend]:
    """The scripted model, given to every stage (and the playground) until the test ends."""
    backend = FakeBackend(answer)
    with use_backend(backend):
        yield backend


@pytest.fixture
def playground(rows_file: Path, template_file: Path, tmp_path: Path,
               model: FakeBackend) -> Playground:
    return Playground(PlaygroundSettings(rows_file, template_file, dict(FLAGS), BACKEND,
                                         tmp_path / "saved"))


@dataclass
class Served:
    """The page running on 127.0.0.1."""

    url: str
    playground: Playground
    model: FakeBackend


@pytest.fixture
def served(playground: Playground, model: FakeBackend) -> Iterator[Served]:
    from selfinstruct.ui.page import serve

    page = serve(playground, "127.0.0.1", free_port(), block=False)
    try:
        yield Served(page.local_url, playground, model)
    finally:
        page.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
