"""Structured output through the stages and the CLI: what is asked for with
``--structured auto|json|off``, JSON answers read by every stage, text still read when a
model ignores the schema, the parse counts in stats.json, and a server's refusal."""

from __future__ import annotations

import json

import httpx2
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm.base import Completion, Request
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.runs.templates import load_template
from tests.helpers import CLASSIFICATION_WORD, distinct_texts, read
from tests.helpers import answer as text_answer

runner = CliRunner()


def json_answer(request: Request, number: int) -> Completion:
    """Every stage answered in the JSON its schema asks for."""
    if request.schema is None:
        return text_answer(request, number)
    name = request.schema_name
    if name == "classification":
        task = [line for line in request.prompt.splitlines() if line.startswith("Task:")][-1]
        return Completion(text=json.dumps({"answer": "Yes" if CLASSIFICATION_WORD in task
                                           else "No"}))
    if name == "labelled_examples":
        return Completion(text=json.dumps({"labels": ["Positive", "Negative"], "examples": [
            {"label": "Positive", "input": "I loved every minute of it."},
            {"label": "Negative", "input": "The service was slow and rude."},
            {"label": "Maybe", "input": "Not sure about this one."}]}))
    if name == "examples":
        return Completion(text="```json\n" + json.dumps({"examples": [
            {"input": "2, 3", "output": 5}, {"input": "10, 4", "output": "14"},
            {"input": "10, 4", "output": "14"}, {"input": "1, 1", "output": ""}]}) + "\n```")
    if name == "alpaca_tasks":
        texts = distinct_texts(3, seed=number)
        return Completion(text=json.dumps({"tasks": [
            {"instruction": text, "input": "<noinput>", "output": f"answer {i}"}
            for i, text in enumerate(texts)]}))
    texts = distinct_texts(3, seed=number)
    texts[0] = f"Judge the {CLASSIFICATION_WORD} of a review {texts[0]}"
    return Completion(text=json.dumps({"tasks": texts}))


@pytest.fixture
def fake(serve):
    """Every backend the CLI builds is a FakeBackend playing ``script``; returns them."""
    backends: list[FakeBackend] = []

    def install(script=json_answer) -> list[FakeBackend]:
        def create(*args, **kwargs):
            backends.append(FakeBackend(script))
            return backends[-1]

        serve(create)
        return backends

    return install


def requests_of(backends: list[FakeBackend]) -> list[Request]:
    return [request for backend in backends for request in backend.requests]


@pytest.mark.parametrize("mode", ["json", "auto"])
def test_json_answers_are_read_by_every_stage(tmp_path, seed_file, fake, mode):
    """``json`` asks every stage for JSON; ``auto`` all but the self-instruct list, which
    stays text (BENCHMARKS.md: a schema slowed the embedded model's lists down)."""
    backends = fake()
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                                     "--per-task", "3", "--structured", mode])
    assert result.exit_code == 0, result.output
    sent = requests_of(backends)
    generate_requests = [r for r in sent if "Continue the list with new tasks" in r.prompt]
    names = {request.schema_name for request in sent if request.schema is not None}
    assert names >= {"classification", "labelled_examples", "examples"}
    if mode == "json":
        assert names == {"task_list", "classification", "labelled_examples", "examples"}
        json_variant = load_template("self-instruct", "en", structured=True).text
        asked_for_json = json_variant.split("\n\n")[0]
        assert asked_for_json.endswith('Answer with one JSON object, {{"tasks": [...]}}, whose '
                                       'list holds the new instructions.')
        assert all(r.prompt.startswith(asked_for_json.replace("{{", "{").replace("}}", "}"))
                   for r in generate_requests)
    else:
        text_intro = load_template("self-instruct", "en").text.split("\n\n")[0]
        assert all(r.schema is None and r.prompt.startswith(text_intro)
                   for r in generate_requests)
    pool = {r["id"]: r["instruction"] for r in read(out / "instructions.jsonl")}
    classified = {r["id"]: r["is_classification"] for r in read(out / "classification.jsonl")}
    assert classified == {i: CLASSIFICATION_WORD in text for i, text in pool.items()}
    assert any(classified.values()) and not all(classified.values())
    for task in read(out / "instances.jsonl"):
        if task["is_classification"]:
            assert task["labels"] == ["Positive", "Negative"]
            assert task["instances"] == [
                {"input": "I loved every minute of it.", "output": "Positive"},
                {"input": "The service was slow and rude.", "output": "Negative"}]
        else:
            assert task["instances"] == [{"input": "2, 3", "output": "5"},
                                         {"input": "10, 4", "output": "14"}]
    rejected = {r["filter"] for r in read(out / "rejected.jsonl") if r["stage"] == "instances"}
    assert {"label_not_listed", "duplicate", "empty_output"} <= rejected
    stats = json.loads((out / "stats.json").read_text())
    generate_answers = stats["generate"]["requests"]["succeeded"]
    assert generate_answers == len(generate_requests)
    assert stats["generate"]["parsed"] == (
        {"json": generate_answers, "text": 0} if mode == "json"
        else {"json": 0, "text": generate_answers})
    assert stats["classify"]["parsed"] == {"json": 6, "text": 0}
    assert stats["instances"]["parsed"] == {"json": 6, "text": 0}
    assert json.loads((out / "config.json").read_text())["structured"] == mode


