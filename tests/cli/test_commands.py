"""The CLI: exact error text and exit codes, and a full generate through a fake backend."""

from __future__ import annotations

import json
import random
import re

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm.base import BackendError, Completion
from selfinstruct.llm.fake import FakeBackend
from tests.helpers import (
    chinese_document,
    distinct_texts,
    edit_words,
    english_document,
    numbered_answer,
    stream_script,
)

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def fake(serve):
    backends: list[FakeBackend] = []

    def install(script=None) -> list[FakeBackend]:
        def create(spec):
            backend = FakeBackend(script or stream_script())
            backends.append(backend)
            return backend

        serve(create)
        return backends

    return install


def test_generate_writes_the_run_directory(tmp_path, seed_file, fake):
    backends = fake()
    out = tmp_path / "run"
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                    "--base-url", "http://127.0.0.1:1/v1", "--model", "m",
                    "--api-key", "sk-planted-secret")
    assert result.exit_code == 0, result.output
    assert "kept 6 new instructions (6/6" in one_line(result.output)
    assert len((out / "instructions.jsonl").read_text().splitlines()) == 6
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "openai" and config["model"] == "m"
    assert config["language"] == "en" and config["num_instructions"] == 6
    for path in out.iterdir():
        assert "sk-planted-secret" not in path.read_text()
    assert backends[0].closed


def test_most_similar_flag_adds_the_closest_pool_texts(tmp_path, seed_file, fake):
    texts = iter(distinct_texts(50, seed=3))

    def script(request, number: int) -> Completion:  # tasks sharing "for a young child"
        return numbered_answer(9, [f"{next(texts)} for a young child" for _ in range(3)])

    fake(script)
    out = tmp_path / "run"
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(out), "-n", "4",
                    "--base-url", "http://127.0.0.1:1/v1", "--model", "m", "--most-similar", "2")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "instructions.jsonl").read_text().splitlines()]
    kept = [record["instruction"] for record in records]
    for earlier, record in enumerate(records):
        assert len(record["most_similar"]) == 2
        assert record["max_similarity"] == max(record["most_similar"].values())
        if earlier:  # an earlier task shares four words: closer than any seed
            assert next(iter(record["most_similar"])) in kept[:earlier]
    assert json.loads((out / "config.json").read_text())["most_similar"] == 2


def test_base_url_file_and_machine_examples_through_the_cli(tmp_path, seed_file, serve):
    """Two servers from a file (comments and blank lines skipped) reach the run config;
    --machine-examples 0 keeps kept instructions out of every prompt."""
    configs = []
    backend = FakeBackend(stream_script(per_answer=2))

    def create(spec):
        configs.append(spec)
        return backend

    serve(create)
    servers = tmp_path / "servers.txt"
    servers.write_text("# two nodes\nhttp://127.0.0.1:1/v1\n\nhttp://127.0.0.1:2/v1\n")
    out = tmp_path / "run"
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                    "--base-url-file", str(servers), "--model", "m", "--machine-examples", "0",
                    "--concurrency", "1")
    assert result.exit_code == 0, result.output
    [config] = configs
    assert config.base_urls == ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    assert json.loads((out / "config.json").read_text())["num_machine_examples"] == 0
    kept = [json.loads(line)["instruction"]
            for line in (out / "instructions.jsonl").read_text().splitlines()]
    assert len(kept) == 6 and len(backend.requests) == 3
    for request in backend.requests:
        assert not any(text in request.prompt for text in kept)


def test_fatal_backend_error_is_one_line(tmp_path, seed_file, fake):
    fake(lambda request, n: BackendError("HTTP 401: the API key was refused", retryable=False))
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(tmp_path / "r"), "-n", "3",
                    "--base-url", "http://127.0.0.1:1/v1", "--model", "m")
    assert result.exit_code == 2
    assert "Error: fake: HTTP 401: the API key was refused" in one_line(result.output)
    assert "Traceback" not in result.output


def test_bad_seed_file(tmp_path, fake):
    fake()
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "Name three rivers in Asia."}\n{"instruction": \n')
    result = invoke("generate", "--seeds", str(seeds), "-o", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert re.search(r"Error: \S*seeds.jsonl:2: not valid JSON", one_line(result.output))


def test_base_url_needs_model(tmp_path):
    result = invoke("generate", "-o", str(tmp_path / "r"), "--base-url", "http://127.0.0.1:1/v1")
    assert result.exit_code == 2
    assert "Error: --base-url needs --model NAME" in one_line(result.output)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-n", "0"], "-n must be at least 1"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--similarity-threshold", "1.5"], "--similarity-threshold must be between 0 and 1"),
        (["--most-similar", "-1"], "--most-similar must not be negative"),
    ],
)
def test_bad_flag_values(tmp_path, seed_file, fake, flags, message):
    fake()
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(tmp_path / "r"), *flags)
    assert result.exit_code == 2
    assert f"Error: {message}" in one_line(result.output)


