"""End to end: the real CLI against llama.cpp's OpenAI-compatible server on 127.0.0.1,
and the embedded default model, both running the bundled SmolLM2-135M-Instruct."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("llama_cpp", reason="needs the local extra: pip install '.[local]'")

pytestmark = pytest.mark.e2e

from selfinstruct.llm.cpu_probe import llama_server_command  # noqa: E402
from selfinstruct.llm.local import default_model_path  # noqa: E402

PLANTED_KEY = "sk-planted-e2e-4f9c2b7d"
MODEL_ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """llama-cpp-python's server with the bundled model; stopped when the module ends."""
    port = free_port()
    process = subprocess.Popen(
        llama_server_command(default_model_path(), "--model_alias", MODEL_ALIAS, "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                             "--n_threads", str(os.cpu_count() or 1)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start")
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def selfinstruct(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "selfinstruct", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "instructions.jsonl").read_text().splitlines()]


def check_run(out: Path, n: int) -> list[dict]:
    kept = records(out)
    assert len(kept) == n
    assert len({r["id"] for r in kept}) == n
    assert len({r["instruction"] for r in kept}) == n
    for record in kept:
        assert record["instruction"].strip()
    stats = json.loads((out / "stats.json").read_text())["generate"]
    assert stats["kept"] == n
    assert stats["requests"]["succeeded"] >= 1
    return kept


def assert_no_key(out: Path, *outputs: str) -> None:
    for path in out.iterdir():
        assert PLANTED_KEY not in path.read_text(encoding="utf-8"), path
    for text in outputs:
        assert PLANTED_KEY not in text


def test_generate_through_the_server_chat_api(server, tmp_path):
    out = tmp_path / "run"
    result = selfinstruct("generate", "--base-url", server, "--model", MODEL_ALIAS,
                          "--api-key", PLANTED_KEY, "-n", "6", "-o", str(out), "--seed", "3",
                          "--concurrency", "4", "--max-tokens", "256")
    assert result.returncode == 0, result.stderr
    check_run(out, 6)
    assert "kept 6 new instructions (6/6" in " ".join(result.stderr.split())
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "openai" and config["base_urls"] == [server]
    assert_no_key(out, result.stdout, result.stderr)


def test_generate_through_the_server_completions_api(server, tmp_path):
    out = tmp_path / "run"
    result = selfinstruct("generate", "--base-url", server, "--model", MODEL_ALIAS,
                          "--api", "completions", "-n", "3", "-o", str(out), "--seed", "5",
                          "--max-tokens", "200")
    assert result.returncode == 0, result.stderr
    check_run(out, 3)