def test_text_answers_to_json_requests_are_still_read(tmp_path, seed_file, fake):
    """A model (or server) that ignores the schema: every stage falls back to its text
    parser and counts the answers as text."""
    backends = fake(text_answer)
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                                     "--per-task", "3"])
    assert result.exit_code == 0, result.output
    assert all(request.schema is not None for request in requests_of(backends)
               if "Continue the list" not in request.prompt)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["classify"]["parsed"] == {"json": 0, "text": 6}
    assert stats["instances"]["parsed"] == {"json": 0, "text": 6}
    assert stats["generate"]["parsed"]["json"] == 0
    assert sum(len(task["instances"]) for task in read(out / "instances.jsonl")) == 12


def test_alpaca_tasks_as_json(tmp_path, seed_file, fake):
    backends = fake()
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                     "-n", "5", "--prompt-style", "alpaca"])
    assert result.exit_code == 0, result.output
    [request] = requests_of(backends)[:1]
    assert request.schema_name == "alpaca_tasks"
    assert request.schema["properties"]["tasks"]["maxItems"] == 20
    records = read(out / "instructions.jsonl")
    assert len(records) == 5
    assert records[0]["input"] == "" and records[0]["output"] == "answer 0"


def test_off_sends_no_schema_and_the_text_prompts_of_old(tmp_path, seed_file, fake):
    backends = fake()
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "4",
                                     "--per-task", "2", "--structured", "off"])
    assert result.exit_code == 0, result.output
    sent = requests_of(backends)
    assert sent and all(request.schema is None for request in sent)
    text_template = load_template("self-instruct", "en").text
    assert sent[0].prompt.startswith(text_template.split("\n\n")[0] + "\n\nTask 1: ")
    classify_prompts = [r.prompt for r in sent if r.prompt.endswith("Is it classification?")]
    template = load_template("classify", "en")
    pool = [r["instruction"] for r in read(out / "instructions.jsonl")]
    assert classify_prompts == [template.render(instruction=text) for text in pool]
    assert json.loads((out / "config.json").read_text())["structured"] == "off"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["classify"]["parsed"] == {"json": 0, "text": 4}
    # A later stage of the same run reuses the saved choice; a flag overrides it.
    (out / "classification.jsonl").unlink()
    assert runner.invoke(cli.app, ["classify", str(out)]).exit_code == 0
    assert all(request.schema is None for request in backends[-1].requests)
    (out / "classification.jsonl").unlink()
    assert runner.invoke(cli.app, ["classify", str(out), "--structured", "auto"]).exit_code == 0
    assert all(request.schema_name == "classification" for request in backends[-1].requests)


