"""Any dataset in: the examples of a run directory, of the directory ``score -o`` wrote,
or of a file, each under a stable id.

``export``, ``score``, ``review`` and ``report`` all read their examples through
:func:`read_dataset`, so one dataset gives every command the same examples under the
same ids: the verdicts ``score FILE -o OUT`` writes join the examples ``export OUT``
reads, by id. A directory ``score -o`` wrote holds only the judge's files; its
``config.json`` names the data it judged (``score.source``), which is read in its place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DIALOGUES_FILE,
    DISTILLED_FILE,
    INSTANCES_FILE,
    INSTRUCTIONS_FILE,
    REASONING_FILE,
    load_run_config,
)
from selfinstruct.runs.pairs import (
    TrainingExample,
    check_parts,
    dialogue_turns,
    distilled_key,
    instance_key,
    load_examples,
    text_value,
    trace_key,
)
from selfinstruct.runs.seeds import load_seeds
from selfinstruct.runs.store import read_json, read_jsonl

#: Which of a run directory's files ``export --data`` reads (``auto``: the one it has).
ExportData = Literal["auto", "instances", "reasoning", "distilled", "dialogues"]
#: Files that make a directory a run of its own, whatever its config says it scored.
RUN_DATA = (INSTRUCTIONS_FILE, REASONING_FILE, DISTILLED_FILE, DIALOGUES_FILE)


@dataclass(frozen=True)
class Dataset:
    """The examples of what a command was given, and where their judgements live."""

    #: What the command was given: a run directory, a ``score -o`` directory or a file.
    path: Path
    examples: list[TrainingExample]
    #: The data the examples were read from (``path``, or what a ``score -o`` dir judged).
    source: Path
    #: Where ``scores.jsonl``, ``review.jsonl`` and ``stats.json`` belong: ``path`` when it
    #: is a directory; a file has none (its scores are where ``score FILE -o DIR`` wrote).
    directory: Path | None


def read_dataset(
    path: Path, *, field: str | None = None, include_seeds: bool = False,
    data: ExportData = "auto", fields: Mapping[str, str] | None = None,
) -> Dataset:
    """The examples of ``path``: a file (Alpaca, ShareGPT, ``messages``, the records of
    ``reason`` / ``distill``, the output of ``dedup`` or ``mix``), a run directory, or
    the directory ``score -o`` wrote (read through the data it judged, with the prompt
    field it was given). ``field`` is ``score --field``; ``fields`` is ``export --map``."""
    return _read(path, field, include_seeds, data, dict(fields or {}), seen=())


def _read(path: Path, field: str | None, include_seeds: bool, data: ExportData,
          fields: dict[str, str], seen: tuple[Path, ...]) -> Dataset:
    if path.is_file():
        return Dataset(path, _file_examples(path, field, include_seeds, data, fields), path,
                       None)
    if not path.is_dir():
        raise UserError(f"{path}: no such file or run directory")
    judged = scored_source(path)
    if judged is None:
        return Dataset(path, run_examples(path, include_seeds=include_seeds, data=data,
                                          fields=fields), path, path)
    source, saved_field = judged
    if path.resolve() in seen:
        raise UserError(f"{path}: its config.json names a scored source that leads back to "
                        "it; score the data itself again with -o DIR")
    if not source.exists():
        raise UserError(f"{source}: the data that {path} scored is gone; put it back")
    inner = _read(source, field or saved_field, include_seeds, data, fields,
                  (*seen, path.resolve()))
    return Dataset(path, inner.examples, inner.source, path)


def scored_source(directory: Path) -> tuple[Path, str | None] | None:
    """The data a ``score -o`` directory judged and the prompt field it read, or None for
    a directory that holds data of its own (a run, even one scored in place)."""
    if any((directory / name).exists() for name in RUN_DATA):
        return None
    saved = (read_json(directory / CONFIG_FILE) or {}).get("score")
    if not isinstance(saved, dict) or not saved.get("source"):
        return None
    source = Path(saved["source"])
    if source.resolve() == directory.resolve():
        return None
    field = saved.get("field")
    return source, field if isinstance(field, str) else None


def _file_examples(path: Path, field: str | None, include_seeds: bool, data: ExportData,
                   fields: dict[str, str]) -> list[TrainingExample]:
    if include_seeds:
        raise UserError(f"--include-seeds adds a run's seed tasks; {path} is a file, not a "
                        "run directory")
    if data != "auto":
        raise UserError(f"--data {data} picks a file of a run directory; {path} is a file "
                        "(leave --data out)")
    return load_examples(path, {**({"instruction": field} if field else {}), **fields})


def run_examples(
    run_dir: Path, *, include_seeds: bool, data: ExportData = "auto",
    fields: Mapping[str, str] | None = None,
) -> list[TrainingExample]:
    """Every usable example of a run directory: its instances (and seeds, when asked), its
    reasoning traces or its distilled records (``auto`` picks ``distilled.jsonl``, else
    ``reasoning.jsonl``, when the directory has one). ``fields`` (``export --map``) picks
    the record fields of distilled examples. A ``dialogue`` run's conversations are
    examples of many turns."""
    if data == "dialogues" or (data == "auto" and (run_dir / DIALOGUES_FILE).exists()):
        if include_seeds or fields:
            raise UserError("--include-seeds and --map are for single-turn data; a dialogue "
                            "run exports its conversations as they are")
        return dialogue_examples(run_dir)
    if data == "distilled" or (data == "auto" and (run_dir / DISTILLED_FILE).exists()):
        if include_seeds:
            raise UserError("--include-seeds adds seed tasks to a generated pool; it does "
                            "not mix with distilled rows")
        return distilled_examples(run_dir, fields)
    if fields:
        raise UserError(f"--map picks the fields of distilled records or of a file's "
                        f"records; {run_dir} has no {DISTILLED_FILE}")
    if data == "reasoning" or (data == "auto" and (run_dir / REASONING_FILE).exists()):
        if include_seeds:
            raise UserError("--include-seeds adds examples without reasoning; it does not "
                            "mix with reasoning data (use --data instances)")
        examples = [
            TrainingExample(r["instruction"], r["input"], r["answer"], r["reasoning"],
                            trace_key(r["id"], r["sample"]), fields=r)
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
            text_value(record.get(parts["instruction"])),
            text_value(record.get(parts["input"])) if parts["input"] else "",
            text_value(record.get(parts["output"])),
            text_value(trace) or None, key=distilled_key(record), system=system,
            fields=record))
    if not examples:
        raise UserError(f"{run_dir}: no distilled records to export; run selfinstruct distill")
    return examples


def dialogue_examples(run_dir: Path) -> list[TrainingExample]:
    """The conversations of a ``dialogue`` run, each with its system prompt, under its id."""
    examples = []
    for record in read_jsonl(run_dir / DIALOGUES_FILE):
        turns = dialogue_turns([(str(m.get("role")), m.get("content"))
                                for m in record.get("messages") or [] if isinstance(m, dict)])
        if turns:
            examples.append(TrainingExample(turns[0][1], "", turns[-1][1], None,
                                            str(record["id"]), record.get("system") or None,
                                            fields=record, turns=turns))
    if not examples:
        raise UserError(f"{run_dir}: no conversations to export; run selfinstruct dialogue")
    return examples


def distilled_parts(settings: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, str]:
    """Which record field is each part of an example (``input`` may be none: "")."""
    check_parts(fields)
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

