"""Turn the text a model wrote in the classify and instance stages into records.

Three answers are parsed here, one per prompt in ``prompts/<lang>/``:

* classify: the prompt ends with ``Is it classification?`` (``是否为分类任务？``) and the
  model answers Yes or No, sometimes with a reason, markdown or an echo of the question.
  :func:`parse_yes_no` reads the first answer word.
* input-first: the prompt ends with ``Task: <instruction>`` and the model writes
  ``Example 1`` / ``Input:`` / ``Output:`` blocks (``示例1`` / ``输入：`` / ``输出：``). A
  completion model continues the prompt and may start a new ``Task:`` after its examples;
  a chat model adds a preamble, bold labels, headings and a sign-off.
  :func:`parse_input_first` returns the :class:`Example` records.
* output-first: for classification tasks the model lists the labels on a ``Class
  labels:`` line, then writes ``Class label: X`` followed by an input of that class.
  :func:`parse_output_first` returns the listed labels and the examples, with the label
  as each example's output.

Model output is untrusted: the parsers are lenient about shape, never raise, and return
nothing when they find nothing. Whether an example is *good* (not empty, not a
duplicate, a listed label) is for :mod:`selfinstruct.filters.instances`, which records
why it dropped one; so an example with an input but no output is returned, not skipped.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from selfinstruct.text.labels import INPUT, OUTPUT, index_of_word, label_pattern
from selfinstruct.text.tasks import clean_no_input

__all__ = ["Example", "clean_label", "parse_input_first", "parse_output_first", "parse_yes_no"]


@dataclass(frozen=True)
class Example:
    """One instance of a task. For output-first (classification) tasks the output is the
    class label the model wrote the input for."""

    input: str
    output: str


# --------------------------------------------------------------------------- patterns

# ASCII and full-width digits, at most three of them.
_NUM = "[0-9０-９]{1,3}"
# Markdown emphasis a chat model wraps around labels: *, **, ***, __.
_EMPH = r"(?:\*{1,3}|_{2})"
# Where a label may start: indentation, a bullet or list number, a markdown heading, emphasis.
_LINE_START = (
    rf"^[ \t]*(?:(?:[-*+•]|[0-9]{{1,2}}[.)])[ \t]+)?(?:\#{{1,6}}[ \t]*)?(?:{_EMPH}[ \t]*)?"
)
# The colon after a label, with emphasis closing before or after it: "**Input:**", "**Input**:".
_LABEL_COLON = rf"(?:[ \t]*{_EMPH})?[ \t]*[:：](?:[ \t]*{_EMPH})?[ \t]*"

_FENCE_LINE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})")
# A line that only separates: markdown rules and the ### of Alpaca-style prompts.
_RULE_LINE = re.compile(r"^[ \t]*(?:#{3,}|-{3,}|\*{3,}|_{3,}|={3,})[ \t]*$")

# "Task:" at the start of a line: a completion model has started the next task.
_TASK_LINE = re.compile(rf"{_LINE_START}(?:task|任务|任務){_LABEL_COLON}", re.IGNORECASE)

_EXAMPLE_HEADER = re.compile(
    rf"""
    ^[ \t]*
    (?P<heading>\#{{1,6}}[ \t]*)?
    (?P<open>{_EMPH}[ \t]*)?
    (?:example|示例|例子|样例|樣例|范例|範例|例)[ \t]*[#＃]?[ \t]*(?P<number>{_NUM})
    [ \t]*(?:{_EMPH})?
    [ \t]*(?P<sep>[:：.．)）\-–—])?
    [ \t]*(?:{_EMPH})?
    [ \t]*(?P<rest>.*?)[ \t]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)

# The fields of an example, in the order input-first writes them.
_FIELDS = (INPUT, OUTPUT)
_FIELD_OF_LABEL = index_of_word(_FIELDS)
_INPUT = _FIELDS.index(INPUT)

