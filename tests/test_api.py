"""The library at its edges (selfinstruct/api.py): errors a user can fix are UserErrors
whether or not an event loop runs, a fake backend answers with plain text, and the fake
is a kind of the backend registry, selected like a real one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import selfinstruct
from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec, create_backend
from selfinstruct.llm.fake import FakeBackend
from tests.helpers import invoke, read, stream_script, write_jsonl


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "seeds.jsonl", [
        {"instruction": f"Describe the colour number {n} of the rainbow to a child."}
        for n in range(8)])


def test_a_resume_refusal_inside_a_running_loop_is_a_user_error(tmp_path, seed_file):
    """A notebook awaits agenerate inside its loop: a changed threshold on resume is the
    clear refusal, not asyncio's 'cannot be called from a running event loop'."""
    out = tmp_path / "run"
    selfinstruct.generate(out, num_instructions=3, seeds=seed_file,
                          backend=FakeBackend(stream_script()))

    async def notebook() -> None:
        await selfinstruct.agenerate(out, num_instructions=5, seeds=seed_file,
                                     similarity_threshold=0.5,
                                     backend=FakeBackend(stream_script()))

    with pytest.raises(UserError, match=r"this run was started with similarity_threshold=0\.7"):
        asyncio.run(notebook())


def test_a_script_may_answer_with_plain_text(tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"city": "Paris"}, {"city": "Lima"}])
    template = tmp_path / "t.txt"
    template.write_text("Which country is {city} in?", encoding="utf-8")
    fake = FakeBackend(lambda request, number: f"answer {number}")
    stats = selfinstruct.distill(rows, tmp_path / "out", user_template=template, backend=fake)
    assert (stats.total, stats.done) == (2, 2)
    records = read(tmp_path / "out" / "distilled.jsonl")
    assert sorted(r["answer"] for r in records) == ["answer 1", "answer 2"]
    assert all(r["usage"]["completion_tokens"] == 2 for r in records)


def test_the_fake_kind_answers_from_a_file_in_turn(tmp_path):
    answers = write_jsonl(tmp_path / "answers.jsonl",
                          ["first", {"text": "second", "reasoning": "why"}])
    backend = create_backend(BackendSpec(kind="fake", model=str(answers)))
    from selfinstruct.llm.base import Request

    request = Request(prompt="p", max_tokens=16)
    texts = [asyncio.run(backend.complete(request)) for _ in range(3)]
    assert [t.text for t in texts] == ["first", "second", "first"]
    assert texts[1].reasoning == "why"


def test_the_fake_kind_is_selected_like_a_real_backend_on_the_command_line(tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"q": "2+2"}, {"q": "3+3"}])
    template = tmp_path / "t.txt"
    template.write_text("Compute {q}.", encoding="utf-8")
    answers = write_jsonl(tmp_path / "answers.jsonl", [json.dumps({"a": 4})])
    result = invoke("distill", str(rows), "-o", str(tmp_path / "out"), "--user-template",
                    str(template), "--parse", "json", "--backend", "fake", "--model",
                    str(answers))
    assert result.exit_code == 0, result.output
    assert [r["a"] for r in read(tmp_path / "out" / "distilled.jsonl")] == [4, 4]


@pytest.mark.parametrize(("content", "message"), [
    ("", "holds no answers"),
    ("{not json\n", "not a file of answers"),
])
def test_a_bad_answers_file_is_one_clear_error(tmp_path, content, message):
    answers = tmp_path / "answers.jsonl"
    answers.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        create_backend(BackendSpec(kind="fake", model=str(answers)))
