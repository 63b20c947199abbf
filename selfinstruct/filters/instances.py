"""Filters that drop bad input/output examples after the instance stage.

An instruction passed its own filters in bootstrap; here its *examples* are checked.
Each per-example filter is a small pure function ``(example, settings) -> reason | None``
whose name is what a person sees in ``rejected.jsonl``; the reason says what was wrong
so prompts can be tuned from it. Three rules look at more than one example at a time
and live in :func:`filter_instances`: the last example of an answer cut off by the
length limit (``truncated``), repeats (``duplicate``) and one input given different
answers (``conflicting_outputs``), which would teach the model to contradict itself.

Lengths are language-aware (:func:`selfinstruct.language.text_length`): words in
English, characters in Chinese.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from selfinstruct.language import LENGTH_UNIT, Language, text_length
from selfinstruct.text.instances import Example, clean_label

__all__ = [
    "DEFAULT_INSTANCE_LENGTHS",
    "EXAMPLE_FILTERS",
    "ExampleFilter",
    "InstanceRejection",
    "InstanceSettings",
    "dangling_colon",
    "empty_output",
    "filter_instances",
    "input_too_long",
    "label_not_listed",
    "match_label",
    "output_equals_input",
    "output_too_long",
]

#: ``(max_input_length, max_output_length)`` in the unit of :func:`text_length`. Inputs
#: are the text a task works on (a paragraph, an email, some code), outputs the full
#: answer; a Chinese character carries about half an English word, hence twice the count.
DEFAULT_INSTANCE_LENGTHS: dict[Language, tuple[int, int]] = {"en": (300, 500), "zh": (600, 1000)}

_COLONS = (":", "：")


@dataclass(frozen=True)
class InstanceSettings:
    """What the instance filters need to know about a run.

    Lengths are inclusive maxima in the language's unit: words for English, characters
    for Chinese (see :func:`selfinstruct.language.text_length`).
    """

    language: Language
    max_input_length: int
    max_output_length: int

    @classmethod
    def for_language(cls, language: Language) -> InstanceSettings:
        """The defaults for ``language`` (see :data:`DEFAULT_INSTANCE_LENGTHS`)."""
        max_input, max_output = DEFAULT_INSTANCE_LENGTHS[language]
        return cls(language, max_input, max_output)


@dataclass(frozen=True)
class InstanceRejection:
    """An example that was dropped, the filter that dropped it and why."""

    example: Example
    filter: str
    detail: str


#: The shape of a per-example filter: the reason to reject the example, or None.
ExampleFilter = Callable[[Example, InstanceSettings], str | None]


def _normalise(text: str) -> str:
    """Collapse whitespace and ignore case: how two texts are compared for sameness.

    Examples that differ only in spacing or letter case teach nothing different, and an
    output of "Positive" next to "positive" for the same input is not a disagreement.
    """
    return " ".join(text.split()).casefold()


def _too_long(text: str, limit: int, what: str, settings: InstanceSettings) -> str | None:
    """The reason ``text`` is over ``limit`` in the language's unit, or None."""
    length = text_length(text, settings.language)
    if length > limit:
        unit = LENGTH_UNIT[settings.language]
        return f"the {what} has {length} {unit}, more than the maximum of {limit}"
    return None


# ------------------------------------------------------------------- per-example filters


def empty_output(example: Example, settings: InstanceSettings) -> str | None:
    """Reject an example without an output: the model stopped or never answered."""
    return "the output is empty" if not example.output.strip() else None


def dangling_colon(example: Example, settings: InstanceSettings) -> str | None:
    """Reject an input or output that ends with a colon.

    "Here is the corrected version:" with nothing after it means the model stopped
    mid-thought, so the example is incomplete.
    """
    for what, text in (("input", example.input), ("output", example.output)):
        stripped = text.rstrip()
        if stripped.endswith(_COLONS):
            return f"the {what} ends with {stripped[-1]!r}, as if something should follow"
    return None


def input_too_long(example: Example, settings: InstanceSettings) -> str | None:
    """Reject an overlong input: usually the model ran its answer or the next example in."""
    return _too_long(example.input, settings.max_input_length, "input", settings)


def output_too_long(example: Example, settings: InstanceSettings) -> str | None:
    """Reject an overlong output: usually rambling or several examples run together."""
    return _too_long(example.output, settings.max_output_length, "output", settings)


def output_equals_input(example: Example, settings: InstanceSettings) -> str | None:
    """Reject an output that repeats the input: the model echoed instead of doing the task."""
    if example.input.strip() and _normalise(example.input) == _normalise(example.output):
        return "the output repeats the input"
    return None


