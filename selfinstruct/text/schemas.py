"""The JSON shapes each stage asks for when structured output is on.

A schema goes with a request so the backend can make the model follow it (a grammar in
llama.cpp, ``response_format`` on an OpenAI-compatible server, vLLM's structured-output
parameters). Even a 135M model then writes data a parser can read. The readers of these
shapes live in :mod:`selfinstruct.text.structured`.

Every schema keeps to what OpenAI's strict mode accepts, since that is the strictest
server people point us at: an object at the root, every property required, no extra
properties, and no length limits on strings (``minItems`` / ``maxItems`` are allowed).
Properties are listed in the order the model should write them: llama.cpp's grammar
follows that order, so an output-first answer names the label before its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selfinstruct.language import Language

__all__ = [
    "LABEL_LIMIT",
    "SELF_INSTRUCT_TASK_LIMIT",
    "YES_NO",
    "AnswerSchema",
    "alpaca_schema",
    "answer_schema",
    "classify_schema",
    "dialogue_schema",
    "input_first_schema",
    "output_first_schema",
    "task_list_schema",
]

#: New tasks one self-instruct answer may hold: the prompt shows 8 and a model usually
#: continues to about 16-20; more than this is a model looping on one list.
SELF_INSTRUCT_TASK_LIMIT = 12
#: Labels of one classification task: "a small, fixed set".
LABEL_LIMIT = 10
#: The two answers of the classify question, in each language's own words (the
#: few-shot examples answer in them, so the model keeps to the words it was shown).
YES_NO: dict[Language, tuple[str, str]] = {"en": ("Yes", "No"), "zh": ("是", "否")}


@dataclass(frozen=True)
class AnswerSchema:
    """A JSON schema and the short name servers want with it (``[A-Za-z0-9_-]``)."""

    name: str
    schema: Mapping[str, Any]


def answer_schema(schema: AnswerSchema | None) -> dict[str, Any]:
    """The :class:`~selfinstruct.llm.base.Request` fields that carry ``schema`` (none
    for free text), so a request builder states its shape in one argument."""
    if schema is None:
        return {}
    return {"schema": schema.schema, "schema_name": schema.name}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """A strict object: every property required, nothing else allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _array(items: dict[str, Any], most: int) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": 1, "maxItems": max(1, most)}


_STRING: dict[str, Any] = {"type": "string"}


def task_list_schema(most: int = SELF_INSTRUCT_TASK_LIMIT) -> AnswerSchema:
    """Self-Instruct: ``{"tasks": ["instruction", ...]}``."""
    return AnswerSchema("task_list", _object({"tasks": _array(_STRING, most)}))


def alpaca_schema(most: int) -> AnswerSchema:
    """Alpaca: ``{"tasks": [{"instruction", "input", "output"}, ...]}``, up to ``most``."""
    task = _object({"instruction": _STRING, "input": _STRING, "output": _STRING})
    return AnswerSchema("alpaca_tasks", _object({"tasks": _array(task, most)}))


def classify_schema(language: Language) -> AnswerSchema:
    """Classify: ``{"answer": "Yes" | "No"}`` (``是`` / ``否`` in Chinese)."""
    answer = {"type": "string", "enum": list(YES_NO[language])}
    return AnswerSchema("classification", _object({"answer": answer}))


def input_first_schema(count: int) -> AnswerSchema:
    """Input-first: ``{"examples": [{"input", "output"}, ...]}``, up to ``count``."""
    example = _object({"input": _STRING, "output": _STRING})
    return AnswerSchema("examples", _object({"examples": _array(example, count)}))


def output_first_schema(count: int) -> AnswerSchema:
    """Output-first: the labels, then ``{"label", "input"}`` pairs, label first."""
    example = _object({"label": _STRING, "input": _STRING})
    return AnswerSchema(
        "labelled_examples",
        _object({"labels": _array(_STRING, LABEL_LIMIT), "examples": _array(example, count)}),
    )


def dialogue_schema(turns: int) -> AnswerSchema:
    """Dialogue script: ``{"messages": [{"role": "user" | "assistant", "content"}, …]}``,
    ``turns`` exchanges (two messages each) at most."""
    message = _object({"role": {"type": "string", "enum": ["user", "assistant"]},
                       "content": _STRING})
    messages = {"type": "array", "items": message, "minItems": 2, "maxItems": 2 * turns}
    return AnswerSchema("dialogue", _object({"messages": messages}))