def test_ctrl_c_stops_cleanly_and_resumes(server, tmp_path):
    out = tmp_path / "run"
    args = ["generate", "--base-url", server, "--model", MODEL_ALIAS, "--api-key", PLANTED_KEY,
            "-o", str(out), "--seed", "7", "--max-tokens", "200", "--concurrency", "2"]
    process = subprocess.Popen([sys.executable, "-m", "selfinstruct", *args, "-n", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    instructions = out / "instructions.jsonl"
    while time.monotonic() < deadline and not (
        instructions.exists() and instructions.read_text().count("\n") >= 2
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    flat = " ".join(stderr.split())
    assert "stopped; resume with: selfinstruct generate" in flat
    assert "--api-key" not in flat.split("resume with:")[1]
    assert "(with the API key in OPENAI_API_KEY)" in flat
    kept = len(records(out))
    assert kept >= 2
    assert json.loads((out / "stats.json").read_text())["generate"]["interrupted"] is True
    assert_no_key(out, stdout, stderr)
    resumed = selfinstruct(*args, "-n", str(kept + 2))
    assert resumed.returncode == 0, resumed.stderr
    check_run(out, kept + 2)


def test_embedded_default_model(tmp_path):
    out = tmp_path / "run"
    result = selfinstruct("generate", "-n", "4", "-o", str(out), "--seed", "1",
                          "--max-tokens", "300")
    assert result.returncode == 0, result.stderr
    assert "embedded SmolLM2-135M-Instruct" in result.stderr
    kept = check_run(out, 4)
    assert {r["source"] for r in kept} == {"local:SmolLM2-135M-Instruct"}


def test_any_gguf_file_runs_in_process(tmp_path):
    model = tmp_path / "my-model.gguf"
    model.symlink_to(default_model_path())
    out = tmp_path / "run"
    result = selfinstruct("generate", "--model", str(model), "-n", "2", "-o", str(out),
                          "--seed", "2", "--max-tokens", "300")
    assert result.returncode == 0, result.stderr
    assert {r["source"] for r in check_run(out, 2)} == {"local:my-model.gguf"}


def test_missing_gguf_file_is_a_clear_error(tmp_path):
    result = selfinstruct("generate", "--model", str(tmp_path / "nope.gguf"), "-n", "2",
                          "-o", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "nope.gguf: no such model file" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def load_export(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


def check_export(directory: Path, name: str, entry: dict) -> int:
    """Every record has the columns dataset_info.json names, with non-empty text."""
    records = load_export(directory / entry["file_name"])
    assert records, name
    columns = entry["columns"]
    for record in records:
        if "formatting" not in entry:
            assert set(columns.values()) <= set(record)
            assert record[columns["prompt"]].strip() and record[columns["response"]].strip()
            assert isinstance(record[columns["query"]], str)
            continue
        tags = entry["tags"]
        turns = record[columns["messages"]]
        if turns[0][tags["role_tag"]] == tags.get("system_tag"):
            turns = turns[1:]
        assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]]
        assert all(t[tags["content_tag"]].strip() for t in turns)
    return len(records)


def test_run_exports_trainable_files(server, tmp_path):
    out = tmp_path / "run"
    common = ["--base-url", server, "--model", MODEL_ALIAS, "-n", "4", "-o", str(out),
              "--seed", "11", "--per-task", "2", "--max-tokens", "256",
              "--instance-max-tokens", "256", "--include-seeds"]
    counts = {}
    for fmt in ("alpaca", "sharegpt", "messages"):
        result = selfinstruct("run", *common, "--format", fmt)
        assert result.returncode == 0, result.stderr
        counts[fmt] = result.stderr
    assert "classify: 4/4 done (0 now)" in " ".join(counts["messages"].split())
    check_run(out, 4)
    assert len((out / "classification.jsonl").read_text().splitlines()) == 4
    tasks = [json.loads(x) for x in (out / "instances.jsonl").read_text().splitlines()]
    assert len(tasks) == 4
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert set(info) == {"run_alpaca", "run_sharegpt", "run_messages"}
    sizes = {check_export(out / "export", name, entry) for name, entry in info.items()}
    assert len(sizes) == 1
    generated = sum(len(t["instances"]) for t in tasks)
    assert sizes == {generated + 186}


def test_reason_with_a_model_that_does_not_think(server, tmp_path):
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps([
        {"instruction": "What is 6 times 7?", "input": "", "output": "42"},
        {"instruction": "Name the capital of France.", "input": "", "output": "Paris"},
    ]))
    out = tmp_path / "traces"
    result = selfinstruct("reason", str(source), "-o", str(out), "--base-url", server,
                          "--model", MODEL_ALIAS, "--max-tokens", "64", "--samples", "2",
                          "--enable-thinking", "--reference-field", "output", "--seed", "1")
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stderr.split())
    assert "reason: 0 traces in" in flat
    assert "4 answers had no reasoning trace" in flat
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert {r["filter"] for r in rejected} <= {"no_reasoning", "truncated"}
    assert len(rejected) == 4
    assert {(r["id"], r["sample"]) for r in rejected} == {
        ("row0", 0), ("row0", 1), ("row1", 0), ("row1", 1)}
    rates = [json.loads(x) for x in (out / "pass_rates.jsonl").read_text().splitlines()]
    assert [(r["samples"], r["correct"]) for r in rates] == [(2, 0), (2, 0)]


def test_score_export_and_report_against_the_server(server, tmp_path):
    out = tmp_path / "run"
    made = selfinstruct("generate", "--base-url", server, "--model", MODEL_ALIAS, "-n", "2",
                        "-o", str(out), "--seed", "5", "--max-tokens", "256")
    assert made.returncode == 0, made.stderr
    # The 135M model seldom writes instances the parser accepts, so they are written here;
    # the judge below is the real model behind the server.
    tasks = records(out)
    (out / "instances.jsonl").write_text("".join(json.dumps({
        "id": task["id"], "instruction": task["instruction"], "is_classification": False,
        "instances": [{"input": "", "output": "Paris is the capital of France."},
                      {"input": "", "output": "2 + 2 = 5"}]}) + "\n" for task in tasks))
    scored = selfinstruct("score", str(out), "--base-url", server, "--model", MODEL_ALIAS,
                          "--max-tokens", "128", "--seed", "1")
    assert scored.returncode == 0, scored.stderr
    ids = {f"{task['id']}#{n}" for task in tasks for n in (0, 1)}
    scores = {json.loads(x)["id"]: json.loads(x)["overall"]
              for x in (out / "scores.jsonl").read_text().splitlines()}
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    final = {r["id"] for r in rejected if r.get("stage") == "score" and r["final"]}
    assert set(scores) | final == ids and not set(scores) & final
    exported = selfinstruct("export", str(out), "--min-score", "4")
    assert exported.returncode == 0, exported.stderr
    kept = json.loads((out / "export" / "alpaca.json").read_text())
    assert len(kept) == sum(1 for value in scores.values() if value >= 4)
    report = selfinstruct("report", str(out))
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'alt="funnel" src="data:image/svg+xml;base64,' in page


def test_distill_five_csv_rows_through_the_server(server, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("country,continent\nFrance,Europe\nJapan,Asia\nKenya,Africa\n"
                    "Peru,\nCanada,North America\n", encoding="utf-8")
    template = tmp_path / "t.txt"
    template.write_text("What is the capital of {country} ({continent})? One word.\n")
    out = tmp_path / "out"
    result = selfinstruct("distill", str(rows), "--user-template", str(template),
                          "--system", "You are a geography teacher.", "--fill-na", "unknown",
                          "-o", str(out), "--base-url", server, "--model", MODEL_ALIAS,
                          "--api-key", PLANTED_KEY, "--max-tokens", "24", "--temperature", "0",
                          "--extra-body", '{"top_k": 1}', "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    kept = [json.loads(x) for x in (out / "distilled.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    answered = sorted([r["id"] for r in kept] + [r["id"] for r in rejected])
    assert answered == [f"row{i}" for i in range(5)]
    assert {r["filter"] for r in rejected} <= {"truncated", "empty"}
    for record in kept:
        assert record["answer"].strip() and record["country"] and record["model"]
        assert record["prompt"].startswith(f"What is the capital of {record['country']}")
    [peru] = [r for r in kept + rejected if r["id"] == "row3"]
    assert peru["prompt"] == "What is the capital of Peru (unknown)? One word.\n"
    stats = json.loads((out / "stats.json").read_text())["distill"]
    assert (stats["total"], stats["done"]) == (5, 5)
    assert_no_key(out, result.stdout, result.stderr)
    if kept:
        exported = selfinstruct("export", str(out), "--format", "sharegpt")
        assert exported.returncode == 0, exported.stderr
        info = json.loads((out / "export" / "dataset_info.json").read_text())
        assert check_export(out / "export", "out_sharegpt", info["out_sharegpt"]) == len(kept)


def test_the_embedded_model_writes_the_schema_under_a_grammar():
    """The grammar path in-process: the real 135M model answers in the schema's JSON."""
    import asyncio

    from selfinstruct.llm.base import Request
    from selfinstruct.llm.local import LocalBackend
    from selfinstruct.text.schemas import classify_schema, input_first_schema
    from selfinstruct.text.structured import read_input_first

    classify, examples = classify_schema("en"), input_first_schema(2)
    requests = [
        Request("Is 'Write a poem about the sea' a classification task? Answer yes or no.",
                max_tokens=16, temperature=0.0, schema=classify.schema,
                schema_name=classify.name),
        Request("Give two examples of adding two small numbers, with input and output.",
                max_tokens=160, temperature=0.0, seed=1, schema=examples.schema,
                schema_name=examples.name),
    ]

    async def ask() -> list[str]:
        backend = LocalBackend()
        try:
            return [(await backend.complete(request)).text for request in requests]
        finally:
            await backend.aclose()

    answer, written = asyncio.run(ask())
    assert json.loads(answer)["answer"] in ("Yes", "No")
    assert read_input_first(written)  # cut short or not, the complete examples are read


def test_the_server_takes_the_schema_as_json_object(server, tmp_path):
    """llama-cpp-python's server refuses response_format json_schema (a 500 naming it) and takes
    json_object with a schema: even under --structured json the run goes on asking for
    JSON that way, and says nothing."""
    out = tmp_path / "run"
    result = selfinstruct("generate", "--base-url", server, "--model", MODEL_ALIAS, "-n", "3",
                          "-o", str(out), "--seed", "4", "--max-tokens", "256",
                          "--concurrency", "1", "--structured", "json")
    assert result.returncode == 0, result.stderr
    assert "does not take a JSON schema" not in result.stderr
    check_run(out, 3)
    stats = json.loads((out / "stats.json").read_text())["generate"]
    assert stats["parsed"]["json"] == stats["requests"]["succeeded"] >= 1