#: The per-example filters that need only the example, in the order they run.
EXAMPLE_FILTERS: tuple[ExampleFilter, ...] = (
    empty_output,
    dangling_colon,
    input_too_long,
    output_too_long,
    output_equals_input,
)


def match_label(output: str, labels: Sequence[str]) -> str | None:
    """The listed label ``output`` names, in the list's spelling, or None.

    Case, surrounding quotes, markdown and punctuation do not matter: ``**positive**.``
    names "Positive".
    """
    wanted = _normalise(clean_label(output))
    if not wanted:
        return None
    for label in labels:
        if _normalise(clean_label(label)) == wanted:
            return label.strip()
    return None


def label_not_listed(example: Example, labels: Sequence[str]) -> str | None:
    """Reject a class label that is not one of the labels the model listed first.

    The listed labels define the task's label set; an example with another label
    ("Mixed" when only Positive and Negative were listed) is off the set.
    """
    if match_label(example.output, labels) is not None:
        return None
    listed = ", ".join(label.strip() for label in labels)
    return f"the label {example.output.strip()!r} is not one of the listed labels: {listed}"


# ----------------------------------------------------------------------- whole-task rules


def _check_example(
    example: Example, settings: InstanceSettings, labels: Sequence[str] | None
) -> Example | InstanceRejection:
    """Run the per-example filters; return the example (label normalised) or a rejection."""
    for check in EXAMPLE_FILTERS:
        reason = check(example, settings)
        if reason is not None:
            return InstanceRejection(example, check.__name__, reason)
    if labels:
        reason = label_not_listed(example, labels)
        if reason is not None:
            return InstanceRejection(example, label_not_listed.__name__, reason)
        listed = match_label(example.output, labels)
        if listed is not None:
            return replace(example, output=listed)
    return example


def _drop_duplicates(examples: Sequence[Example]) -> tuple[list[Example], list[InstanceRejection]]:
    """Keep the first of examples with the same input and output; reject the repeats."""
    kept: list[Example] = []
    rejected: list[InstanceRejection] = []
    seen: set[tuple[str, str]] = set()
    for example in examples:
        key = (_normalise(example.input), _normalise(example.output))
        if key in seen:
            detail = "the same input and output as an earlier example of this task"
            rejected.append(InstanceRejection(example, "duplicate", detail))
        else:
            seen.add(key)
            kept.append(example)
    return kept, rejected


def _drop_conflicts(examples: Sequence[Example]) -> tuple[list[Example], list[InstanceRejection]]:
    """Reject every example whose input also appears with a different output.

    There is no telling which answer is right, so none is kept. Examples with an empty
    input are exempt: a task without input ("Write a poem about rain") has many good
    answers to the same empty input.
    """
    outputs: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for example in examples:
        key = _normalise(example.input)
        if key:
            outputs[key].add(_normalise(example.output))
            counts[key] += 1
    kept: list[Example] = []
    rejected: list[InstanceRejection] = []
    for example in examples:
        key = _normalise(example.input)
        if key and len(outputs[key]) > 1:
            detail = (
                f"the same input appears {counts[key]} times in this task with "
                f"{len(outputs[key])} different outputs"
            )
            rejected.append(InstanceRejection(example, "conflicting_outputs", detail))
        else:
            kept.append(example)
    return kept, rejected


def filter_instances(
    examples: Sequence[Example],
    settings: InstanceSettings,
    *,
    labels: Sequence[str] | None = None,
    truncated: bool = False,
) -> tuple[list[Example], list[InstanceRejection]]:
    """Split one task's examples into those kept and those rejected, each with its reason.

    Order: the per-example filters (``truncated`` for the last example when the answer
    hit the length limit, then :data:`EXAMPLE_FILTERS`, then ``label_not_listed`` when
    ``labels`` is non-empty), then ``duplicate``, then ``conflicting_outputs``. Every
    example is rejected at most once, by the first rule that objects. Kept examples keep
    their order; an output that names a listed label is rewritten in the list's spelling.
    """
    checked: list[Example] = []
    rejected: list[InstanceRejection] = []
    for index, example in enumerate(examples):
        if truncated and index == len(examples) - 1:
            detail = "the answer hit the length limit, so its last example may be cut off"
            rejected.append(InstanceRejection(example, "truncated", detail))
            continue
        outcome = _check_example(example, settings, labels)
        if isinstance(outcome, InstanceRejection):
            rejected.append(outcome)
        else:
            checked.append(outcome)
    unique, repeats = _drop_duplicates(checked)
    kept, conflicts = _drop_conflicts(unique)
    return kept, [*rejected, *repeats, *conflicts]
