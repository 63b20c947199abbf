"""Filters for reasoning traces: each a named pure function returning a reason or None.

A trace is worth training on only when it is complete (not cut by the length limit,
``<think>`` closed), present, followed by an answer, not stuck in a loop, in the
language the user asked for, and not absurdly long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from selfinstruct.language import Language, detect_language
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.text.thinking import Thought


@dataclass(frozen=True)
class TraceSettings:
    """Bounds for the trace filters."""

    language: Language | None = None
    max_reasoning_chars: int = 100_000
    ngram: int = 10
    max_ngram_repeats: int = 8


@dataclass(frozen=True)
class Trace:
    """What the filters look at: the split completion and why it stopped."""

    thought: Thought
    finish_reason: str | None


TraceFilter = Callable[[Trace, TraceSettings], "str | None"]


def truncated(trace: Trace, settings: TraceSettings) -> str | None:
    """A trace cut by the token limit has no trustworthy ending."""
    if trace.finish_reason == "length":
        return "the answer was cut by the token limit (finish_reason=length); raise --max-tokens"
    return None


def unclosed_think(trace: Trace, settings: TraceSettings) -> str | None:
    """``<think>`` opened and never closed: the model never reached an answer."""
    return "<think> was never closed" if trace.thought.unclosed else None


def no_reasoning(trace: Trace, settings: TraceSettings) -> str | None:
    """The model answered without a trace (not a thinking model, or thinking was off)."""
    reasoning = trace.thought.reasoning
    return "the answer has no reasoning trace" if not reasoning else None


def empty_answer(trace: Trace, settings: TraceSettings) -> str | None:
    """A trace with nothing after it teaches the model to stop mid-way."""
    return "the final answer is empty" if not trace.thought.answer.strip() else None


def degenerate_repetition(trace: Trace, settings: TraceSettings) -> str | None:
    """The same run of tokens over and over: the model was looping."""
    tokens = tokenize(trace.thought.reasoning or "", "multilingual")
    n = settings.ngram
    if len(tokens) < n * (settings.max_ngram_repeats + 1):
        return None
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    gram, repeats = counts.most_common(1)[0]
    if repeats > settings.max_ngram_repeats:
        return f"the {n}-gram {' '.join(gram)!r} repeats {repeats} times"
    return None


def wrong_language(trace: Trace, settings: TraceSettings) -> str | None:
    """Reasoning in another language than asked for (e.g. English thoughts for zh data)."""
    if settings.language is None or not trace.thought.reasoning:
        return None
    found = detect_language([trace.thought.reasoning])
    if found != settings.language:
        return f"the reasoning is in {found}, not {settings.language}"
    return None


def too_long(trace: Trace, settings: TraceSettings) -> str | None:
    """Traces past the bound cost training time and rarely help."""
    size = len(trace.thought.reasoning or "")
    if size > settings.max_reasoning_chars:
        return f"the reasoning has {size} characters, over {settings.max_reasoning_chars}"
    return None


TRACE_FILTERS: tuple[TraceFilter, ...] = (
    truncated,
    unclosed_think,
    no_reasoning,
    empty_answer,
    degenerate_repetition,
    wrong_language,
    too_long,
)


def check_trace(trace: Trace, settings: TraceSettings) -> tuple[str, str] | None:
    """``(filter name, reason)`` of the first filter that rejects ``trace``, else None."""
    for check in TRACE_FILTERS:
        reason = check(trace, settings)
        if reason is not None:
            return check.__name__, reason
    return None
