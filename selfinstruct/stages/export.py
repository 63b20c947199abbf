"""Export a run as training data that LLaMA-Factory, axolotl or TRL load without edits.

Four formats: Alpaca JSON (``instruction`` / ``input`` / ``output``, + ``system``),
ShareGPT JSON (``conversations`` with ``from: system|human|gpt``), OpenAI ``messages``
JSONL, and plain ``text`` JSONL (the answers alone, for continued pre-training). Beside
the file, a LLaMA-Factory ``dataset_info.json`` entry names the file and maps its
columns, so ``dataset: NAME`` in a training config is all a user writes. Every format
gives the same user turn: instruction and input joined by one newline, as
LLaMA-Factory's own Alpaca converter joins them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DISTILLED_FILE,
    INSTANCES_FILE,
    INSTRUCTIONS_FILE,
    REASONING_FILE,
    load_run_config,
    update_stats,
)
from selfinstruct.runs.seeds import load_seeds
from selfinstruct.runs.store import read_json, read_jsonl, write_atomic, write_json_atomic
from selfinstruct.stages.curate import Curated, curate_run

ExportFormat = Literal["alpaca", "sharegpt", "messages", "text"]
ExportData = Literal["auto", "instances", "reasoning", "distilled"]
ThinkStyle = Literal["inline", "field"]

FILE_NAMES: dict[ExportFormat, str] = {
    "alpaca": "alpaca.json",
    "sharegpt": "sharegpt.json",
    "messages": "messages.jsonl",
    "text": "text.jsonl",
}
#: The parts of an example ``export --map`` can take from another field of a record.
EXAMPLE_PARTS = ("instruction", "input", "output")


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
    system: str | None = None

    @property
    def prompt(self) -> str:
        """The user turn, the same in every format: LLaMA-Factory's Alpaca converter joins
        instruction and input with one newline, so the chat formats do too."""
        return "\n".join(part for part in (self.instruction, self.input) if part)

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
    #: None when the file is deliberately not registered (see ``note``).
    dataset_name: str | None
    #: What ``--min-score`` and the review verdicts took out or changed.
    curated: Curated | None = None
    #: Records left out for an empty instruction or answer.
    skipped: int = 0
    note: str = ""


def run_examples(
    run_dir: Path, *, include_seeds: bool, data: ExportData = "auto",
    fields: Mapping[str, str] | None = None,
) -> list[TrainingExample]:
    """Every usable example of a run directory: its instances (and seeds, when asked), its
    reasoning traces or its distilled records (``auto`` picks ``distilled.jsonl``, else
    ``reasoning.jsonl``, when the directory has one). ``fields`` (``export --map``) picks
    the record fields of distilled examples."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if data == "distilled" or (data == "auto" and (run_dir / DISTILLED_FILE).exists()):
        if include_seeds:
            raise UserError("--include-seeds adds seed tasks to a generated pool; it does "
                            "not mix with distilled rows")
        return distilled_examples(run_dir, fields)
    if fields:
        raise UserError(f"--map picks the fields of distilled records; {run_dir} has no "
                        f"{DISTILLED_FILE}")
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


def distilled_examples(run_dir: Path,
                       fields: Mapping[str, str] | None = None) -> list[TrainingExample]:
    """The examples of a ``distill`` run: by default the rendered prompt (or the field
    ``--map instruction=…`` made) is the instruction and the parsed answer (or the field
    ``--map output=…`` made) the output; ``fields`` picks other record fields. The system
    prompt, if one was sent, goes with every example. A reasoning trace goes with an
    example only when its user turn is the prompt the model reasoned about."""
    settings = (read_json(run_dir / CONFIG_FILE) or {}).get("distill") or {}
    parts = distilled_parts(settings, fields or {})
    system = settings.get("system") or None
    examples = []
    for record in read_jsonl(run_dir / DISTILLED_FILE):
        trace = record.get("reasoning") if parts["instruction"] == "prompt" else None
        examples.append(TrainingExample(
            _text(record.get(parts["instruction"])),
            _text(record.get(parts["input"])) if parts["input"] else "",
            _text(record.get(parts["output"])),
            _text(trace) or None, key=distilled_key(record), system=system))
    if not examples:
        raise UserError(f"{run_dir}: no distilled records to export; run selfinstruct distill")
    return examples


