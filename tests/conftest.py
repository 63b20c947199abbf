"""Fixtures for every test: the compiled similarity kernel, a seed file, and the library's
backend seam. Plain helpers live in ``tests/helpers.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from selfinstruct.llm import use_backend
from selfinstruct.similarity.index import SimilarityIndex
from tests.helpers import ENGLISH_SEEDS, STAND_INS


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


@pytest.fixture
def stand_in_vllm(monkeypatch):
    """The stand-in ``vllm`` package of tests/stand_ins in place of the real one, its
    engines and the backend's engine cache fresh for each test."""
    monkeypatch.syspath_prepend(str(STAND_INS))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    import vllm

    from selfinstruct.llm import vllm as backend_module

    vllm.instances.clear()
    monkeypatch.setattr(backend_module, "_ENGINES", {})
    yield vllm
    vllm.responder = vllm.default_responder
    sys.modules.pop("vllm", None)
    sys.modules.pop("vllm.sampling_params", None)
