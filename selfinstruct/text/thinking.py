"""Separate a thinking model's reasoning from its final answer.

Servers put the trace in different places: vLLM's reasoning parsers and the DeepSeek
API return it in a ``reasoning_content`` (or ``reasoning``) field; without a parser it
stays in the text as ``<think>…</think>``; and when the chat template itself opens
``<think>`` (DeepSeek-R1, QwQ), the text starts inside the trace and only the closing
tag shows. One pure function handles all of them, so the completions API and offline
vLLM, which have no server-side parser, go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass(frozen=True)
class Thought:
    """A completion split into reasoning and answer.

    ``reasoning`` is None when the model did not reason at all; ``unclosed`` is True when
    a ``<think>`` was opened and never closed (the answer is then empty).
    """

    reasoning: str | None
    answer: str
    unclosed: bool = False


def split_thinking(text: str, reasoning_field: str | None = None) -> Thought:
    """Split ``text`` (and a server's separate reasoning field, which wins) into a Thought."""
    if reasoning_field and reasoning_field.strip():
        inner = split_thinking(text)
        answer = inner.answer if inner.reasoning is not None else text
        return Thought(reasoning_field.strip(), answer.strip())
    stripped = text.lstrip()
    if stripped.startswith(OPEN_TAG):
        body = stripped[len(OPEN_TAG):]
        if CLOSE_TAG not in body:
            return Thought(body.strip(), "", unclosed=True)
        reasoning, answer = body.split(CLOSE_TAG, 1)
        return Thought(reasoning.strip(), answer.strip())
    if CLOSE_TAG in text:
        reasoning, answer = text.split(CLOSE_TAG, 1)
        return Thought(reasoning.strip(), answer.strip())
    return Thought(None, text.strip())