_FIELD_LABEL = re.compile(
    rf"""
    {_LINE_START}
    (?P<label>{label_pattern(_FIELDS)})
    (?:[ \t]*{_NUM})?
    {_LABEL_COLON}
    (?P<rest>.*?)[ \t]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)

_LABEL_LIST = re.compile(
    rf"""
    {_LINE_START}
    (?:(?:possible|all|the|available)[ \t]+)?
    (?:class[ \t]*labels|labels|classes|categories
      |类别列表|類別列表|类别标签列表|标签列表|標籤列表|所有类别|可能的类别|可选类别|候选类别)
    {_LABEL_COLON}
    (?P<rest>.*?)[ \t]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
_CLASS_LABEL = re.compile(
    rf"""
    {_LINE_START}
    (?:class[ \t]*label|label|类别标签|类别|類別|标签|標籤|分类|分類)
    (?:[ \t]*{_NUM})?
    {_LABEL_COLON}
    (?P<rest>.*?)[ \t]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Between the labels of a list: "A, B, C", "A、B、C", "A / B", "A or B", "A；B", "A或B".
_LABEL_SEPARATOR = re.compile(r"[,，、/;；|]|\s+or\s+|或者|或", re.IGNORECASE)
_LEADING_CONJUNCTION = re.compile(r"^(?:and|or)\s+", re.IGNORECASE)
_LAST_CONJUNCTION = re.compile(r"(?P<left>.*?\S)(?:\s+and\s+|以及|和)(?P<right>\S.*)", re.I)
# A bullet or number in front of a label written on a line of its own under "Class labels:".
_ITEM_MARKER = re.compile(r"^\s*(?:[-*+•]|[0-9]{1,2}[.)、])\s+")


# The last paragraph of a chat answer that is talking to the user, not part of an example.
_SIGN_OFF = re.compile(
    r"""^\W*(?:
        i\ hope|hope\ (?:this|these|that|it)|let\ me\ know|feel\ free
      | if\ you\ (?:need|want|would\ like|'d\ like)|these\ examples
      | i\ can\ (?:also\ )?(?:write|make|generate|provide)
      | 希望(?:这些|以上|这|对)|如果(?:你|您)?(?:还)?(?:需要|想要)|如需
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# ----------------------------------------------------------------------------- yes / no

# A reasoning model's trace, when the backend left it in the text.
_THINK_END = "</think>"
_ANSWER_PREFIX = re.compile(
    r"^(?:final\s+answer|answer|a|decision|verdict|classification|result|label"
    r"|答案|回答|答|结论|判断|结果)\s*[:：]",
    re.IGNORECASE,
)
_QUESTION_ECHO = re.compile(
    r"^(?:is\s+it\s+(?:a\s+)?classification(?:\s+task)?\s*\??|是否为分类任务\s*[？?]?)",
    re.IGNORECASE,
)
_ANSWER_DECORATION = " \t\u3000*_`\"'“”‘’「」『』>#-•:："
_EN_UNDECIDED = re.compile(r"^(?:yes|no)\s*(?:/|\bor\b)\s*(?:yes|no)\b", re.IGNORECASE)
_EN_ANSWER = re.compile(r"^(yes|no)(?![a-z])", re.IGNORECASE)
# 否 / 不是 / 不属于 / 不算 / a lone 不 before punctuation: all mean no.
_ZH_NO = re.compile(r"^(?:否|不是|不属于|不屬於|不算|不(?=[\s，,。.！!、；;]|$))")
# 是 / 是的 / 是分类任务 / 属于 mean yes; 是否 is the question word, not an answer.
_ZH_YES = re.compile(r"^(?:是(?!否)|属于|屬於)")


def _strip_decoration(text: str) -> str:
    """Drop the markdown, quotes and bullets a chat model puts around a short answer."""
    return text.strip().lstrip(_ANSWER_DECORATION).strip()


def _answer_part(line: str) -> str:
    """The line without decoration, an ``Answer:`` prefix or an echo of the question."""
    text = _strip_decoration(line)
    for pattern in (_ANSWER_PREFIX, _QUESTION_ECHO, _ANSWER_PREFIX):
        text = _strip_decoration(pattern.sub("", text, count=1))
    return text


def _read_answer(text: str) -> bool | None:
    """Yes / No (English or Chinese) at the start of ``text``, else None."""
    if _EN_UNDECIDED.match(text):
        return None
    english = _EN_ANSWER.match(text)
    if english:
        return english.group(1).lower() == "yes"
    if _ZH_NO.match(text):
        return False
    if _ZH_YES.match(text):
        return True
    return None


def parse_yes_no(text: str) -> bool | None:
    """Read the first answer word of a classify answer: True for yes, False for no.

    Accepts ``Yes``, ``no.``, ``Yes, because...``, ``**Yes**``, ``Answer: No``, ``是``,
    ``是的``, ``是。它...``, ``否``, ``不是分类任务`` and an echo of the question before the
    answer. Only the first line with content decides, so a completion model that goes on
    to invent the next task does not change the answer. Anything else (empty text,
    "Maybe", "是否...") is None: the caller records that the answer was unreadable.
    """
    if _THINK_END in text:
        text = text.rsplit(_THINK_END, 1)[1]
    for line in text.splitlines():
        answer = _answer_part(line)
        if not answer or _TASK_LINE.match(answer):
            continue
        return _read_answer(answer)
    return None


# ------------------------------------------------------------------------ shared helpers


def _value(lines: Sequence[str]) -> str:
    """The lines of one value, kept verbatim apart from the outside.

    Leading and trailing blank lines and trailing separator rules (``---``, ``###``
    between examples) are dropped; a block that is indented as a whole under its label
    is dedented, so code keeps its relative indentation; the result is stripped.
    """
    kept = list(lines)
    while kept and (not kept[-1].strip() or _RULE_LINE.match(kept[-1])):
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(_dedent(kept)).strip()


def _dedent(lines: Sequence[str]) -> list[str]:
    """Remove the indentation every non-blank line shares; other whitespace stays."""
    filled = [line for line in lines if line.strip()]
    if not filled:
        return list(lines)
    indent = filled[0][: len(filled[0]) - len(filled[0].lstrip())]
    for line in filled[1:]:
        while indent and not line.startswith(indent):
            indent = indent[:-1]
    if not indent:
        return list(lines)
    return [line[len(indent) :] if line.startswith(indent) else line for line in lines]


def _without_sign_off(lines: list[str]) -> list[str]:
    """Drop a closing paragraph such as "I hope these help!" from the last value."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and lines[start - 1].strip():
        start -= 1
    if start == 0 or lines[start] != lines[start].lstrip():
        return lines
    if _SIGN_OFF.match(lines[start]):
        return lines[:start]
    return lines


_FenceRole = Literal["free", "content", "skip"]


class _Fences:
    """Keeps code inside a value from being read as labels.

    A fence that opens while a value is being written protects every line up to its
    closing fence: ``Output:`` printed by a program, or ``Example 2`` in a docstring, is
    content there. A fence met outside any value wraps the whole answer or an example
    (a chat model's habit) and is skipped, and so is the fence that closes that wrapper.
    """

    def __init__(self, lines: Sequence[str]) -> None:
        self._fence_lines = [index for index, line in enumerate(lines) if _FENCE_LINE.match(line)]
        self._protected_until = -1
        self._wrapped = False

    def _next_fence(self, index: int) -> int | None:
        """The first fence line after line ``index``, if any."""
        position = bisect.bisect_right(self._fence_lines, index)
        return self._fence_lines[position] if position < len(self._fence_lines) else None

    def role(self, index: int, line: str, value_open: bool) -> _FenceRole:
        """How to read line ``index``: as value text ("content"), not at all ("skip", a
        wrapper fence), or normally ("free")."""
        if index <= self._protected_until:
            return "content"
        if not _FENCE_LINE.match(line):
            return "free"
        if not value_open:
            self._wrapped = True
            return "skip"
        closing = self._next_fence(index)
        if closing is None:
            # The wrapper's closing fence, or code cut off by the length limit.
            return "skip" if self._wrapped else "content"
        self._protected_until = closing
        return "content"


# ------------------------------------------------------------------------- input-first


@dataclass
class _Draft:
    """The lines of one example, in the order its labels came."""

    loose: list[str] = field(default_factory=list)  # lines before any label
    fields: list[list[str] | None] = field(default_factory=lambda: [None, None])
    current: int | None = None

    def start(self, field_index: int, first_line: str) -> None:
        """Begin the input or the output with the text on the label's own line."""
        self.fields[field_index] = [first_line]
        self.current = field_index

    def add(self, line: str) -> None:
        """Append a line to the field being written, or to the loose lines."""
        target = self.loose if self.current is None else self.fields[self.current]
        if target is not None:
            target.append(line)

    def last_lines(self) -> list[str]:
        """The lines written last: where a chat model's sign-off ends up."""
        if self.current is None:
            return self.loose
        return self.fields[self.current] or []


def _match_header(line: str, expected: int) -> str | None:
    """Recognise an example header; return the text after it that still counts, or None.

    ``Example 1``, ``**Example 1:**``, ``### Example 1 -``, ``示例1``, ``示例 1：``, ``例1：``
    alone on a line are headers. With text after them they are headers when the text is
    a label (``Example 1: Input: ...``), a title in a decorated header (``**Example 2:
    A haiku**``, which is dropped), or the next number is the expected one, so that a
    line "Example 1: 2 + 2 = 4" inside the output of example 3 stays content.
    """
    match = _EXAMPLE_HEADER.match(line)
    if match is None:
        return None
    rest = match.group("rest")
    if not rest or _FIELD_LABEL.match(rest):
        return rest
    if rest.startswith(("(", "（")) or match.group("heading") or match.group("open"):
        return ""  # "Example 1 (no input)", "**Example 2: A haiku**": a title
    if match.group("sep") and int(match.group("number")) == expected:
        return rest
    return None


def _draft_example(draft: _Draft, headed: bool) -> Example | None:
    """The example a draft holds, or None when it holds nothing.

    Under an ``Example N`` header, text without any label is the output (a task with no
    input), and text before ``Output:`` without an ``Input:`` label is the input. Without
    headers, text before the first label is a preamble.
    """
    input_lines, output_lines = draft.fields
    if headed and input_lines is None and output_lines is None:
        output_lines = draft.loose
    elif headed and input_lines is None:
        input_lines = draft.loose
    example_input = clean_no_input(_value(input_lines or []))
    example_output = _value(output_lines or [])
    if not example_input and not example_output:
        return None
    return Example(example_input, example_output)


def _scan_input_first(lines: Sequence[str], headed: bool) -> tuple[list[_Draft], bool]:
    """Split lines into drafts; also say whether any example header was seen.

    With ``headed`` the drafts start at headers and labels only move forward inside one
    (an output may quote "Input: ..."). Without, a label that does not move forward
    starts the next example.
    """
    drafts: list[_Draft] = []
    draft: _Draft | None = None
    seen_header = False
    fences = _Fences(lines)
    for index, line in enumerate(lines):
        value_open = draft is not None and (headed or draft.current is not None)
        role = fences.role(index, line, value_open)
        if role == "skip":
            continue
        if role == "content":
            if draft is not None:
                draft.add(line)
            continue
        if draft is not None and _TASK_LINE.match(line):
            break
        header = _match_header(line, len(drafts) + 1) if headed else None
        if header is not None:
            seen_header = True
            draft = _Draft()
            drafts.append(draft)
            line = header
        label = _FIELD_LABEL.match(line)
        if label is None:
            if draft is not None:
                draft.add(line)
            continue
        field_index = _FIELD_OF_LABEL[label.group("label").lower()]
        moves_forward = draft is not None and (draft.current is None or field_index > draft.current)
        if draft is None or (not moves_forward and not headed):
            draft = _Draft()
            drafts.append(draft)
        elif not moves_forward:
            draft.add(line)
            continue
        draft.start(field_index, label.group("rest"))
    if drafts:
        last = drafts[-1].last_lines()
        last[:] = _without_sign_off(last)
    return drafts, seen_header


def parse_input_first(text: str) -> list[Example]:
    """Return the examples of an input-first answer, in order.

    Examples start at headers (``Example 1``, ``**Example 2:**``, ``示例3``, ``例1：``);
    without any header, each ``Input:`` / ``Output:`` pair (or a lone ``Output:``) is an
    example. Labels may be bold, bulleted, in Chinese, with a full-width colon, and have
    their value on the same line or the lines below. Values keep their inner lines,
    blank lines and code fences; ``Input: None`` / ``N/A`` / ``<noinput>`` / ``无``
    become "". A ``Task:`` line after the examples (a completion model starting the next
    task) ends the answer, and a closing "I hope this helps!" is dropped. An example
    with an input and no output is returned with output "" so the filters can say why
    it was dropped.
    """
    lines = text.splitlines()
    drafts, seen_header = _scan_input_first(lines, headed=True)
    headed = seen_header
    if not seen_header:
        drafts, _ = _scan_input_first(lines, headed=False)
    examples = (_draft_example(draft, headed) for draft in drafts)
    return [example for example in examples if example is not None]


# ------------------------------------------------------------------------ output-first

# Quotes and brackets that wrap a whole label: "Positive", **Positive**, [Positive], 「正面」.
_LABEL_WRAPPERS: tuple[tuple[str, str], ...] = (
    ('"', '"'),
    ("'", "'"),
    ("`", "`"),
    ("“", "”"),
    ("‘", "’"),
    ("「", "」"),
    ("『", "』"),
    ("《", "》"),
    ("<", ">"),
    ("(", ")"),
    ("（", "）"),
    ("[", "]"),
    ("【", "】"),
)
# Marks around or after a label that are never part of it: markdown and sentence punctuation.
_LABEL_EDGE_NOISE = " \t\r\n\u3000*_.,;:!?。，；：！？、"


def clean_label(text: str) -> str:
    """A class label without the quotes, markdown, brackets and punctuation around it.

    ``**Positive**``, ``"Positive".``, ``[Positive]`` and ``「正面」。`` all give the bare
    label; brackets inside it stay ("Neutral (mixed)").
    """
    label = text.strip(_LABEL_EDGE_NOISE)
    while True:
        for opening, closing in _LABEL_WRAPPERS:
            inner = label[len(opening) : -len(closing)]
            if (
                len(label) > len(opening) + len(closing)
                and label.startswith(opening)
                and label.endswith(closing)
                and opening not in inner
                and closing not in inner
            ):
                label = inner.strip(_LABEL_EDGE_NOISE)
                break
        else:
            return label


def _split_last_conjunction(parts: list[str]) -> list[str]:
    """Split "Green and Blue" at the end of "Red, Green and Blue" (also 和 / 以及).

    Only the last part of a list that already has a separator is split, so that a
    single label such as "Rock and Roll" stays whole.
    """
    if len(parts) < 2:
        return parts
    match = _LAST_CONJUNCTION.fullmatch(parts[-1].strip())
    if match is None:
        return parts
    return [*parts[:-1], match.group("left"), match.group("right")]


def _split_labels(text: str) -> list[str]:
    """The labels on one line of a label list, cleaned, in order."""
    labels = []
    parts = _split_last_conjunction(_LABEL_SEPARATOR.split(_ITEM_MARKER.sub("", text)))
    for part in parts:
        label = clean_label(_LEADING_CONJUNCTION.sub("", part.strip()))
        if label:
            labels.append(label)
    return labels


@dataclass
class _LabelList:
    """The ``Class labels:`` line, or the lines under it when it has no labels itself."""

    labels: list[str] = field(default_factory=list)
    collecting: bool = False

    def start(self, rest: str) -> None:
        """Take the labels on the list line; with none there, read them from the next lines."""
        self.labels.extend(_split_labels(rest))
        self.collecting = not self.labels

    def take(self, line: str) -> bool:
        """Read labels from a line under an empty list line; False once the list is over.

        The first line with text may hold the labels ("Positive, Negative"); after that
        only bullet or numbered lines do, so "Here are the examples:" ends the list.
        """
        if not self.collecting:
            return False
        if not line.strip():
            self.collecting = not self.labels
            return True
        if self.labels and not _ITEM_MARKER.match(line):
            self.collecting = False
            return False
        self.labels.extend(_split_labels(line))
        return True


@dataclass
class _Pair:
    """One class label and the input written for it, in whichever order they came."""

    label: str | None = None
    input_lines: list[str] | None = None
    loose: list[str] = field(default_factory=list)  # unprefixed lines after the label
    label_first: bool = False
    awaiting_label: bool = False  # "Class label:" with the label on the next line
    in_input: bool = False

    def set_label(self, text: str) -> None:
        """Record the label (awaiting it on the next line when ``text`` is empty)."""
        self.label = clean_label(text)
        self.label_first = self.input_lines is None
        self.awaiting_label = not self.label
        self.in_input = False

    def start_input(self, first_line: str) -> None:
        """Begin the input with the text on the ``Input:`` line."""
        self.input_lines = [first_line]
        self.in_input = True
        self.awaiting_label = False

    def add(self, line: str) -> None:
        """A line without a prefix: the label awaited, a line of the input, or chatter."""
        if self.awaiting_label and line.strip():
            self.set_label(line)
        elif self.in_input and self.input_lines is not None:
            self.input_lines.append(line)
        elif self.label is not None and self.input_lines is None:
            self.loose.append(line)

    def last_lines(self) -> list[str]:
        """The lines written last: where a chat model's sign-off ends up."""
        return self.input_lines if self.input_lines is not None else self.loose

    def example(self) -> Example | None:
        """The pair as an Example (input, label), or None when it holds nothing."""
        lines = self.input_lines if self.input_lines is not None else self.loose
        example_input = clean_no_input(_value(lines))
        label = self.label or ""
        if not example_input and not label:
            return None
        return Example(example_input, label)


def _is_input_label(line: str) -> re.Match[str] | None:
    """An ``Input:`` / ``输入：`` label (an ``Output:`` line is text in output-first)."""
    match = _FIELD_LABEL.match(line)
    return match if match and _FIELD_OF_LABEL[match.group("label").lower()] == _INPUT else None


def _is_list_in_disguise(rest: str, label_list: _LabelList, pairs: Sequence[_Pair]) -> bool:
    """Whether a first ``Class label: A, B, C`` / ``类别：正面、负面`` line is the label list.

    A model that skips the plural word still lists the labels first; a real label has
    no separators in it, and nothing was listed or paired before it.
    """
    return not pairs and not label_list.labels and len(_split_labels(rest)) > 1


def _next_pair(pairs: list[_Pair], inherit: bool) -> _Pair:
    """Open a new pair; a second input under one label keeps that label."""
    previous = pairs[-1] if pairs else None
    label = previous.label if inherit and previous is not None and previous.label_first else None
    pair = _Pair(label=label, label_first=label is not None)
    pairs.append(pair)
    return pair


def _scan_output_first(lines: Sequence[str]) -> tuple[list[str], list[_Pair]]:
    """Read the label list and the label/input pairs.

    A label line opens a new pair unless the open pair still lacks its label (the model
    wrote the input first); an input line opens a new pair unless the open pair still
    lacks its input. So both orders, and several inputs under one label, are read.
    """
    label_list = _LabelList()
    pairs: list[_Pair] = []
    seen_label_line = False
    fences = _Fences(lines)
    for index, raw in enumerate(lines):
        pair = pairs[-1] if pairs else None
        value_open = pair is not None and (pair.in_input or pair.label is not None)
        role = fences.role(index, raw, value_open)
        if role == "skip":
            continue
        if role == "content":
            if pair is not None:
                pair.add(raw)
            continue
        if (pairs or label_list.labels) and _TASK_LINE.match(raw):
            break
        line = raw
        header = _match_header(line, len(pairs) + 1)
        if header is not None:  # an "Example N" header closes the pair before it
            pair = _next_pair(pairs, inherit=False)
            line = header
        listed = None if pairs else _LABEL_LIST.match(line)
        single = _CLASS_LABEL.match(line)
        if single is not None and _is_list_in_disguise(single.group("rest"), label_list, pairs):
            listed, single = single, None
        if listed is not None:
            label_list.start(listed.group("rest"))
        elif single is not None:
            seen_label_line = True
            label_list.collecting = False
            if pair is None or pair.label is not None:
                pair = _next_pair(pairs, inherit=False)
            pair.set_label(single.group("rest"))
        elif (given := _is_input_label(line)) is not None:
            label_list.collecting = False
            if pair is None or pair.input_lines is not None:
                pair = _next_pair(pairs, inherit=True)
            pair.start_input(given.group("rest"))
        elif not label_list.take(line) and pair is not None:
            pair.add(line)
    if pairs:
        last = pairs[-1].last_lines()
        last[:] = _without_sign_off(last)
    return _unique(label_list.labels), pairs if seen_label_line else []


def _unique(labels: Sequence[str]) -> list[str]:
    """Labels in order, each once."""
    return list(dict.fromkeys(labels))


def parse_output_first(text: str) -> tuple[list[str], list[Example]]:
    """Return the listed labels and the examples of an output-first answer.

    The label list is a ``Class labels: A, B, C`` line (``Labels:``, ``类别列表：A、B、C``;
    separators ``,`` ``，`` ``、`` ``/`` ``;`` ``or`` ``或``) or the lines under an empty
    one; it is [] when the model wrote none, and the caller decides what that means.
    Each example starts at ``Class label: X`` (``Label:``, ``类别：``, ``标签：``) and its
    input follows after ``Input:`` (``输入：``) or on the lines below without a prefix;
    inputs may span several lines. A model that writes the input first and its label
    second is read too. Labels lose their quotes, markdown and trailing punctuation;
    each example's output is its label. An answer without any label line has no examples.
    """
    labels, pairs = _scan_output_first(text.splitlines())
    examples = (pair.example() for pair in pairs)
    return labels, [example for example in examples if example is not None]
