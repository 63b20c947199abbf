"""Shared test helpers: the library's fake backend, scripted answers and small seed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.llm import use_backend
from selfinstruct.llm.base import Completion, Usage
from selfinstruct.similarity.index import SimilarityIndex


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


@pytest.fixture
def serve(request: pytest.FixtureRequest):
    """``serve(backend_or_factory)``: every backend a stage asks for, until the test ends,
    is that backend (or made by that function from the stage's BackendSpec), through the
    library's one seam, ``selfinstruct.llm.use_backend``."""

    def install(given):
        context = use_backend(given)
        context.__enter__()
        request.addfinalizer(lambda: context.__exit__(None, None, None))

    return install
