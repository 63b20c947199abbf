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
from selfinstruct.rundir import INSTANCES_FILE, INSTRUCTIONS_FILE, load_run_config
from selfinstruct.seeds import load_seeds
from selfinstruct.store import read_json, read_jsonl, write_atomic, write_json_atomic

ExportFormat = Literal["alpaca", "sharegpt", "messages"]

FILE_NAMES: dict[ExportFormat, str] = {
    "alpaca": "alpaca.json",
    "sharegpt": "sharegpt.json",
    "messages": "messages.jsonl",
}


@dataclass(frozen=True)
class TrainingExample:
    """One supervised example: the user's turn (instruction + input) and the answer."""

    instruction: str
    input: str
    output: str

    @property
    def prompt(self) -> str:
        """The user message for chat formats: the instruction, then the input if any."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


@dataclass(frozen=True)
class ExportResult:
    """Where the data went and how much of it there is."""

    path: Path
    count: int
    dataset_info: Path
    dataset_name: str


def run_examples(run_dir: Path, *, include_seeds: bool) -> list[TrainingExample]:
    """Every usable example of a run (and of its seeds, when asked)."""
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
            for instance in task["instances"]:
                yield _example(task["instruction"], instance["input"], instance["output"])
        return
    for task in read_jsonl(run_dir / INSTRUCTIONS_FILE):
        if task.get("output"):
            yield _example(task["instruction"], task.get("input", ""), task["output"])


def _seed_examples(seeds: Path) -> Iterator[TrainingExample]:
    for seed in load_seeds(seeds):
        for instance in seed.instances:
            if instance.output:
                yield _example(seed.instruction, instance.input, instance.output)


def _example(instruction: str, input_text: str, output: str) -> TrainingExample:
    return TrainingExample(instruction.strip(), input_text.strip(), output.strip())


def to_records(examples: list[TrainingExample], fmt: ExportFormat) -> list[dict[str, Any]]:
    """The records of ``fmt`` (pure, so each format's shape is tested directly)."""
    if fmt == "alpaca":
        return [{"instruction": e.instruction, "input": e.input, "output": e.output}
                for e in examples]
    if fmt == "sharegpt":
        return [
            {"conversations": [{"from": "human", "value": e.prompt},
                               {"from": "gpt", "value": e.output}]}
            for e in examples
        ]
    return [
        {"messages": [{"role": "user", "content": e.prompt},
                      {"role": "assistant", "content": e.output}]}
        for e in examples
    ]


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
) -> ExportResult:
    """Write ``fmt`` for ``run_dir`` and register it in ``dataset_info.json`` beside it."""
    examples = run_examples(run_dir, include_seeds=include_seeds)
    path = output or run_dir / "export" / FILE_NAMES[fmt]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_records(path, to_records(examples, fmt), jsonl=fmt == "messages")
    except OSError as err:
        raise UserError(f"{path}: cannot write the export ({err.strerror})") from None
    name = _dataset_name(run_dir, fmt)
    info_path = path.parent / "dataset_info.json"
    info = read_json(info_path) or {}
    info[name] = dataset_info_entry(fmt, path.name)
    write_json_atomic(info_path, info)
    return ExportResult(path, len(examples), info_path, name)


def _write_records(path: Path, records: list[dict[str, Any]], *, jsonl: bool) -> None:
    if jsonl:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, lambda fp: fp.write(text))


def _dataset_name(run_dir: Path, fmt: ExportFormat) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", run_dir.resolve().name).strip("_") or "selfinstruct"
    return f"{base}_{fmt}"