def test_json_prompts_show_json_examples(tmp_path, seed_file, fake):
    fake()
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "3"]).exit_code == 0
    result = runner.invoke(cli.app, ["classify", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert 'Is it classification? {"answer": "Yes"}' in result.output
    assert "answers asked for as JSON (schema 'classification'" in result.output
    result = runner.invoke(cli.app, ["classify", str(out), "--dry-run", "--structured", "off"])
    assert '{"answer"' not in result.output and "Is it classification? Yes" in result.output


def test_a_prompt_dir_with_only_text_templates_keeps_them(tmp_path):
    """A user's own text template is not silently replaced by our JSON variant."""
    own = tmp_path / "prompts" / "en"
    own.mkdir(parents=True)
    (own / "classify.txt").write_text("My question about {instruction}?", encoding="utf-8")
    template = load_template("classify", "en", tmp_path / "prompts", structured=True)
    assert template.text == "My question about {instruction}?"
    (own / "classify_json.txt").write_text("JSON please: {instruction}", encoding="utf-8")
    template = load_template("classify", "en", tmp_path / "prompts", structured=True)
    assert template.text == "JSON please: {instruction}"
    assert load_template("input-first", "en", tmp_path / "prompts",
                         structured=True).source.name == "input_first_json.txt"


def refusing_server(bodies: list[dict]) -> httpx2.MockTransport:
    """An OpenAI-compatible server that answers 400 to any response_format."""
    texts = iter(distinct_texts(200, seed=9))

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":  # the server check before the first request
            return httpx2.Response(404)
        body = json.loads(request.content)
        bodies.append(body)
        if "response_format" in body:
            return httpx2.Response(400, json={"error": {"message": "response_format is not "
                                                        "supported"}})
        prompt = body["messages"][0]["content"]
        content = "\n".join(f"Task {9 + i}: {next(texts)}" for i in range(3))
        if prompt.endswith("Is it classification?"):
            content = "No"
        return httpx2.Response(200, json={"model": "m", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"}]})

    return httpx2.MockTransport(handler)


def server_backend(serve, bodies: list[dict]) -> None:
    """Every backend the CLI builds talks to :func:`refusing_server`."""

    def server(structured: str) -> OpenAIBackend:
        return OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key=None,
                             max_retries=0, structured=structured,
                             http_client=httpx2.AsyncClient(transport=refusing_server(bodies)))

    serve(lambda spec: server(spec.structured))


def test_auto_falls_back_to_text_on_a_refusing_server_and_says_so_once(
        tmp_path, seed_file, serve):
    bodies: list[dict] = []
    server_backend(serve, bodies)
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "9", "--base-url", "http://127.0.0.1:9/v1",
                                   "--model", "m", "--concurrency", "1"]).exit_code == 0
    assert not any("response_format" in body for body in bodies)  # a self-instruct list
    del bodies[:]
    result = runner.invoke(cli.app, ["classify", str(out)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert flat.count("does not take a JSON schema") == 1
    assert ("http://127.0.0.1:9/v1 does not take a JSON schema (it refused response_format); "
            "its requests go without one for the rest of the run") in flat
    assert [("response_format" in body) for body in bodies] == [True, True] + [False] * 9
    assert [r["is_classification"] for r in read(out / "classification.jsonl")] == [False] * 9
    stats = json.loads((out / "stats.json").read_text())
    assert stats["classify"]["parsed"] == {"json": 0, "text": 9}


def test_structured_json_stops_with_a_clear_line_on_a_refusing_server(
        tmp_path, seed_file, serve):
    bodies: list[dict] = []
    server_backend(serve, bodies)
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                     "-n", "9", "--base-url", "http://127.0.0.1:9/v1",
                                     "--model", "m", "--concurrency", "1", "--structured", "json"])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert ("Error: openai:m: HTTP 400: the server refused a request that asks for a JSON "
            "answer: response_format is not supported (if it does not support "
            "response_format, use --structured auto to fall back to text, or --structured "
            "off)") in flat
    assert all("response_format" in body for body in bodies)
    assert json.loads((out / "config.json").read_text())["structured"] == "json"


def test_saved_runs_from_before_structured_output_default_to_auto(tmp_path):
    from selfinstruct.llm.settings import BackendSettings, resolve_backend

    assert resolve_backend({}, BackendSettings()).structured == "auto"
    assert resolve_backend({"structured": "off"}, BackendSettings()).structured == "off"
    assert resolve_backend({"structured": "off"},
                           BackendSettings(structured="json")).structured == "json"


def test_the_flag_is_on_the_commands_with_a_shape(tmp_path):
    for command in ("generate", "classify", "instances", "run"):
        result = runner.invoke(cli.app, [command, "--help"])
        assert "--structured" in result.output, command
    assert "--structured" not in runner.invoke(cli.app, ["reason", "--help"]).output


def test_unknown_mode_is_refused(tmp_path):
    result = runner.invoke(cli.app, ["classify", str(tmp_path), "--structured", "yaml"])
    assert result.exit_code == 2
    assert "yaml" in result.output


def test_prompt_files_exist_for_every_structured_template():
    for language in ("en", "zh"):
        for name in ("self-instruct", "alpaca", "classify", "input-first", "output-first"):
            assert load_template(name, language, structured=True).source.name.endswith(
                "_json.txt"), (language, name)