def distilled_parts(settings: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, str]:
    """Which record field is each part of an example (``input`` may be none: "")."""
    unknown = sorted(set(fields) - set(EXAMPLE_PARTS))
    if unknown:
        raise UserError(f"--map {unknown[0]}=…: export maps {', '.join(EXAMPLE_PARTS)}")
    renames = settings.get("renames") or {}
    answer = "answer" if settings.get("parse", "text") != "json" else ""
    parts = {
        "instruction": "instruction" if "instruction" in renames else "prompt",
        "input": "input" if "input" in renames else "",
        "output": "output" if "output" in renames else answer,
        **fields,
    }
    if not parts["output"]:
        raise UserError("these records were parsed as JSON without --map output=KEY; say "
                        "which field is the answer: selfinstruct export DIR --map output=FIELD")
    return parts


def _text(value: Any) -> str:
    """A record value as training text: strings stripped, other JSON as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


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


def distilled_key(record: Mapping[str, Any]) -> str:
    """The id of one distilled record: its row, its list item and its sample."""
    return f"{record['id']}/{record.get('item', 0)}/{record.get('sample', 0)}"


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
    if fmt == "text":
        return {"text": example.output}
    if fmt == "alpaca":
        record = {"instruction": example.instruction, "input": example.input, "output": answer}
        if separate:
            record["reasoning"] = example.reasoning or ""
        if example.system:
            record["system"] = example.system
        return record
    role, content, roles = (("from", "value", ("system", "human", "gpt")) if fmt == "sharegpt"
                            else ("role", "content", ("system", "user", "assistant")))
    turns = [{role: roles[1], content: example.prompt}, {role: roles[2], content: answer}]
    if separate:
        turns[1]["reasoning_content"] = example.reasoning or ""
    if example.system:
        turns.insert(0, {role: roles[0], content: example.system})
    return {"conversations" if fmt == "sharegpt" else "messages": turns}


def dataset_info_entry(fmt: ExportFormat, file_name: str,
                       system: bool = False) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for a file of ``fmt``; ``system`` when
    the records carry a system prompt (a column, or a first turn with the system tag)."""
    if fmt == "text":
        return {"file_name": file_name, "columns": {"prompt": "text"}}
    if fmt == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        if system:
            columns["system"] = "system"
        return {"file_name": file_name, "columns": columns}
    if fmt == "sharegpt":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt", "system_tag": "system"},
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
    fields: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write ``fmt`` for ``run_dir`` and register it in ``dataset_info.json`` beside it.

    With ``min_score``, only examples the judge scored at least that high; a reviewer's
    ``drop`` and ``edit`` (``review.jsonl``) apply whenever the run has them.
    ``fields`` (``export --map``) picks the record fields of a distilled run's examples.
    A ``think="field"`` export with traces is not registered: LLaMA-Factory has no column
    for a separate reasoning field and would drop it without a word (and, with a
    reasoning template, train an empty ``<think></think>``).
    """
    everything = run_examples(run_dir, include_seeds=include_seeds, data=data, fields=fields)
    curated = curate_run(run_dir, everything, min_score)
    examples = [e for e in curated.examples if e.output and (e.instruction or fmt == "text")]
    path = output or run_dir / "export" / FILE_NAMES[fmt]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_records(path, to_records(examples, fmt, think), jsonl=fmt in ("messages", "text"))
    except OSError as err:
        raise UserError(f"{path}: cannot write the export ({err.strerror})") from None
    name = _dataset_name(run_dir, fmt)
    info_path = path.parent / "dataset_info.json"
    info = read_json(info_path) or {}
    skipped = len(curated.examples) - len(examples)
    update_stats(run_dir, "export", curated.to_json())
    if think == "field" and fmt != "text" and any(e.reasoning for e in examples):
        if info.get(name, {}).get("file_name") == path.name:
            del info[name]
            write_json_atomic(info_path, info)
        return ExportResult(path, len(examples), info_path, None, curated, skipped,
                            note=FIELD_NOTE)
    info[name] = dataset_info_entry(fmt, path.name, any(e.system for e in examples))
    write_json_atomic(info_path, info)
    return ExportResult(path, len(examples), info_path, name, curated, skipped)


#: Why a ``--think field`` export is not registered for LLaMA-Factory.
FIELD_NOTE = ("not registered in dataset_info.json: LLaMA-Factory has no column for a "
              "separate reasoning field and would train without it; for LLaMA-Factory "
              "export with the default --think inline (<think>…</think> before the answer)")


def _write_records(path: Path, records: list[dict[str, Any]], *, jsonl: bool) -> None:
    if jsonl:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, lambda fp: fp.write(text))


def _dataset_name(run_dir: Path, fmt: ExportFormat) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", run_dir.resolve().name).strip("_") or "selfinstruct"
    return f"{base}_{fmt}"
