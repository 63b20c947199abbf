"""The library from plain Python: stage functions named like the commands, keyword
arguments named like their flags, against the fault server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import selfinstruct
from selfinstruct.llm.fake import FakeBackend
from tests.helpers import ROOT, answer

from .faultserver import MODEL, FaultServer

STAGES = ["generate", "classify", "instances", "reason", "export", "dedup", "run", "distill",
          "score", "review", "import_review", "report", "mix"]
SYNC_ONLY = ("export", "dedup", "review", "import_review", "report", "mix")


def test_the_library_exports_one_function_per_stage_and_their_async_twins():
    exported = set(selfinstruct.__all__)
    assert set(STAGES) <= exported
    assert {f"a{name}" for name in STAGES if name not in SYNC_ONLY} <= exported
    assert all(hasattr(selfinstruct, name) for name in selfinstruct.__all__)
    assert sorted(selfinstruct.__all__) == selfinstruct.__all__


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_plain_script_generates_exactly_n_and_resumes(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    script = (
        "import sys, selfinstruct\n"
        "stats = selfinstruct.generate(sys.argv[1], num_instructions=int(sys.argv[2]),\n"
        "    seeds=sys.argv[3], base_url=sys.argv[4], model=sys.argv[5], api_key=None,\n"
        "    concurrency=4, similarity_threshold=0.7)\n"
        "print(stats.kept, stats.kept_now)\n"
    )
    args = [str(seeds), server.base_url, MODEL]
    first = subprocess.run([sys.executable, "-c", script, str(out), "12", *args],
                           capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["12", "12"]
    second = subprocess.run([sys.executable, "-c", script, str(out), "20", *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["20", "8"]
    kept = read(out / "instructions.jsonl")
    assert len(kept) == 20 and len({r["id"] for r in kept}) == 20
    assert json.loads((out / "config.json").read_text())["base_urls"] == [server.base_url]


def test_the_key_comes_from_the_environment_when_not_given(server: FaultServer, seeds,
                                                           tmp_path, monkeypatch):
    server.api_key = "sk-from-the-environment-123"  # any other key is refused
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-123")
    stats = selfinstruct.generate(tmp_path / "run", num_instructions=3, seeds=seeds,
                                  base_url=server.base_url, model=MODEL, concurrency=1)
    assert stats.kept == 3
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(selfinstruct.UserError, match="wants an API key and none was given"):
        selfinstruct.generate(tmp_path / "other", num_instructions=3, seeds=seeds,
                              base_url=server.base_url, model=MODEL, concurrency=1)


def test_a_typo_in_a_setting_is_a_type_error_at_the_call(tmp_path):
    with pytest.raises(TypeError, match="num_instruction'"):
        selfinstruct.generate(tmp_path / "run", num_instruction=3)
    with pytest.raises(TypeError, match="per_taks"):
        selfinstruct.instances(tmp_path / "run", per_taks=2)
    assert not (tmp_path / "run").exists()


def test_every_stage_runs_on_a_given_backend_object(seeds, tmp_path):
    """generate, classify, instances, export through the library with one FakeBackend."""
    fake = FakeBackend(answer)
    out = tmp_path / "run"
    stats = selfinstruct.generate(out, num_instructions=4, seeds=seeds, backend=fake)
    assert stats.kept == 4
    result = asyncio.run(selfinstruct.arun(out, num_instructions=4, seeds=seeds,
                                           backend=fake, per_task=1))
    assert result.generate.kept == 4 and result.classify is not None
    assert result.classify.done == 4
    assert result.export.path.exists() and not fake.closed


def test_the_readme_python_example_names_only_what_the_library_exports():
    """The README's "From Python" block is what users paste: every ``selfinstruct.X`` in
    it must exist and be exported, and the block must be valid Python."""
    import ast
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    ast.parse(code)
    used = set(re.findall(r"selfinstruct\.(\w+)\(", code))
    assert {"generate", "run", "distill", "score", "review", "report", "mix"} <= used
    assert used <= set(selfinstruct.__all__)
