"""Finished examples (a prompt and its answer), and reading them from a dataset file.

Every command that takes data people already have reads it here: Alpaca JSON/JSONL
(``instruction`` / ``input`` / ``output``, + ``system``), ShareGPT (``conversations``: the
first human turn and the answer after it, with a system turn before it), OpenAI
``messages``, flat JSONL whose answer is in ``output``, ``answer`` or ``response``, and
the records ``reason`` and ``distill`` write (so a copy of ``reasoning.jsonl`` or a
``dedup`` / ``mix`` of them reads as the run did). Every example gets a stable id
from the record alone (its ``id``, with its ``sample`` for traces and distilled records,
else its position), so ``score FILE`` and a later ``export`` of the scores name each
example alike, a resumed ``score`` knows what is done, and a review sheet can name what
it shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import check_unique_ids, iter_objects, json_type
from selfinstruct.text.dialogues import Turn, normalise_role, transcript

ANSWER_FIELDS = ("output", "answer", "response")
#: A distilled record's answer is the parsed one; ``response`` is the raw text.
DISTILLED_ANSWER_FIELDS = ("answer", "output", "response")
#: The parts of an example ``export --map`` (and ``score --field``) can take from
#: another field of a record.
EXAMPLE_PARTS = ("instruction", "input", "output")
_HUMAN = ("human", "user")
_ASSISTANT = ("gpt", "assistant")


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
    #: The record the example was read from (a distilled record keeps its row's columns),
    #: for ``score --context``; empty where there is none.
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: A multi-turn conversation's turns, ``(role, content)``, user first and the
    #: assistant last (empty: one exchange). ``instruction`` is then its first user turn
    #: and ``output`` its last answer, which a reviewer's edit replaces.
    turns: tuple[tuple[str, str], ...] = ()

    @property
    def prompt(self) -> str:
        """The user turn, the same in every format: LLaMA-Factory's Alpaca converter joins
        instruction and input with one newline, so the chat formats do too."""
        return "\n".join(part for part in (self.instruction, self.input) if part)


@dataclass(frozen=True)
class Answered:
    """One example to judge: what was asked and what was answered, and the fields of its
    source the answer was grounded in (``score --context``)."""

    id: str
    instruction: str
    input: str
    output: str
    context: tuple[tuple[str, str], ...] = ()
    #: A conversation's turns (the judge rates the whole of it); empty for one exchange.
    turns: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, example: TrainingExample, context: Sequence[str] = ()) -> Answered:
        """The judge's view of an example (its trace and system prompt are not judged),
        with the ``context`` fields of its record that it has; a conversation's input is
        its transcript, which is what a review sheet shows."""
        shown = tuple((name, text_value(example.fields[name])) for name in context
                      if example.fields.get(name) not in (None, ""))
        if example.turns:
            text = transcript([Turn(role, content) for role, content in example.turns])
            return cls(example.key, example.instruction, text, example.output, shown,
                       example.turns)
        return cls(example.key, example.instruction, example.input, example.output, shown)


def instance_key(task_id: str, number: int) -> str:
    """The id of a task's ``number``-th instance (as ``reason`` names its prompts too)."""
    return f"{task_id}#{number}"


def distilled_key(record: Mapping[str, Any]) -> str:
    """The id of one distilled record: its row, its list item and its sample."""
    return f"{record['id']}/{record.get('item', 0)}/{record.get('sample', 0)}"


def trace_key(prompt_id: str, sample: int) -> str:
    """The id of one reasoning trace: its prompt's id and its sample number."""
    return f"{prompt_id}/{sample}"


def check_parts(fields: Mapping[str, str]) -> None:
    """``--map PART=FIELD`` names a part of an example."""
    unknown = sorted(set(fields) - set(EXAMPLE_PARTS))
    if unknown:
        raise UserError(f"--map {unknown[0]}=…: export maps {', '.join(EXAMPLE_PARTS)}")


def text_value(value: Any) -> str:
    """A record value as training text: strings stripped, other JSON as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def load_examples(path: Path, fields: Mapping[str, str] | None = None) -> list[TrainingExample]:
    """Every example in ``path``; ``fields`` (``--map``, ``--field``) names the record
    field of a part. A record without a prompt or an answer is an error naming file and
    line (a judge cannot rate half an example), and so is an id given twice."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    parts = dict(fields or {})
    check_parts(parts)
    examples = [_example(path, line, value, parts, f"row{index}")
                for index, (line, value) in enumerate(iter_objects(path))]
    if not examples:
        raise UserError(f"{path}: no examples found")
    check_unique_ids(path, (example.key for example in examples),
                     "scores and reviews can name their example")
    return examples


