"""Helpers that more than one test module uses: scripted model answers, seed tasks,
generated texts and documents, small run directories, and ways to run the CLI against
the reliability suite's fault server.

They live here, in one plain module, rather than in the test module that first needed
them or in a ``conftest.py``: a test module importing another test module's helpers ties
the two together (importing one imports the other whole, tests and all), and
``conftest.py`` is for pytest fixtures, which pytest finds by name, not imported.
Fixtures stay in the conftest files and may use what is here; every test module imports
from ``tests.helpers``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from selfinstruct.cli import commands as cli
from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.similarity.index import rouge_l
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.stages.executor import LocalExecutor, use_executor
from selfinstruct.stages.generate import GenerateLoop, GenerateSettings, open_run, resolve_config
from tests.reliability.faultserver import MODEL, FaultServer

ROOT = Path(__file__).resolve().parents[1]
#: Stand-ins for optional heavy packages (a ``vllm`` that records what it is asked).
STAND_INS = ROOT / "tests" / "stand_ins"

# ---------------------------------------------------------------------------
# Seed tasks and davinci-style answers
# ---------------------------------------------------------------------------

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


def numbered_answer(first: int, texts: list[str], finish_reason: str = "stop") -> Completion:
    """A davinci-style continuation: the first task without its number, then numbered ones."""
    lines = [texts[0]] + [f"Task {first + i}: {text}" for i, text in enumerate(texts[1:], 1)]
    return Completion(
        text="\n".join(lines), finish_reason=finish_reason, usage=Usage(100, 50), model="fake-model"
    )


# ---------------------------------------------------------------------------
# The bootstrap loop (generate) with a fake backend
# ---------------------------------------------------------------------------

VERBS = ["Explain", "Describe", "Compare", "Summarize", "Evaluate", "Outline", "Discuss"]


def distinct_texts(count: int, seed: int = 0) -> list[str]:
    """Instructions with almost no word overlap, so the ROUGE-L filter keeps them all."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}x{rng.randrange(10**6)}" for i in range(50 * count + 50)]
    rng.shuffle(vocabulary)
    return [
        f"{VERBS[i % len(VERBS)]} " + " ".join(vocabulary[8 * i : 8 * i + 8]) for i in range(count)
    ]


def open_bootstrap(
    out: Path, seeds: Path, backend: Any, n: int, force: bool = False, **options: Any
) -> GenerateLoop:
    flags = BackendSettings(backend="openai", base_url=("http://fake/v1",), model="fake",
                         concurrency=options.pop("concurrency", 1),
                         max_failures=options.pop("max_consecutive_failures", None))
    config, seed_tasks, _ = resolve_config(
        out, GenerateSettings(num_instructions=n, seeds=seeds, **options), flags)
    return open_run(config, seed_tasks, backend, force=force)


def run(bootstrap: GenerateLoop):
    return asyncio.run(bootstrap.run(asyncio.Event()))


async def _no_pause(seconds: float) -> None:
    """A backoff that does not wait."""


def no_backoff():
    """Stages inside the block back off after failures without waiting (the executor
    seam, instead of patching the backoff's limit)."""
    return use_executor(LocalExecutor(pause=_no_pause))


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stream_script(per_answer: int = 5, seed: int = 0):
    """Answer every request with the next ``per_answer`` distinct tasks."""
    texts = iter(distinct_texts(500, seed))

    def script(request: Request, number: int) -> Completion:
        return numbered_answer(9, [next(texts) for _ in range(per_answer)])

    return script


# ---------------------------------------------------------------------------
# classify → instances → export with a fake backend
# ---------------------------------------------------------------------------

CLASSIFICATION_WORD = "sentiment"


def answer(request: Request, number: int) -> Completion | BackendError:
    """Plays every stage: the pool, the yes/no question, and the two instance prompts."""
    prompt = request.prompt
    task = [line for line in prompt.splitlines() if line.startswith("Task:")][-1:]
    if prompt.endswith("Is it classification?"):
        task = task[0]
        return Completion(text="Yes" if CLASSIFICATION_WORD in task else "No, it is not.")
    if prompt.startswith("You are writing examples for classification tasks"):
        return Completion(text=(
            "Class labels: Positive, Negative\n"
            "Class label: Positive\nInput: I loved every minute of it.\n"
            "Class label: Negative\nInput: The service was slow and rude.\n"
            "Class label: Maybe\nInput: Not sure about this one.\n"
        ))
    if prompt.startswith("You are writing worked examples"):
        return Completion(text=(
            "Example 1\nInput: 2, 3\nOutput: 5\n"
            "Example 2\nInput: 10, 4\nOutput: 14\n"
            "Example 3\nInput: 10, 4\nOutput: 14\n"
            "Example 4\nInput: 1, 1\nOutput:\n"
        ))
    texts = distinct_texts(3, seed=number)
    texts[0] = f"Judge the {CLASSIFICATION_WORD} of a review {texts[0]}"
    return Completion(text=texts[0] + "\n" + "\n".join(
        f"Task {10 + i}: {text}" for i, text in enumerate(texts[1:])))


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------
# The OpenAI-compatible backend
# ---------------------------------------------------------------------------

def chat_body(content: str | None, **message: object) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "served-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


# ---------------------------------------------------------------------------
# Documents for MinHash and dedup
# ---------------------------------------------------------------------------

WORDS = [f"{stem}{suffix}" for stem in ("river", "stone", "light", "paper", "cloud", "table",
                                         "music", "garden", "window", "letter")
         for suffix in ("", "s", "ed", "ing", "er", "ly", "ness", "ful")]
HAN = [chr(0x4E00 + 37 * i) for i in range(400)]


