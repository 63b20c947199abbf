"""Bad input: one clear line naming the file (and line), exit code 2, no traceback, and
not a single request sent or byte of the run directory changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import (
    assert_one_clear_error,
    backend_flags,
    generate_args,
    invoke,
    run_cli,
    run_files,
)

from .faultserver import FaultServer

GOOD = b'{"id": "a", "instruction": "Name three rivers in Asia."}\n'

SEED_FILES = {
    "not UTF-8": ("seeds.jsonl", GOOD + b'{"instruction": "caf\xe9 au lait"}\n',
                  "seeds.jsonl:2: not valid UTF-8"),
    "UTF-16": ("seeds.jsonl", '{"instruction": "x"}\n'.encode("utf-16"),
               "seeds.jsonl:1: not valid UTF-8"),
    "not JSON": ("seeds.jsonl", GOOD + b'{"instruction": \n', "seeds.jsonl:2: not valid JSON"),
    "damaged first line": ("seeds.jsonl", b'instruction: Name a river.\n' + GOOD,
                           "seeds.jsonl:1: not valid JSON"),
    "array of strings": ("seeds.json", b'[\n  "Name a river.",\n  "Name a lake."\n]\n',
                         "seeds.json:2: expected a JSON object"),
    "line of the wrong type": ("seeds.jsonl", GOOD + b"[1, 2]\n",
                               "seeds.jsonl:2: expected a JSON object"),
    "missing instruction": ("seeds.jsonl", GOOD + b'{"name": "rivers"}\n',
                            "seeds.jsonl:2: missing 'instruction'"),
    "instruction not a string": ("seeds.jsonl", b'{"instruction": 5}\n',
                                 "seeds.jsonl:1: 'instruction' must be a string"),
    "empty instruction": ("seeds.jsonl", GOOD + b'{"instruction": "   "}\n',
                          "seeds.jsonl:2: empty 'instruction'"),
    "instances of the wrong shape": ("seeds.jsonl",
                                     GOOD + b'{"instruction": "Name a lake.", "instances": 3}\n',
                                     "seeds.jsonl:2: 'instances' must be a list"),
    "duplicate ids": ("seeds.jsonl", GOOD + GOOD.replace(b"three", b"four"),
                      "seeds.jsonl:2: duplicate id 'a' (first used on line 1)"),
    "empty file": ("seeds.jsonl", b"", "seeds.jsonl: the seed file is empty"),
    "only blank lines": ("seeds.txt", b"  \n\n\t\n", "seeds.txt: the seed file is empty"),
    "huge JSON line": ("seeds.jsonl",
                       GOOD + json.dumps({"instruction": "x" * 2_000_000}).encode() + b"\n",
                       "seeds.jsonl:2: line is longer than 1,000,000 bytes"),
    "huge text line": ("seeds.txt", b"Name three rivers in Asia.\n" + b"y" * 2_000_000 + b"\n",
                       "seeds.txt:2: line is longer than 1,000,000 bytes"),
}


@pytest.mark.parametrize("case", list(SEED_FILES))
def test_bad_seed_file(server: FaultServer, tmp_path, case):
    name, content, message = SEED_FILES[case]
    seeds = tmp_path / name
    seeds.write_bytes(content)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 3))
    assert result.exit_code == 2, result.output
    assert_one_clear_error(result.output, f"{tmp_path}/{message}")
    assert server.count() == 0
    assert not out.exists()


def test_the_seed_file_over_a_real_process(server: FaultServer, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(GOOD + b'{"instruction": \n')
    result = run_cli(*generate_args(server, seeds, tmp_path / "run", 3))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"Error: {seeds}:2: not valid JSON (Expecting value at column 17); expected JSON "
        "Lines (one object per line) or a JSON array of objects"
    ]
    assert result.stdout == ""


def prompt_dir_with(tmp_path: Path, template: str, text: str) -> Path:
    folder = tmp_path / "prompts"
    (folder / "en").mkdir(parents=True)
    (folder / "en" / template).write_text(text)
    return folder


def test_template_with_an_unknown_placeholder(server: FaultServer, seeds, tmp_path):
    folder = prompt_dir_with(tmp_path, "self_instruct.txt", "Tasks:\n{tasks}\nTask {nxt}:\n")
    result = invoke(*generate_args(server, seeds, tmp_path / "run", 3),
                    "--prompt-dir", str(folder))
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"{folder}/en/self_instruct.txt:3: unknown placeholder "
                           "{nxt} (this template knows {next}, {tasks})")
    assert server.count() == 0


def test_a_later_stage_template_with_an_unknown_placeholder(server: FaultServer, seeds,
                                                            tmp_path):
    folder = prompt_dir_with(tmp_path, "classify.txt", "Task: {instruction}\n{label}?\n")
    out = tmp_path / "run"
    assert invoke(*generate_args(server, seeds, out, 3), "--prompt-dir", str(folder)).exit_code == 0
    server.clear()
    before = run_files(out)
    result = invoke("classify", str(out), *backend_flags(server))
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"{folder}/en/classify.txt:2: unknown placeholder "
                           "{label}")
    assert server.count() == 0
    assert run_files(out) == before


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("generate", ["--min-length", "20", "--max-length", "10"],
         "--min-length must not be greater than --max-length"),
        ("generate", ["--similarity-threshold", "1.5"],
         "--similarity-threshold must be between 0 and 1"),
        ("generate", ["--max-retries", "-1"], "--max-retries must not be negative"),
        ("generate", ["--timeout", "0"], "--timeout must be positive"),
        ("classify", ["--max-retries", "-1"], "--max-retries must not be negative"),
        ("classify", ["--timeout", "0"], "--timeout must be positive"),
        ("classify", ["--max-failures", "0"], "--max-failures must be at least 1"),
        ("instances", ["--per-task", "0"], "--per-task must be at least 1"),
    ],
)
def test_conflicting_or_impossible_flags(server: FaultServer, seeds, tmp_path, command, flags,
                                         message):
    out = tmp_path / "run"
    if command == "generate":
        args = [*generate_args(server, seeds, out, 3), *flags]
    else:
        assert invoke(*generate_args(server, seeds, out, 3)).exit_code == 0
        server.clear()
        args = [command, str(out), *backend_flags(server), *flags]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert_one_clear_error(result.output, message)
    assert server.count() == 0


def test_base_url_without_a_model(server: FaultServer, seeds, tmp_path):
    result = invoke("generate", "--seeds", str(seeds), "-o", str(tmp_path / "run"),
                    "--base-url", server.base_url)
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "--base-url needs --model NAME")


@pytest.mark.parametrize(
    ("flags", "setting"),
    [
        (["--similarity-threshold", "0.5"],
         "similarity_threshold=0.7, now similarity_threshold=0.5"),
        (["--tokenizer", "rouge"], "tokenizer='multilingual', now tokenizer='rouge'"),
        (["--prompt-style", "alpaca"], "prompt_style='self-instruct', now prompt_style='alpaca'"),
        (["--max-length", "40"], "max_length=150, now max_length=40"),
        (["--blacklist", "essay"], "blacklist="),
        (["--language", "zh"], "language='en', now language='zh'"),
        ("edit the seeds", "seeds_sha256="),
    ],
)
def test_resume_with_settings_that_would_corrupt_the_pool(server: FaultServer, seeds, tmp_path,
                                                          flags, setting):
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 3)
    assert invoke(*args).exit_code == 0
    server.clear()
    before = run_files(out)
    if flags == "edit the seeds":
        seeds.write_text(seeds.read_text() + '{"instruction": "Name a mountain in Peru."}\n')
        flags = []
    args[args.index("3")] = "6"
    result = invoke(*args, *flags)
    assert result.exit_code == 2, result.output
    error = assert_one_clear_error(result.output, f"{out}: this run was started with {setting}",
                                   "--force")
    assert "resuming would mix two settings in one pool" in error
    assert server.count() == 0
    assert run_files(out) == before
    forced = invoke(*args, *flags, "--force")
    assert forced.exit_code == 0, forced.output


def test_a_damaged_run_file_names_its_line(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 4)
    assert invoke(*args).exit_code == 0
    server.clear()
    lines = (out / "instructions.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"  # a damaged line in the middle, not a torn tail
    (out / "instructions.jsonl").write_text("".join(lines))
    before = run_files(out)
    result = invoke(*args)
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"{out}/instructions.jsonl:2: damaged run file")
    assert run_files(out) == before
    assert server.count() == 0


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "config.json: not valid JSON"),
    ('{"language": "fr"}', "config.json: no valid 'language'"),
])
def test_a_damaged_config(server: FaultServer, seeds, tmp_path, content, message):
    out = tmp_path / "run"
    assert invoke(*generate_args(server, seeds, out, 3)).exit_code == 0
    server.clear()
    (out / "config.json").write_text(content)
    result = invoke("classify", str(out), *backend_flags(server))
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"{out}/{message}")
    assert server.count() == 0
