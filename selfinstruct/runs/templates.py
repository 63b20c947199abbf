"""Prompt templates: find them (bundled, or a user's ``--prompt-dir``) and render them.

Templates are plain text files with ``{placeholder}`` fields so people can read and tune
them without touching code. A template is checked when it is loaded: a placeholder the
style does not fill is an error naming file and line, found before any request is sent.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.runs.bundled import data_dir
from selfinstruct.runs.seeds import Instance, SeedTask

PromptStyle = Literal["self-instruct", "alpaca"]
TemplateName = Literal[
    "self-instruct", "alpaca", "classify", "input-first", "output-first", "judge",
    "dialogue-script", "dialogue-outline", "dialogue-user", "dialogue-judge",
]

_FILES: dict[TemplateName, str] = {
    "self-instruct": "self_instruct.txt",
    "alpaca": "alpaca.txt",
    "classify": "classify.txt",
    "input-first": "input_first.txt",
    "output-first": "output_first.txt",
    "judge": "judge.txt",
    "dialogue-script": "dialogue_script.txt",
    "dialogue-outline": "dialogue_outline.txt",
    "dialogue-user": "dialogue_user.txt",
    "dialogue-judge": "dialogue_judge.txt",
}
_PLACEHOLDERS: dict[TemplateName, frozenset[str]] = {
    "self-instruct": frozenset({"tasks", "next"}),
    "alpaca": frozenset({"tasks", "next", "count"}),
    "classify": frozenset({"instruction"}),
    "input-first": frozenset({"instruction", "count"}),
    "output-first": frozenset({"instruction", "count"}),
    "judge": frozenset({"dimensions", "low", "high", "instruction", "input", "output",
                        "answer_format", "context"}),
    "dialogue-script": frozenset({"topic", "persona", "system", "turns", "outline"}),
    "dialogue-outline": frozenset({"topic", "persona", "system", "turns"}),
    "dialogue-user": frozenset({"topic", "persona", "turns", "stop"}),
    "dialogue-judge": frozenset({"dimensions", "low", "high", "transcript", "answer_format"}),
}

#: How one example is written in each language; the parser reads the same shapes back.
_TASK_LINE = {"en": "Task {n}: {instruction}", "zh": "任务{n}：{instruction}"}
_ALPACA_BLOCK = {
    "en": "{n}. Instruction: {instruction}\n{n}. Input:\n{input}\n{n}. Output:\n{output}",
    "zh": "{n}. 指令：{instruction}\n{n}. 输入：\n{input}\n{n}. 输出：\n{output}",
}
_NO_INPUT = {"en": "<noinput>", "zh": "<无输入>"}


@dataclass(frozen=True)
class PromptTemplate:
    """A validated template for one prompt and language."""

    name: TemplateName
    language: Language
    text: str
    source: Path

    def render(self, **values: object) -> str:
        """Fill the placeholders (all of them are known to be in ``values``)."""
        return self.text.format(**values)


def json_variant(file_name: str) -> str:
    """The file of a template's structured-output variant: ``classify.txt`` ->
    ``classify_json.txt``."""
    stem, dot, suffix = file_name.rpartition(".")
    return f"{stem}_json{dot}{suffix}"


def load_template(
    name: TemplateName,
    language: Language,
    prompt_dir: Path | None = None,
    *,
    structured: bool = False,
) -> PromptTemplate:
    """The user's template from ``prompt_dir`` if it has one, else the bundled one.

    With ``structured`` the JSON variant (``classify_json.txt``) is read: its examples
    are written in the JSON the schema asks for, which small models copy far better
    than a schema they never saw. A ``prompt_dir`` with its own text template but no
    JSON variant keeps that text template, since a user's wording should not silently
    give way to ours; the schema still shapes the answer.
    """
    files = [json_variant(_FILES[name]), _FILES[name]] if structured else [_FILES[name]]
    path = data_dir("prompts") / language / files[0]
    if prompt_dir is not None:
        if not prompt_dir.is_dir():
            raise UserError(f"{prompt_dir}: --prompt-dir is not a directory")
        own = [prompt_dir / language / file for file in files]
        path = next((candidate for candidate in own if candidate.is_file()), path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: the template is not UTF-8 text") from None
    check_placeholders(text, _PLACEHOLDERS[name], path)
    return PromptTemplate(name, language, text, path)


def run_template(config: Mapping[str, Any], name: TemplateName, *,
                 structured: bool = False) -> PromptTemplate:
    """A prompt template in a run's language, honouring the run's ``--prompt-dir``: what
    the stages after ``generate`` ask with (``config`` is the run's ``config.json``)."""
    prompt_dir = config.get("prompt_dir")
    return load_template(name, config["language"], Path(prompt_dir) if prompt_dir else None,
                         structured=structured)


def check_placeholders(text: str, allowed: frozenset[str], source: Path) -> None:
    """Reject unknown or malformed ``{fields}``, naming the line they are on."""
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = list(string.Formatter().parse(line))
        except ValueError as err:
            raise UserError(
                f"{source}:{number}: bad placeholder syntax ({err}); write {{{{ and }}}} "
                "for literal braces"
            ) from None
        for _, field, _, _ in parsed:
            if field is not None and field not in allowed:
                known = ", ".join(f"{{{name}}}" for name in sorted(allowed))
                raise UserError(
                    f"{source}:{number}: unknown placeholder {{{field}}} (this template "
                    f"knows {known})"
                )


def render_self_instruct(template: PromptTemplate, instructions: Sequence[str]) -> str:
    """A numbered task list the model continues from task ``len(instructions) + 1``."""
    line = _TASK_LINE[template.language]
    tasks = "\n".join(
        line.format(n=n, instruction=_one_line(text)) for n, text in enumerate(instructions, 1)
    )
    return template.render(tasks=tasks, next=len(instructions) + 1)


def render_alpaca(template: PromptTemplate, examples: Sequence[SeedTask], count: int) -> str:
    """Seed tasks with an input and output each, then the number of the first new task."""
    block = _ALPACA_BLOCK[template.language]
    blocks = []
    for n, task in enumerate(examples, 1):
        instance = task.instances[0] if task.instances else Instance("", "")
        fields = {
            "instruction": _one_line(task.instruction),
            "input": instance.input or _NO_INPUT[template.language],
            "output": instance.output,
        }
        blocks.append("###\n" + block.format(n=n, **fields))
    return template.render(tasks="\n".join(blocks), next=len(examples) + 1, count=count)


def _one_line(text: str) -> str:
    """Keep one task per line so the list stays parseable."""
    return " ".join(text.split())