def english_document(rng: random.Random, words: int = 180) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(words)) + "."


def chinese_document(rng: random.Random, characters: int = 300) -> str:
    text = "".join(rng.choice(HAN) for _ in range(characters))
    return "，".join(text[i:i + 15] for i in range(0, len(text), 15)) + "。"


def edit_words(text: str, rng: random.Random, edits: int, fresh: str) -> str:
    """Replace ``edits`` tokens at random positions with ``fresh`` + a number."""
    tokens = tokenize(text)
    for position in rng.sample(range(len(tokens)), edits):
        tokens[position] = f"{fresh}{position}"
    return " ".join(tokens)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def planted_corpus(make, count: int = 40, seed: int = 5) -> tuple[list[dict[str, Any]], set[str]]:
    """``count`` distinct documents, then a near-copy (2 tokens changed) of every 5th one,
    interleaved later in the file; returns the records and the ids of the copies."""
    rng = random.Random(seed)
    records = [{"id": f"d{i}", "text": make(rng), "source": "base"} for i in range(count)]
    copies = [{"id": f"c{i}", "text": edit_words(records[i]["text"], rng, 2, "edit"),
               "source": "copy"} for i in range(0, count, 5)]
    for offset, copy in enumerate(copies):
        records.insert(10 + 4 * offset + offset, copy)
    return records, {copy["id"] for copy in copies}


# ---------------------------------------------------------------------------
# A finished run directory for export
# ---------------------------------------------------------------------------

def make_run(tmp_path, *, instances=True):
    run = tmp_path / "my run"
    run.mkdir()
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"instruction": "Name a fruit.", "output": "Apple"}) + "\n")
    (run / "config.json").write_text(json.dumps({"seeds": str(seeds), "language": "en"}))
    (run / "instructions.jsonl").write_text(
        json.dumps({"id": "gen_000000", "instruction": "Add the numbers."}) + "\n"
    )
    if instances:
        (run / "instances.jsonl").write_text(
            json.dumps({"id": "gen_000000", "instruction": "Add the numbers.",
                        "instances": [{"input": "2 and 3", "output": "5"},
                                      {"input": "1 and 1", "output": "2"}]}) + "\n"
            + json.dumps({"id": "gen_000001", "instruction": "Nothing", "instances": []}) + "\n"
        )
    return run


# ---------------------------------------------------------------------------
# The reliability suite: the CLI against the fault server
#
# The CLI runs either in-process (``invoke``, fast, for everything a signal is not needed
# for) or as a real ``python -m selfinstruct`` subprocess (``start`` / ``run_cli``) that
# can be killed.
# ---------------------------------------------------------------------------

#: A key that must never show up anywhere a run writes or prints.
PLANTED_KEY = "sk-planted-reliability-7c1d9e3f5a"


def backend_flags(server: FaultServer, *, retries: int = 0, timeout: float = 1.0,
                  concurrency: int = 1, max_failures: int = 20) -> list[str]:
    """Flags that point a command at the fault server, with small timings."""
    return ["--base-url", server.base_url, "--model", MODEL, "--timeout", str(timeout),
            "--max-retries", str(retries), "--concurrency", str(concurrency),
            "--max-failures", str(max_failures)]


def generate_args(server: FaultServer, seeds: Path, out: Path, n: int, **flags: Any) -> list[str]:
    """A ``generate`` command line against the fault server."""
    return ["generate", "--seeds", str(seeds), "-o", str(out), "-n", str(n), "--seed", "1",
            *backend_flags(server, **flags)]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in this process (no OPENAI_API_KEY unless ``env`` gives one)."""
    environ = {"OPENAI_API_KEY": None, **(env or {})}
    return CliRunner().invoke(cli.app, list(args), env=environ)  # type: ignore[arg-type]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: no key unless given, wide terminal."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update({"COLUMNS": "400", "PYTHONPATH": str(ROOT)}, **(extra or {}))
    return env


def start(*args: str, env: dict[str, str] | None = None,
          prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start ``python -m selfinstruct ARGS`` as a real process."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "selfinstruct", *args], cwd=ROOT, env=cli_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m selfinstruct ARGS`` to the end."""
    process = start(*args, env=env, prefix=prefix)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def flat(text: str) -> str:
    """Output with line wrapping undone."""
    return " ".join(text.split())


def error_lines(output: str) -> list[str]:
    """The lines of ``output`` that report an error."""
    return [line for line in output.splitlines() if line.startswith("Error:")]


def assert_one_clear_error(output: str, *expected: str) -> str:
    """Exactly one ``Error:`` line, containing every ``expected`` text, and no traceback."""
    assert "Traceback" not in output, output
    errors = error_lines(output)
    assert len(errors) == 1, output
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a run file, which must be complete JSON objects, newline-terminated."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in a torn line"
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def assert_pool_is_novel(out: Path, threshold: float = 0.7) -> None:
    """Every kept instruction is at most ``threshold`` ROUGE-L from the seeds and every
    instruction kept before it, ids are sequential, and no instruction is repeated."""
    kept = read_records(out / "instructions.jsonl")
    assert [record["id"] for record in kept] == [f"gen_{i:06d}" for i in range(len(kept))]
    pool = [tokenize(text) for text in ENGLISH_SEEDS]
    for record in kept:
        tokens = tokenize(record["instruction"])
        score = max(rouge_l(tokens, other) for other in pool)
        assert score <= threshold, (record, score)
        pool.append(tokens)


def run_files(out: Path) -> dict[str, bytes]:
    """The bytes of every file under a run directory, by relative path."""
    return {str(path.relative_to(out)): path.read_bytes()
            for path in sorted(out.rglob("*")) if path.is_file()}