def test_unknown_prompt_style_is_a_usage_error(tmp_path):
    result = invoke("generate", "-o", str(tmp_path / "r"), "--prompt-style", "fancy")
    assert result.exit_code == 2
    assert "fancy" in result.output


def test_template_with_unknown_placeholder(tmp_path, seed_file, fake):
    fake()
    prompts = tmp_path / "prompts" / "en"
    prompts.mkdir(parents=True)
    (prompts / "self_instruct.txt").write_text("Tasks:\n{tasks}\nTask {nxt}:\n")
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(tmp_path / "r"),
                    "--prompt-dir", str(tmp_path / "prompts"))
    assert result.exit_code == 2
    assert re.search(r"self_instruct.txt:3: unknown placeholder \{nxt\}", one_line(result.output))


def test_user_template_is_used(tmp_path, seed_file, fake):
    backends = fake()
    prompts = tmp_path / "prompts" / "en"
    prompts.mkdir(parents=True)
    (prompts / "self_instruct.txt").write_text("MY OWN PROMPT\n{tasks}\nTask {next}:")
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(tmp_path / "r"), "-n", "2",
                    "--prompt-dir", str(tmp_path / "prompts"))
    assert result.exit_code == 0, result.output
    assert backends[0].requests[0].prompt.startswith("MY OWN PROMPT\nTask 1: ")


def test_resume_with_changed_setting(tmp_path, seed_file, fake):
    fake()
    out = str(tmp_path / "r")
    assert invoke("generate", "--seeds", str(seed_file), "-o", out, "-n", "2").exit_code == 0
    result = invoke("generate", "--seeds", str(seed_file), "-o", out, "-n", "4",
                    "--tokenizer", "rouge")
    assert result.exit_code == 2
    assert ("this run was started with tokenizer='multilingual', now tokenizer='rouge'"
            in one_line(result.output))
    assert "--force" in result.output
    forced = invoke("generate", "--seeds", str(seed_file), "-o", out, "-n", "4",
                    "--tokenizer", "rouge", "--force")
    assert forced.exit_code == 0


def test_alpaca_style_needs_seed_outputs(tmp_path, fake):
    fake()
    seeds = tmp_path / "plain.txt"
    seeds.write_text("Name three rivers in Asia.\nExplain how vaccines work.\n")
    result = invoke("generate", "--seeds", str(seeds), "-o", str(tmp_path / "r"),
                    "--prompt-style", "alpaca")
    assert result.exit_code == 2
    assert "--prompt-style alpaca shows seed tasks with their output" in one_line(result.output)


def test_alpaca_style_end_to_end(tmp_path, seed_file, fake):
    answer = (
        "Describe how photosynthesis turns light into chemical energy for a plant.\n"
        "11. Input:\n<noinput>\n11. Output:\nPlants capture light with chlorophyll.\n###\n"
        "12. Instruction: Translate the sentence into Spanish.\n12. Input:\nI like tea.\n"
        "12. Output:\nMe gusta el té.\n"
    )
    backends = fake(lambda request, n: Completion(text=answer, finish_reason="stop"))
    out = tmp_path / "r"
    result = invoke("generate", "--seeds", str(seed_file), "-o", str(out), "-n", "2",
                    "--prompt-style", "alpaca", "--seed-examples", "10", "--structured", "off")
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (out / "instructions.jsonl").read_text().splitlines()]
    assert [(r["instruction"], r["input"], r["output"]) for r in records] == [
        ("Describe how photosynthesis turns light into chemical energy for a plant.", "",
         "Plants capture light with chlorophyll."),
        ("Translate the sentence into Spanish.", "I like tea.", "Me gusta el té."),
    ]
    prompt = backends[0].requests[0].prompt
    assert "10. Instruction:" in prompt and prompt.rstrip().endswith("11. Instruction:")
    assert backends[0].requests[0].temperature == 1.0


