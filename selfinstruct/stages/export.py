"""Export a run as training data that LLaMA-Factory, axolotl or TRL load without edits.

Three formats: Alpaca JSON (``instruction`` / ``input`` / ``output``), ShareGPT JSON
(``conversations`` with ``from: human|gpt``) and OpenAI ``messages`` JSONL. Beside the
file, a LLaMA-Factory ``dataset_info.json`` entry names the file and maps its columns,
so ``dataset: NAME`` in a training config is all a user writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.runs.layout import (
    INSTANCES_FILE,
    INSTRUCTIONS_FILE,
    REASONING_FILE,
    load_run_config,
    update_stats,
)
from selfinstruct.runs.seeds import load_seeds
from selfinstruct.runs.store import read_json, read_jsonl, write_atomic, write_json_atomic
from selfinstruct.stages.curate import Curated, curate_run
from selfinstruct.stages.reason import user_message

ExportFormat = Literal["alpaca", "sharegpt", "messages"]
ExportData = Literal["auto", "instances", "reasoning"]
ThinkStyle = Literal["inline", "field"]

FILE_NAMES: dict[ExportFormat, str] = {
    "alpaca": "alpaca.json",
    "sharegpt": "sharegpt.json",
    "messages": "messages.jsonl",
}


@dataclass(frozen=True)
class TrainingExample:
    """One supervised example: the user's turn (instruction + input) and the answer,
    with the reasoning that led to it when the data came from a thinking model."""

    instruction: str
    input: str
    output: str
    reasoning: str | None = None
    #: The example's id in ``scores.jsonl`` / ``review.jsonl``; empty for the seed tasks'.
    key: str = ""

    @property
    def prompt(self) -> str:
        """The user message for chat formats: the instruction, then the input if any."""
        return user_message(self.instruction, self.input)

    def response(self, think: ThinkStyle) -> str:
        """The assistant turn; ``inline`` puts the trace in front, as LLaMA-Factory expects."""
        if self.reasoning and think == "inline":
            return f"<think>\n{self.reasoning}\n</think>\n\n{self.output}"
        return self.output


@dataclass(frozen=True)
class ExportResult:
    """Where the data went and how much of it there is."""

    path: Path
    count: int
    dataset_info: Path
    dataset_name: str
    #: What ``--min-score`` and the review verdicts took out or changed.
    curated: Curated | None = None


def run_examples(
    run_dir: Path, *, include_seeds: bool, data: ExportData = "auto"
) -> list[TrainingExample]:
    """Every usable example of a run directory: its instances (and seeds, when asked), or
    its reasoning traces (``auto`` picks reasoning when ``reasoning.jsonl`` exists)."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if data == "reasoning" or (data == "auto" and (run_dir / REASONING_FILE).exists()):
        if include_seeds:
            raise UserError("--include-seeds adds examples without reasoning; it does not "
                            "mix with reasoning data (use --data instances)")
        examples = [
            TrainingExample(r["instruction"], r["input"], r["answer"], r["reasoning"],
                            trace_key(r["id"], r["sample"]))
            for r in read_jsonl(run_dir / REASONING_FILE)
        ]
        if not examples:
            raise UserError(f"{run_dir}: no reasoning traces to export; run selfinstruct reason")
        return examples
    config = load_run_config(run_dir)
    examples = list(_generated_examples(run_dir))
    if include_seeds:
        examples = list(_seed_examples(Path(config["seeds"]))) + examples
    if not examples:
        raise UserError(
            f"{run_dir}: nothing to export yet; run selfinstruct instances {run_dir} first"
        )
    return examples


def _generated_examples(run_dir: Path) -> Iterator[TrainingExample]:
    """From ``instances.jsonl``; Alpaca-style pools carry their output in the pool itself."""
    if (run_dir / INSTANCES_FILE).exists():
        for task in read_jsonl(run_dir / INSTANCES_FILE):
            for number, instance in enumerate(task["instances"]):
                yield _example(task["instruction"], instance["input"], instance["output"],
                               instance_key(task["id"], number))
        return
    for task in read_jsonl(run_dir / INSTRUCTIONS_FILE):
        if task.get("output"):
            yield _example(task["instruction"], task.get("input", ""), task["output"],
                           str(task["id"]))