def record_key(record: Mapping[str, Any], fallback: str) -> str:
    """A record's id: ``id`` (with the sample of a trace or a distilled record, as the
    run directory names them), else its position."""
    if "id" not in record:
        return fallback
    if "sample" not in record:
        return str(record["id"])
    if _distilled(record):
        return distilled_key(record)
    return trace_key(str(record["id"]), record["sample"])


def _distilled(record: Mapping[str, Any]) -> bool:
    """Whether a record is one ``distill`` wrote (the prompt and the raw answer with it)."""
    return "prompt" in record and "response" in record


def _example(path: Path, line: int, value: Any, parts: Mapping[str, str],
             fallback: str) -> TrainingExample:
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    key = record_key(value, fallback)
    distilled = _distilled(value)
    field = parts.get("instruction", "instruction")
    if distilled and field == "instruction" and field not in value:
        field = "prompt"
    for turns in ("conversations", "messages"):
        if field not in value and isinstance(value.get(turns), list):
            return _conversation(path, line, key, value, turns)
    text = value.get(field)
    answers = [parts["output"]] if "output" in parts else (
        DISTILLED_ANSWER_FIELDS if distilled else ANSWER_FIELDS)
    answer = next((value[name] for name in answers if value.get(name) is not None), None)
    if not isinstance(text, str) or not text.strip() or answer is None:
        fields = ", ".join(sorted(value)) or "none"
        raise UserError(f"{path}:{line}: expected a prompt in {field!r} and an answer in "
                        f"{' / '.join(answers)} (fields: {fields}); name them with "
                        "--map instruction=FIELD --map output=FIELD (score: --field)")
    extra = value.get(parts.get("input", "input"))
    # A trace is about the prompt the model saw; it goes with no other instruction.
    trace = value.get("reasoning") if field == ("prompt" if distilled else "instruction") \
        else None
    system = value.get("system")
    return TrainingExample(text.strip(), text_value(extra), text_value(answer),
                           text_value(trace) or None, key,
                           (system.strip() or None) if isinstance(system, str) else None,
                           value)


def _conversation(path: Path, line: int, key: str, record: Mapping[str, Any],
                  name: str) -> TrainingExample:
    """A conversation of two or more exchanges, whole (what ``dialogue`` writes, and
    multi-turn ShareGPT / ``messages``); else the first human turn and the assistant
    turn right after it (and a system turn before them, with the assistant's
    ``reasoning_content``)."""
    turns: list[Any] = record[name]
    texts = [(str(t.get("from") or t.get("role")), t.get("value", t.get("content")), t)
             for t in turns if isinstance(t, dict)]
    own = record.get("system")
    system = next((text.strip() for role, text, _ in texts
                   if role == "system" and isinstance(text, str) and text.strip()),
                  own.strip() or None if isinstance(own, str) else None)
    whole = dialogue_turns([(role, text) for role, text, _ in texts if role != "system"])
    if len(whole) >= 4:
        return TrainingExample(whole[0][1], "", whole[-1][1], None, key, system,
                               fields=record, turns=whole)
    for position, (role, text, _) in enumerate(texts[:-1]):
        reply_role, reply, turn = texts[position + 1]
        if (role in _HUMAN and reply_role in _ASSISTANT and isinstance(text, str)
                and isinstance(reply, str) and text.strip()):
            trace = text_value(turn.get("reasoning_content")) or None
            return TrainingExample(text.strip(), "", reply.strip(), trace, key, system,
                                   fields=record)
    raise UserError(f"{path}:{line}: no human/user turn followed by an answer in {name!r}")


def dialogue_turns(turns: list[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    """``turns`` as ``(user|assistant, text)`` when they are a whole conversation (user
    first, taking turns, the assistant last, no turn empty); else ()."""
    whole = tuple((normalise_role(role), text.strip() if isinstance(text, str) else "")
                  for role, text in turns)
    if len(whole) % 2 or any(not text for _, text in whole):
        return ()
    expected = ("user", "assistant") * (len(whole) // 2)
    return whole if tuple(role for role, _ in whole) == expected else ()