def test_dedup_command(tmp_path):
    source = tmp_path / "data.jsonl"
    rows = [
        {"instruction": "Explain how rainbows form after a storm.", "n": 1},
        {"instruction": "Explain how rainbows form after the storm.", "n": 2},
        {"instruction": "用一句话介绍长城的历史。", "n": 3},
        {"instruction": "用一句话介绍一下长城的历史。", "n": 4},
        {"instruction": "List three uses of baking soda at home.", "n": 5},
    ]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      encoding="utf-8")
    out = tmp_path / "kept.jsonl"
    result = invoke("dedup", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    kept = [json.loads(line)["n"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert kept == [1, 3, 5]
    assert "kept 3 of 5 records (2 dropped)" in one_line(result.output)
    rouge = invoke("dedup", str(source), "-o", str(out), "--tokenizer", "rouge")
    assert rouge.exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4  # Chinese pair missed


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        ('{"instruction": "a b c"}\nnot json\n', [], "data.jsonl:2:"),
        ('{"text": "a b c"}\n', [], "data.jsonl:1:"),
        ('{"instruction": "a b c"}\n', ["--similarity-threshold", "2"],
         "--similarity-threshold must be between 0 and 1"),
    ],
)
def test_dedup_bad_input(tmp_path, content, flags, message):
    source = tmp_path / "data.jsonl"
    source.write_text(content)
    result = invoke("dedup", str(source), "-o", str(tmp_path / "o.jsonl"), *flags)
    assert result.exit_code == 2
    assert message in one_line(result.output)
    assert "Traceback" not in result.output


def test_dedup_minhash_command(tmp_path):

    rng = random.Random(6)
    en, zh = english_document(rng), chinese_document(rng)
    rows = [{"n": 1, "output": en, "instruction": "same"},
            {"n": 2, "output": english_document(rng), "instruction": "same"},
            {"n": 3, "output": zh, "instruction": "same"},
            {"n": 4, "output": edit_words(en, rng, 1, "x"), "instruction": "same"},
            {"n": 5, "output": edit_words(zh, rng, 2, "x"), "instruction": "same"}]
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      encoding="utf-8")
    out, removed = tmp_path / "kept.jsonl", tmp_path / "removed.jsonl"
    result = invoke("dedup", str(source), "-o", str(out), "--method", "minhash", "--field",
                    "output", "--removed", str(removed), "--id-field", "n")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["n"] for line in out.read_text().splitlines()] == [1, 2, 3]
    gone = [json.loads(line) for line in removed.read_text(encoding="utf-8").splitlines()]
    assert [(r["n"], r["duplicate_of"]) for r in gone] == [(4, 1), (5, 3)]
    assert all(r["estimated_jaccard"] > 0.8 for r in gone)
    text = one_line(result.output)
    assert "kept 3 of 5 records (2 removed as near-duplicates, in 2 clusters)" in text
    assert re.search(r"tokens [\d,]+ before, [\d,]+ after \(\d+\.\d% kept\)", text)
    assert f"-> {removed}" in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "minhash", "--num-perm", "100"],
         "--num-perm 100 is not --bands x --rows = 14 x 8 = 112"),
        (["--method", "minhash", "--ngram", "0"], "--ngram must be at least 1, got 0"),
        (["--method", "minhash", "--bands", "0"], "--bands must be at least 1, got 0"),
        (["--method", "minhash", "--similarity-threshold", "0.5"],
         "--similarity-threshold does not apply to --method minhash"),
        (["--method", "minhash", "--against", "seeds.jsonl"],
         "--against does not apply to --method minhash"),
        (["--removed", "r.jsonl", "--seed", "3"],
         "--removed, --seed do not apply to --method rouge"),
        (["--method", "simhash"], "Invalid value for '--method'"),
    ],
)
def test_dedup_minhash_bad_flags(tmp_path, flags, message):
    source = tmp_path / "data.jsonl"
    source.write_text('{"instruction": "a b c"}\n')
    result = invoke("dedup", str(source), "-o", str(tmp_path / "o.jsonl"), *flags)
    assert result.exit_code == 2
    assert message in one_line(result.output)
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def choices(command: str, option: str) -> list[str]:
    """The values ``selfinstruct COMMAND --OPTION`` accepts, as its refusal lists them."""
    result = invoke(command, "in.jsonl", f"--{option.replace('_', '-')}", "no-such-value")
    assert result.exit_code == 2
    flat = re.sub(r"[\s│]+", " ", result.output)
    listed = re.search(r"is not one of (.*?)\.(?: |$)", flat)
    assert listed, flat
    return re.findall(r"'([^']*)'", listed.group(1))


@pytest.mark.parametrize(("command", "option", "literal"), [
    ("generate", "prompt_style", "selfinstruct.runs.templates.PromptStyle"),
    ("generate", "language", "selfinstruct.language.LanguageChoice"),
    ("generate", "api", "selfinstruct.llm.base.Api"),
    ("generate", "tokenizer", "selfinstruct.similarity.TokenizerName"),
    ("generate", "structured", "selfinstruct.llm.base.StructuredMode"),
    ("dedup", "method", "selfinstruct.similarity.DedupMethod"),
    ("export", "data", "selfinstruct.stages.export.ExportData"),
    ("export", "think", "selfinstruct.stages.export.ThinkStyle"),
    ("export", "format", "selfinstruct.stages.export.ExportFormat"),
    ("distill", "parse", "selfinstruct.text.row_answers.ParseMode"),
    ("distill", "thinking_style", "selfinstruct.llm.thinking.ThinkingStyle"),
    ("reason", "executor", "selfinstruct.llm.settings.ExecutorName"),
])
def test_cli_choices_are_exactly_the_settings_literals(command, option, literal):
    """The CLI offers exactly the values the settings take (typer reads the literals)."""
    import importlib
    from typing import get_args

    module, _, name = literal.rpartition(".")
    assert choices(command, option) == list(
        get_args(getattr(importlib.import_module(module), name)))


def test_backend_choices_are_auto_and_the_backend_kinds():
    from typing import get_args

    from selfinstruct.llm import BackendKind

    assert choices("run", "backend") == ["auto", *get_args(BackendKind)]
