"""A small run made end to end through the CLI by a scripted model: plausible English
instructions (so the verb chart has verbs), instances, and a judge whose verdicts come
in every shape, some of them unreadable. Shared by the review and report tests."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm import use_backend
from selfinstruct.llm.base import Completion, Request
from selfinstruct.llm.fake import FakeBackend, completion
from tests.helpers import ENGLISH_SEEDS

VERBS = ["Write", "Give", "Explain", "List", "Describe", "Create", "Suggest", "Summarize",
         "Generate", "Name", "Design", "Rewrite"]
OBJECTS = ["a poem", "three tips", "a short story", "five examples", "a recipe", "a plan",
           "two reasons", "a slogan", "a list of questions", "an email", "a summary"]
TOPICS = ["about the ocean at night", "for saving money on groceries", "about a lost robot",
          "for learning a new language", "for a rainy weekend", "about volcanoes",
          "for a small bakery", "about the history of tea", "for a job interview",
          "about friendship between neighbours", "for planting tomatoes", "about chess"]


def instruction(rng: random.Random) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TOPICS)}."


def generate_answer(number: int) -> str:
    rng = random.Random(number)
    tasks = [instruction(rng) for _ in range(7)]
    tasks += ["Draw a picture of a cat.", "Hi."] if number % 3 == 0 else []
    return tasks[0] + "\n" + "\n".join(f"Task {10 + i}: {t}" for i, t in enumerate(tasks[1:]))


def judge_answer(prompt: str) -> str:
    """A verdict that depends only on the example, in one of four shapes."""
    example = prompt.split("Instruction:", 1)[1].split("Answer with one JSON object", 1)[0]
    key = zlib.crc32(example.encode())
    overall = 1 + key % 5
    if key % 13 == 0:
        return "I cannot grade this one."
    if key % 4 == 0:
        return f"Accuracy: {overall}\nFormat: 4\nOverall: {overall}\nReason: Prose verdict."
    verdict = {"accuracy": overall, "completeness": min(5, overall + 1), "relevance": 5,
               "harmlessness": 5, "format": 4, "overall": overall, "reason": f"Worth {overall}."}
    text = json.dumps(verdict)
    return f"```json\n{text}\n```" if key % 4 == 1 else text


def answer(request: Request, number: int) -> Completion:
    prompt = request.prompt
    if "Answer with one JSON object" in prompt:
        return completion(judge_answer(prompt))
    if prompt.endswith("Is it classification?"):
        return completion("No")
    # the text prompts, or their JSON variants (--structured auto)
    if "Class labels:" in prompt or prompt.startswith("You are writing examples for classif"):
        return completion("Class labels: Yes, No\nClass label: Yes\nInput: a\n")
    if "Example 1" in prompt or prompt.startswith("You are writing worked examples"):
        rng = random.Random(prompt)
        words = " ".join(rng.choice(TOPICS) for _ in range(rng.randrange(1, 12)))
        return completion(f"Example 1\nInput: {rng.choice(TOPICS)}\nOutput: {words}\n"
                          f"Example 2\nOutput: {words.upper()}\nExample 3\nOutput:\n")
    return completion(generate_answer(number))


def seeds(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({
        "id": f"s{i}", "name": f"t{i}", "instruction": text,
        "instances": [{"input": "", "output": f"answer {i}"}], "is_classification": False,
    }) + "\n" for i, text in enumerate(ENGLISH_SEEDS)), encoding="utf-8")
    return path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def scored_run(tmp_path: Path, n: int = 24) -> Path:
    """generate → classify → instances → export → score, all with the scripted model."""
    out = tmp_path / "run"
    with use_backend(FakeBackend(answer)):
        invoke("run", "--seeds", str(seeds(tmp_path)), "-o", str(out), "-n", str(n),
               "--per-task", "2", "--seed", "1")
        invoke("score", str(out))
    return out
