"""Export a dataset as training data that LLaMA-Factory, axolotl or TRL load without edits.

The dataset is anything :func:`~selfinstruct.runs.dataset.read_dataset` reads: a run
directory, the directory ``score -o`` wrote (its scores and reviews decide what is
kept), or a file (Alpaca, ShareGPT, ``messages``, ``reason`` / ``distill`` records, the
output of ``dedup`` or ``mix``).

Four formats: Alpaca JSON (``instruction`` / ``input`` / ``output``, + ``system``),
ShareGPT JSON (``conversations`` with ``from: system|human|gpt``), OpenAI ``messages``
JSONL, and plain ``text`` JSONL (the answers alone, for continued pre-training). Beside
the file, a LLaMA-Factory ``dataset_info.json`` entry names the file and maps its
columns, so ``dataset: NAME`` in a training config is all a user writes. Every format
gives the same user turn: instruction and input joined by one newline, as
LLaMA-Factory's own Alpaca converter joins them. A conversation of ``dialogue`` keeps
all its turns: every one in ShareGPT and ``messages``, the earlier exchanges in the
``history`` column LLaMA-Factory reads beside Alpaca's last one.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.runs.dataset import Dataset, read_dataset
from selfinstruct.runs.dataset import ExportData as ExportData
from selfinstruct.runs.layout import update_stats
from selfinstruct.runs.pairs import TrainingExample
from selfinstruct.runs.store import read_json, write_atomic, write_json_atomic
from selfinstruct.stages.best_of import BestOf
from selfinstruct.stages.best_of import best_of as best_of_groups
from selfinstruct.stages.curate import Curated, curate_dataset
from selfinstruct.stages.ranking import rank
from selfinstruct.text.dialogues import Turn, transcript
from selfinstruct.text.thinking import split_thinking

ExportFormat = Literal["alpaca", "sharegpt", "messages", "text"]
ThinkStyle = Literal["inline", "field", "drop"]

FILE_NAMES: dict[ExportFormat, str] = {
    "alpaca": "alpaca.json",
    "sharegpt": "sharegpt.json",
    "messages": "messages.jsonl",
    "text": "text.jsonl",
}


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
    #: What ``--best-of`` or ``--pairs`` kept and left out, one line each.
    summary: tuple[str, ...] = ()
    #: What ``count`` counts.
    unit: str = "examples"


def to_records(
    examples: list[TrainingExample], fmt: ExportFormat, think: ThinkStyle = "inline"
) -> list[dict[str, Any]]:
    """The records of ``fmt`` (pure, so each format's shape is tested directly).

    With ``think="field"`` the trace goes in its own key: ``reasoning_content`` on the
    assistant turn (messages, sharegpt) or ``reasoning`` beside ``output`` (alpaca); with
    ``think="drop"`` it goes nowhere, not even as ``<think>`` tags inside the answer.
    """
    return [_record(example, fmt, think) for example in examples]


def response(example: TrainingExample, think: ThinkStyle) -> str:
    """The assistant turn; ``inline`` puts the trace in front, as LLaMA-Factory expects."""
    if example.reasoning and think == "inline":
        return f"<think>\n{example.reasoning}\n</think>\n\n{example.output}"
    if think == "drop" and "think>" in example.output:
        return split_thinking(example.output, None).answer
    return example.output


def _record(example: TrainingExample, fmt: ExportFormat, think: ThinkStyle) -> dict[str, Any]:
    if example.turns:
        return _conversation(example, fmt)
    answer = response(example, think)
    separate = bool(example.reasoning) and think == "field"
    if fmt == "text":
        return {"text": response(example, "drop") if think == "drop" else example.output}
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


def _conversation(example: TrainingExample, fmt: ExportFormat) -> dict[str, Any]:
    """A multi-turn example: every turn in the chat formats (the system prompt first);
    in Alpaca the last exchange, with the ones before it in LLaMA-Factory's ``history``
    column (``[[user, assistant], …]``); in ``text`` the whole transcript. The last
    answer is ``example.output``, so a reviewer's edit of it is what is exported."""
    turns = [*example.turns[:-1], (example.turns[-1][0], example.output)]
    if fmt == "text":
        return {"text": transcript([Turn(role, content) for role, content in turns])}
    if fmt == "alpaca":
        pairs = [[turns[i][1], turns[i + 1][1]] for i in range(0, len(turns) - 2, 2)]
        record: dict[str, Any] = {"instruction": turns[-2][1], "input": "",
                                  "output": turns[-1][1], "history": pairs}
        if example.system:
            record["system"] = example.system
        return record
    role, content, names = (("from", "value", {"user": "human", "assistant": "gpt"})
                            if fmt == "sharegpt" else
                            ("role", "content", {"user": "user", "assistant": "assistant"}))
    messages = [{role: names[speaker], content: text} for speaker, text in turns]
    if example.system:
        messages.insert(0, {role: "system", content: example.system})
    return {"conversations" if fmt == "sharegpt" else "messages": messages}


def dataset_info_entry(fmt: ExportFormat, file_name: str,
                       system: bool = False, history: bool = False) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for a file of ``fmt``; ``system`` when
    the records carry a system prompt (a column, or a first turn with the system tag),
    ``history`` when Alpaca records carry earlier exchanges. The chat formats need
    nothing more for many turns: LLaMA-Factory reads every turn of a ShareGPT or
    ``messages`` record."""
    if fmt == "text":
        return {"file_name": file_name, "columns": {"prompt": "text"}}
    if fmt == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        if system:
            columns["system"] = "system"
        if history:
            columns["history"] = "history"
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
    source: Path,
    fmt: ExportFormat,
    output: Path | None = None,
    *,
    include_seeds: bool = False,
    data: ExportData = "auto",
    think: ThinkStyle = "inline",
    min_score: float | None = None,
    fields: Mapping[str, str] | None = None,
    best_of: bool = False,
) -> ExportResult:
    """Write ``fmt`` for ``source`` and register it in ``dataset_info.json`` beside it.

    ``source`` is a run directory, a ``score -o`` directory or a dataset file; by
    default a directory's export goes to ``DIR/export/alpaca.json`` (or the format's
    file) and a file's to ``export/STEM_alpaca.json`` beside it, so exports of several
    files share one ``dataset_info.json``. With ``min_score``, only examples the judge
    scored at least that high; a reviewer's ``drop`` and ``edit`` (``review.jsonl``)
    apply whenever the directory has them. ``fields`` (``export --map``) picks the
    record fields of a distilled run's or a file's examples. With ``best_of``, only the
    top-scored answer of each prompt (:mod:`selfinstruct.stages.best_of`).
    A ``think="field"`` export with traces is not registered: LLaMA-Factory has no column
    for a separate reasoning field and would drop it without a word (and, with a
    reasoning template, train an empty ``<think></think>``).
    """
    dataset = read_dataset(source, include_seeds=include_seeds, data=data, fields=fields)
    summary: tuple[str, ...] = ()
    if best_of:
        curated, best = best_of_curated(dataset, min_score)
        summary = (best.line(),)
    else:
        curated = curate_dataset(dataset, min_score)
    examples = [e for e in curated.examples if e.output and (e.instruction or fmt == "text")]
    path = output or default_output(dataset, fmt)
    write_export(path, dataset, to_records(examples, fmt, think),
                 jsonl=fmt in ("messages", "text"))
    name = dataset_name(dataset.path, fmt)
    info_path = path.parent / "dataset_info.json"
    info = read_json(info_path) or {}
    skipped = len(curated.examples) - len(examples)
    if dataset.directory is not None:
        update_stats(dataset.directory, "export", curated.to_json())
        if best_of:
            update_stats(dataset.directory, "best_of", best.to_json())
    if think == "field" and fmt != "text" and any(e.reasoning for e in examples):
        if info.get(name, {}).get("file_name") == path.name:
            del info[name]
            write_json_atomic(info_path, info)
        return ExportResult(path, len(examples), info_path, None, curated, skipped,
                            note=FIELD_NOTE, summary=summary)
    info[name] = dataset_info_entry(fmt, path.name, any(e.system for e in examples),
                                    any(e.turns for e in examples))
    write_json_atomic(info_path, info)
    return ExportResult(path, len(examples), info_path, name, curated, skipped,
                        summary=summary)


def best_of_curated(dataset: Dataset, min_score: float | None) -> tuple[Curated, BestOf]:
    """``--best-of``: each prompt's top-scored answer after review, then ``--min-score``
    on those (a prompt whose best is under it keeps nothing), with every rule's counts."""
    ranked = rank(dataset, min_score, flag="--best-of")
    best = best_of_groups(ranked.groups(), ranked.scores)
    kept = ranked.at_least(best.examples, min_score)
    reviewed = ranked.reviewed
    return dataclasses.replace(kept, considered=reviewed.considered,
                               dropped_in_review=reviewed.dropped_in_review,
                               edited=reviewed.edited), best


