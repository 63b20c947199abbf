"""The playground's work without the page: rows sent and read exactly as distill does."""

from __future__ import annotations

import asyncio
import json
import shlex
from pathlib import Path

import pytest

from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.ui.session import Playground, PlaygroundSettings, RowResult
from tests.helpers import invoke, read_lines

from .conftest import FLAGS, TEMPLATE, TOPICS


def run(playground: Playground, rows: str, *, system: str = "Be brief.",
        template: str = TEMPLATE) -> list[RowResult]:
    async def collect() -> list[RowResult]:
        plan = playground.plan(system, template, rows)
        done = {result.id: result async for result in playground.answers(plan)}
        return [done[key] for key, _ in plan.rows]

    return asyncio.run(collect())


def distill_as_saved(playground: Playground, system: str, template: str
                     ) -> tuple[list[dict], Path]:
    """Save, then run the printed command; the records it wrote."""
    saved = playground.save(system, template)
    args = shlex.split(saved.command)
    assert args[:2] == ["selfinstruct", "distill"]
    result = invoke(*args[1:])
    assert result.exit_code == 0, result.output
    out = Path(args[args.index("--out") + 1])
    return read_lines(out / "distilled.jsonl"), out


def test_two_rows_give_the_records_and_requests_distill_gives(playground, model):
    edited = TEMPLATE.replace("Ask one question", "Ask exactly one question")
    results = run(playground, "row0,row3", system="  Be brief.\n", template=edited)
    assert [result.id for result in results] == ["row0", "row3"]
    row3 = results[1]
    assert row3.prompt.startswith("Ask exactly one question about jazz (easy)")
    assert row3.reasoning == "thinking about jazz"
    assert "```json" in row3.answer and row3.rejected == [] and row3.error is None
    assert [(r["instruction"], r["output"]) for r in row3.records] == [
        ("What is jazz?", "jazz is a topic.")]
    sent = list(model.requests)
    assert [request.system for request in sent] == ["Be brief.", "Be brief."]
    assert all(request.stop == ("<END>",) and request.max_tokens == 300 for request in sent)

    records, _ = distill_as_saved(playground, "  Be brief.\n", edited)
    by_id = {record["id"]: record for record in records}
    assert sorted(by_id) == [f"row{n}" for n in range(len(TOPICS))]  # and the rest
    assert by_id["row0"] == results[0].records[0]
    assert by_id["row3"] == row3.records[0]
    distilled = {request.prompt: request for request in model.requests[len(sent):]}
    assert [distilled[request.prompt] for request in sent] == sent


def test_an_answer_distill_would_reject_says_why(playground):
    template = TEMPLATE.replace("as a JSON list", "NOJSON")
    (result,) = run(playground, "row1", template=template)
    assert result.records == []
    assert result.rejected == [{"filter": "unparseable", "detail": result.rejected[0]["detail"]}]


def test_a_failed_request_is_the_rows_error(playground, model):
    model.script = lambda request, number: BackendError("the server is down", retryable=True)
    (result,) = run(playground, "row2")
    assert result.error == "the server is down" and result.records == []


def test_a_template_error_names_the_column_not_a_temporary_file(playground):
    with pytest.raises(UserError) as caught:
        playground.plan("", "车号: {车号}", "row0")
    message = str(caught.value)
    assert "{车号} is not a column" in message and "the template" in message
    assert "selfinstruct-playground" not in message


def test_save_never_overwrites_and_numbers_versions(playground, tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "template-004.txt").write_text("an earlier one")
    first = playground.save("Be kind.", TEMPLATE)
    second = playground.save("", "Just {topic}.")
    assert (folder / "template-004.txt").read_text() == "an earlier one"
    assert first.template.name == "template-005.txt" and first.template.read_text() == TEMPLATE
    assert first.system is not None and first.system.read_text() == "Be kind.\n"
    assert second.template.name == "template-006.txt" and second.system is None
    assert "--system-file" not in second.command
    assert "distill-006" in second.command


def test_the_api_key_is_in_no_saved_file_nor_the_command(playground, tmp_path):
    saved = playground.save("Be brief.", TEMPLATE)
    written = "".join(path.read_text() for path in (tmp_path / "saved").iterdir())
    assert "sk-never-shown-42" not in written + saved.command


def test_a_template_distill_would_refuse_is_not_saved(playground, tmp_path):
    with pytest.raises(UserError, match="is not a column"):
        playground.save("", "{nope}")
    assert not list((tmp_path / "saved").glob("template-*"))


def test_chat_sends_the_message_with_the_system_prompt(playground, model):
    completion = asyncio.run(playground.chat("You are terse.\n", "Tell me about moss"))
    assert "moss" in completion.text
    (request,) = model.requests
    assert (request.prompt, request.system, request.stop) == (
        "Tell me about moss", "You are terse.", ("<END>",))


def test_the_start_template_and_system_prompt_fill_the_boxes(rows_file, template_file,
                                                             tmp_path, model):
    system = tmp_path / "system.txt"
    system.write_text("You write exam questions.\n")
    playground = Playground(PlaygroundSettings(
        rows_file, template_file, {**FLAGS, "system_file": system}, BackendSettings(
            backend="fake", model="x")))
    assert playground.initial_template == TEMPLATE
    assert playground.initial_system == "You write exam questions."


def test_bad_flags_stop_the_start(rows_file, template_file, model):
    with pytest.raises(UserError, match="--map renames JSON keys"):
        Playground(PlaygroundSettings(rows_file, template_file, {"map": ["a=b"]},
                                      BackendSettings(backend="fake", model="x")))


def test_each_row_is_json_for_the_api(playground):
    (result,) = run(playground, "row4")
    data = json.loads(json.dumps(result.to_json()))
    assert {"id", "prompt", "answer", "reasoning", "records", "rejected"} <= set(data)
    assert data["records"][0]["instruction"] == "What is moss?"


def test_a_given_backend_is_what_the_playground_sends_to(rows_file, template_file):
    backend = FakeBackend(lambda request, number: "plain")
    playground = Playground(PlaygroundSettings(rows_file, template_file, {},
                                               BackendSettings(backend="fake", model="x")))
    from selfinstruct.llm import use_backend

    with use_backend(backend):
        (result,) = run(playground, "row0")
    assert result.records[0]["answer"] == "plain" and len(backend.requests) == 1