def _seed_examples(seeds: Path) -> Iterator[TrainingExample]:
    for seed in load_seeds(seeds):
        for instance in seed.instances:
            if instance.output:
                yield _example(seed.instruction, instance.input, instance.output)


def _example(instruction: str, input_text: str, output: str, key: str = "") -> TrainingExample:
    return TrainingExample(instruction.strip(), input_text.strip(), output.strip(), key=key)


def instance_key(task_id: str, number: int) -> str:
    """The id of a task's ``number``-th instance (as ``reason`` names its prompts too)."""
    return f"{task_id}#{number}"


def trace_key(prompt_id: str, sample: int) -> str:
    """The id of one reasoning trace: its prompt's id and its sample number."""
    return f"{prompt_id}/{sample}"


def to_records(
    examples: list[TrainingExample], fmt: ExportFormat, think: ThinkStyle = "inline"
) -> list[dict[str, Any]]:
    """The records of ``fmt`` (pure, so each format's shape is tested directly).

    With ``think="field"`` the trace goes in its own key: ``reasoning_content`` on the
    assistant turn (messages, sharegpt) or ``reasoning`` beside ``output`` (alpaca).
    """
    return [_record(example, fmt, think) for example in examples]


def _record(example: TrainingExample, fmt: ExportFormat, think: ThinkStyle) -> dict[str, Any]:
    answer = example.response(think)
    separate = bool(example.reasoning) and think == "field"
    if fmt == "alpaca":
        record = {"instruction": example.instruction, "input": example.input, "output": answer}
        if separate:
            record["reasoning"] = example.reasoning or ""
        return record
    if fmt == "sharegpt":
        user = {"from": "human", "value": example.prompt}
        assistant = {"from": "gpt", "value": answer}
        key = "conversations"
    else:
        user = {"role": "user", "content": example.prompt}
        assistant = {"role": "assistant", "content": answer}
        key = "messages"
    if separate:
        assistant["reasoning_content"] = example.reasoning or ""
    return {key: [user, assistant]}


def dataset_info_entry(fmt: ExportFormat, file_name: str) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for a file of ``fmt``."""
    if fmt == "alpaca":
        return {
            "file_name": file_name,
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
    if fmt == "sharegpt":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt"},
        }
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                 "assistant_tag": "assistant", "system_tag": "system"},
    }


def export_run(
    run_dir: Path,
    fmt: ExportFormat,
    output: Path | None = None,
    *,
    include_seeds: bool = False,
    data: ExportData = "auto",
    think: ThinkStyle = "inline",
    min_score: float | None = None,
) -> ExportResult:
    """Write ``fmt`` for ``run_dir`` and register it in ``dataset_info.json`` beside it.

    With ``min_score``, only examples the judge scored at least that high; a reviewer's
    ``drop`` and ``edit`` (``review.jsonl``) apply whenever the run has them.
    """
    curated = curate_run(run_dir, run_examples(run_dir, include_seeds=include_seeds,
                                               data=data), min_score)
    examples = curated.examples
    path = output or run_dir / "export" / FILE_NAMES[fmt]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_records(path, to_records(examples, fmt, think), jsonl=fmt == "messages")
    except OSError as err:
        raise UserError(f"{path}: cannot write the export ({err.strerror})") from None
    name = _dataset_name(run_dir, fmt)
    info_path = path.parent / "dataset_info.json"
    info = read_json(info_path) or {}
    info[name] = dataset_info_entry(fmt, path.name)
    write_json_atomic(info_path, info)
    update_stats(run_dir, "export", curated.to_json())
    return ExportResult(path, len(examples), info_path, name, curated)


def _write_records(path: Path, records: list[dict[str, Any]], *, jsonl: bool) -> None:
    if jsonl:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, lambda fp: fp.write(text))


def _dataset_name(run_dir: Path, fmt: ExportFormat) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", run_dir.resolve().name).strip("_") or "selfinstruct"
    return f"{base}_{fmt}"
