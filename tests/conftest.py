"""Shared test helpers: a scripted fake backend and small seed files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.similarity.index import SimilarityIndex

Script = Callable[[Request, int], Completion | BackendError]


class FakeBackend:
    """Answers each request with ``script(request, call_number)``; records every request.

    ``delay`` makes answers arrive later so several requests are in flight at once.
    """

    def __init__(self, script: Script, delay: float = 0.0) -> None:
        self.name = "fake"
        self.script = script
        self.delay = delay
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        number = len(self.requests)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            outcome = self.script(request, number)
        finally:
            self.in_flight -= 1
        if isinstance(outcome, BackendError):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


def numbered_answer(first: int, texts: list[str], finish_reason: str = "stop") -> Completion:
    """A davinci-style continuation: the first task without its number, then numbered ones."""
    lines = [texts[0]] + [f"Task {first + i}: {text}" for i, text in enumerate(texts[1:], 1)]
    return Completion(
        text="\n".join(lines), finish_reason=finish_reason, usage=Usage(100, 50), model="fake-model"
    )


ENGLISH_SEEDS = [
    "Explain why the sky looks blue during a clear day.",
    "Suggest three names for a bakery that sells sourdough bread.",
    "Convert the temperature of 30 degrees Celsius to Fahrenheit.",
    "Summarize the main causes of the French Revolution in two sentences.",
    "Write a haiku about autumn leaves falling in a quiet park.",
    "List five healthy snacks that children enjoy after school.",
    "Classify the sentiment of this sentence as positive or negative.",
    "Recommend a strategy for learning vocabulary in a new language.",
    "Describe how a bill becomes law in a parliamentary democracy.",
    "Give advice to someone preparing for their first job interview.",
]


@pytest.fixture(scope="session", autouse=True)
def _compiled_similarity_kernel() -> None:
    """Compile the ROUGE-L kernel (or load numba's cache) once, before any test: the
    first call on a fresh checkout takes seconds, which would trip hypothesis deadlines."""
    index = SimilarityIndex()
    index.add("warm up the kernel")
    assert index.first_above("warm up the kernel", 0.5) == (1.0, 0)


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    """Ten English seed tasks in Self-Instruct JSONL, each with one instance."""
    path = tmp_path / "seeds.jsonl"
    with path.open("w", encoding="utf-8") as fp:
        for i, text in enumerate(ENGLISH_SEEDS):
            record = {
                "id": f"s{i}",
                "name": f"task_{i}",
                "instruction": text,
                "instances": [{"input": "", "output": f"answer {i}"}],
                "is_classification": False,
            }
            fp.write(json.dumps(record) + "\n")
    return path
