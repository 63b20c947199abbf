"""The page's API through gradio_client, against the page served on 127.0.0.1, and the
command that starts it."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

import pytest

from tests.helpers import invoke, read_lines, start
from tests.reliability.faultserver import MODEL, FaultServer

from .conftest import TEMPLATE, free_port

gradio_client = pytest.importorskip("gradio_client", reason="pip install 'selfinstruct[ui]'")
Handlers = pytest.importorskip("selfinstruct.ui.page",
                               reason="pip install 'selfinstruct[ui]'").Handlers


def client(url: str):
    return gradio_client.Client(url, verbose=False)


def test_run_returns_each_rows_prompt_answer_and_records(served):
    edited = TEMPLATE.replace("Ask one", "Ask just one")
    rows = client(served.url).predict("Be brief.", edited, "row0,row2", api_name="/run")
    assert [row["id"] for row in rows] == ["row0", "row2"]
    assert rows[1]["prompt"].startswith("Ask just one question about sql")
    assert rows[1]["reasoning"] == "thinking about sql"
    assert rows[1]["records"][0]["instruction"] == "What is sql?"
    assert rows[0]["rejected"] == []
    assert [request.system for request in served.model.requests] == ["Be brief."] * 2


def test_run_with_a_number_picks_that_many_at_random(served):
    rows = client(served.url).predict("", TEMPLATE, "3", api_name="/run")
    assert len({row["id"] for row in rows}) == 3


def test_run_with_a_template_error_is_an_error_naming_the_column(served):
    with pytest.raises(gradio_client.exceptions.AppError, match=r"\{车号\} is not a column"):
        client(served.url).predict("", "{车号}", "row0", api_name="/run")
    assert served.model.requests == []


def test_save_returns_the_command_whose_records_match_the_run(served):
    api = client(served.url)
    rows = api.predict("Be brief.", TEMPLATE, "row1,row4", api_name="/run")
    command = api.predict("Be brief.", TEMPLATE, api_name="/save")
    args = shlex.split(command)
    assert "sk-never-shown-42" not in command
    assert args[args.index("--map") + 1] == "instruction=q"
    result = invoke(*args[1:])
    assert result.exit_code == 0, result.output
    records = {r["id"]: r for r in read_lines(Path(args[args.index("--out") + 1])
                                               / "distilled.jsonl")}
    assert len(records) == 5
    assert [records[row["id"]] for row in rows] == [row["records"][0] for row in rows]


def test_the_page_holds_no_api_key_and_binds_this_machine(served):
    import httpx

    config = httpx.get(served.url.rstrip("/") + "/config", timeout=10).text
    assert "sk-never-shown-42" not in config
    assert served.url.startswith("http://127.0.0.1:")


def test_the_command_serves_a_real_server_page_and_the_saved_command_runs(
        rows_file, template_file, tmp_path):
    """The Done-when run: the CLI against an OpenAI-compatible server on 127.0.0.1."""
    server = FaultServer(seed=3).start()
    port = free_port()
    save_dir = tmp_path / "saved"
    backend = ["--base-url", server.base_url, "--model", MODEL, "--timeout", "5"]
    process = start("playground", str(rows_file), "--user-template", str(template_file),
                    "--parse", "json", "--map", "instruction=q", "--map", "output=a",
                    "--port", str(port), "--save-dir", str(save_dir), *backend,
                    env={"OPENAI_API_KEY": "sk-from-the-environment"})
    try:
        url = f"http://127.0.0.1:{port}/"
        api = _connect(url, process)
        template = TEMPLATE.replace("Ask one question", "Ask one short question")
        rows = api.predict("", template, "row0,row3", api_name="/run")
        assert [row["id"] for row in rows] == ["row0", "row3"]
        assert all(row["records"] and "instruction" in row["records"][0] for row in rows)
        command = api.predict("", template, api_name="/save")
    finally:
        process.terminate()
        process.communicate(timeout=30)
    try:
        args = shlex.split(command)
        assert "sk-from-the-environment" not in command
        result = invoke(*args[1:])
        assert result.exit_code == 0, result.output
        records = read_lines(Path(args[args.index("--out") + 1]) / "distilled.jsonl")
    finally:
        server.stop()
    assert {record["id"] for record in records} == {f"row{n}" for n in range(5)}
    prompts = {record["id"]: record["prompt"] for record in records}
    assert [prompts[row["id"]] for row in rows] == [row["prompt"] for row in rows]
    assert (save_dir / "template-001.txt").read_text() == template


def _connect(url: str, process, seconds: float = 90):
    """A client of the page once it answers (the command imports Gradio first)."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[1])
        try:
            return client(url)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def updates(handlers: Handlers, template: str, rows: str, earlier: dict) -> list[tuple]:
    async def collect() -> list[tuple]:
        return [update async for update in handlers.on_run("", template, rows, 0, earlier)]

    return asyncio.run(collect())


def test_run_streams_each_row_then_compares_with_the_previous_run(playground):
    handlers = Handlers(playground)
    first = updates(handlers, TEMPLATE, "row0,row1", {})
    assert first[0][0] == "sending 2 rows …"
    assert [update[0] for update in first[1:3]] == ["1 of 2 rows answered",
                                                    "2 of 2 rows answered"]
    status, cards, compared, earlier = first[-1]
    assert status.startswith("2 rows answered: 2 records kept")
    assert cards.count('class="si-record"') == 2 and "No earlier answers" in compared
    edited = TEMPLATE.replace("Ask one question", "Ask one odd question")
    *_, (_, _, compared, _) = updates(handlers, edited, "row1,row2", earlier)
    assert compared.count('class="si-pair"') == 1  # row1 ran before; row2 did not
    assert "Ask one question about rust" in compared
    assert "Ask one odd question about rust" in compared


def test_a_template_error_shows_on_the_page(playground):
    ((status, cards, _, earlier),) = updates(Handlers(playground), "{车号}", "row0", {})
    assert status.startswith("⚠ ") and "{车号} is not a column" in status
    assert "Traceback" not in status and cards == "" and earlier == {}


def test_the_picker_shows_the_rows_columns(playground):
    table, status = Handlers(playground).on_preview("", TEMPLATE, "row3..row4", 0)
    assert status == "2 rows picked"
    assert "<th>topic</th>" in table and "<td>jazz</td>" in table and "<td>moss</td>" in table
    table, status = Handlers(playground).on_preview("", TEMPLATE, "row77", 0)
    assert table == "" and "no row 'row77'" in status


def test_chat_answers_with_the_system_prompt(playground, model):
    history, box = asyncio.run(Handlers(playground).on_chat("Be terse.", "about tea", []))
    assert box == "" and history[0] == {"role": "user", "content": "about tea"}
    assert history[1]["content"] == "thinking about tea"  # folded under its title
    assert history[1]["metadata"]["title"] == "reasoning"
    assert history[2]["content"].startswith("```json") and "What is tea?" in history[2]["content"]
    assert model.requests[0].system == "Be terse."