def write_export(path: Path, dataset: Dataset, records: list[dict[str, Any]], *,
                 jsonl: bool) -> None:
    """Write ``records`` (JSON lines or one JSON array) to ``path``, never over the data
    being exported."""
    if path.resolve() == dataset.source.resolve():
        raise UserError(f"-o {path} is the data being exported; write to another file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_records(path, records, jsonl=jsonl)
    except OSError as err:
        raise UserError(f"{path}: cannot write the export ({err.strerror})") from None


def default_output(dataset: Dataset, fmt: ExportFormat) -> Path:
    """``DIR/export/alpaca.json`` for a directory; ``export/STEM_alpaca.json`` beside a
    file (never the file itself, and one name per file exported there)."""
    return export_path(dataset, FILE_NAMES[fmt])


def export_path(dataset: Dataset, file_name: str) -> Path:
    """Where an export named ``file_name`` goes by default (see :func:`default_output`)."""
    if dataset.directory is not None:
        return dataset.directory / "export" / file_name
    return dataset.path.parent / "export" / f"{_base_name(dataset.path)}_{file_name}"


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


def dataset_name(path: Path, fmt: str) -> str:
    """The ``dataset_info.json`` name: the directory's or the file's (stem) and the format."""
    return f"{_base_name(path)}_{fmt}"


def _base_name(path: Path) -> str:
    resolved = path.resolve()
    name = resolved.stem if resolved.is_file() else resolved.name
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "selfinstruct"
