"""Turn the text a model wrote into candidate tasks.

Two prompt shapes are parsed here:

* Self-Instruct: the prompt lists ``Task 1: ...`` to ``Task 8: ...`` and ends with
  ``Task 9:``. A completion model continues with the text of task 9 (no marker) and then
  ``Task 10: ...``; a chat model writes a list of its own in whatever shape it likes
  (``1.``, ``**1.**``, ``任务1：``, ``1、`` ...), often with a preamble and a sign-off.
  :func:`parse_numbered_list` returns the instructions.
* Alpaca: the prompt shows ``###``-separated blocks of ``N. Instruction:`` /
  ``N. Input:`` / ``N. Output:`` and ends with ``###\\nN. Instruction:``.
  :func:`parse_alpaca_tasks` returns :class:`Candidate` records.

Model output is untrusted: the parsers are lenient about shape, never raise, and return
an empty list when they find nothing. Whether a candidate is *good* is for the filters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from selfinstruct.language import is_cjk_char
from selfinstruct.text.labels import INPUT, INSTRUCTION, OUTPUT, index_of_word, label_pattern

__all__ = ["Candidate", "parse_alpaca_tasks", "parse_numbered_list"]


@dataclass(frozen=True)
class Candidate:
    """One task a model proposed, before any filtering."""

    instruction: str
    input: str = ""
    output: str = ""


# --------------------------------------------------------------------------- patterns

# ASCII and full-width digits; at most three of them so a year ("2023.") is not a marker.
_DIGIT = "[0-9０-９]"
_NUM = rf"{_DIGIT}{{1,3}}"
# Markdown emphasis a chat model wraps around markers and titles: *, **, ***, __.
_EMPH = r"(?:\*{1,3}|_{2})"

_NUMBERED_MARKER = re.compile(
    rf"""
    ^(?P<indent>[ \t]*)
    (?P<heading>\#{{1,6}}[ \t]*)?
    (?:(?P<open>{_EMPH})[ \t]*)?
    (?:
        # Task 9:  Task 9.  **Task 9**:  任务1：  任务 1:  Task 9 (alone on its line)
        (?P<task>(?:task|任务|任務)[ \t]*[#＃]?[ \t]*(?P<task_n>{_NUM})
            (?:[ \t]*(?P<task_close>{_EMPH}))?
            [ \t]*(?:[:：.．)）\-–—]|(?=[ \t]*(?:{_EMPH}[ \t]*)?$)))
        # 第1条：  第 2 个.
      | (?P<ordinal>第[ \t]*(?P<ordinal_n>{_NUM})[ \t]*[条條个個项項题題][ \t]*[:：.．、]?)
        # (1)  （1）
      | (?P<paren>[(（][ \t]*(?P<paren_n>{_NUM})[ \t]*[)）])
        # 1.  1 .  1)  1、  1：   (but not 3.5 or 10:30)
      | (?P<bare>(?P<bare_n>{_NUM})[ \t]*
            (?:[.．](?!{_DIGIT})|[)）]|、|[:：](?!{_DIGIT})))
    )
    # the closing half of **1.** — only when the marker opened emphasis, so that the
    # opening ** of "1. **Title**: text" stays with the title.
    (?(open)(?:[ \t]*(?P<close>{_EMPH}))?)
    [ \t]*
    (?P<rest>.*)$
    """,
    re.IGNORECASE | re.VERBOSE,
)

_BULLET_MARKER = re.compile(r"^(?P<indent>[ \t]*)[-*+•·●▪◦–—][ \t]+(?P<rest>.*)$")

# A line that only separates: markdown rules and the ### of the Alpaca prompt.
_RULE_LINE = re.compile(r"^[ \t]*(?:#{3,}|-{3,}|\*{3,}|_{3,}|={3,})[ \t]*$")
# A code fence a chat model sometimes wraps the whole list in.
_FENCE_LINE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[\w+-]*[ \t]*$")

# How a chat model opens its answer ("Sure! ...", "Here are 10 more tasks.", "好的，...").
_PREAMBLE_START = re.compile(
    r"""^\W*(?:
        (?:sure|certainly|of\ course|absolutely|okay|ok)[ \t]*[,.!:，。！]
      | here(?:'s|\ is|\ are|'re)\ (?:some|the|a\ few|a\ list|more|\d+|my|several|new|another)\b
      | 好的|当然|以下是|下面是
      | (?:i'm|i\ am)\ sorry|sorry|i\ (?:can't|cannot|can\ not)|as\ an\ ai|抱歉|对不起|很抱歉
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# "Instruction: ..." / "任务：..." written inside a list item: the label is not the task.
_LABEL_PREFIX = re.compile(r"^(?:instruction|task|指令|任务)[ \t]*[:：][ \t]*(?=\S)", re.I)

# **Title**: text   **Title:** text   **Title** - text   (a chat model's label for the task)
_TITLE_PREFIX = re.compile(
    r"""^\*\*(?P<title>[^*\n]{1,80}?)
    (?:\*\*[ \t]*[:：]|[:：][ \t]*\*\*|\*\*[ \t]+[-–—][ \t])
    [ \t]*(?P<rest>\S.*)$""",
    re.DOTALL | re.VERBOSE,
)
# A head that is nothing but a bold title: **Creative writing**  **Poetry:**
_BOLD_TITLE = re.compile(r"^\*\*[^*\n]+\*\*[ \t]*[:：]?$")

_WRAPPERS: tuple[tuple[str, str], ...] = (
    ("***", "***"),
    ("**", "**"),
    ("__", "__"),
    ("*", "*"),
    ("`", "`"),
    ('"', '"'),
    ("'", "'"),
    ("“", "”"),
    ("‘", "’"),
    ("「", "」"),
    ("『", "』"),
)

# Fields of an Alpaca task, in the order a model writes them.
_FIELDS = (INSTRUCTION, INPUT, OUTPUT)
_INSTRUCTION = _FIELDS.index(INSTRUCTION)
_FIELD_OF_LABEL = index_of_word(_FIELDS)

_ALPACA_LABEL = re.compile(
    rf"""
    ^[ \t]*(?:\#{{1,6}}[ \t]*)?
    (?:{_EMPH}[ \t]*)?
    (?:(?P<num>{_NUM})[ \t]*[.．)）、]?[ \t]*)?
    (?:{_EMPH}[ \t]*)?
    (?P<label>{label_pattern(_FIELDS)})
    (?:[ \t]*(?P<num_after>{_NUM}))?
    (?:[ \t]*{_EMPH})?
    [ \t]*[:：]
    (?:[ \t]*{_EMPH})?
    [ \t]*(?P<rest>.*)$
    """,
    re.IGNORECASE | re.VERBOSE,
)

_TASK_WORD = "(?:task|example|任务|任務|示例|例子)"
# A line that starts the next task without a label: "**Task 2**", "### Example 3:", "### 4."
# A bare number is not one: "42" alone is a perfectly good output.
_ALPACA_TASK_HEADING = re.compile(
    rf"""
    ^[ \t]*
    (?:
        \#{{1,6}}[ \t]*(?:{_EMPH}[ \t]*)?(?:{_TASK_WORD}[ \t]*[#＃]?[ \t]*)?
      | {_EMPH}[ \t]*(?:{_TASK_WORD}[ \t]*[#＃]?[ \t]*)?(?={_NUM}[^\n]*{_EMPH})
      | (?:{_EMPH}[ \t]*)?{_TASK_WORD}[ \t]*[#＃]?[ \t]*
    )
    {_NUM}[ \t]*[.．:：)）]?
    (?:[ \t]*{_EMPH})?[ \t]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)

# What a model writes for "this task has no input", compared after removing _NO_INPUT_NOISE.
_NO_INPUT_VALUES = frozenset(
    {
        "noinput", "noinputrequired", "noinputneeded", "none", "nil", "null", "n/a", "na",
        "empty", "nothing", "notapplicable", "无", "空", "无输入", "無輸入", "没有输入",
        "无需输入", "不需要输入", "没有", "不适用",
    }
)
_NO_INPUT_NOISE = re.compile(r"[\s<>()\[\]{}（）【】《》〈〉*`\"'“”‘’.。_\-]")


# ---------------------------------------------------------------------- shared helpers


def _is_cjk_like(ch: str) -> bool:
    """CJK ideographs and kana plus CJK / full-width punctuation.

    Lines of Chinese text are joined without a space, and a line ending in "，" continues
    straight into the next ideograph just as an ideograph would.
    """
    code = ord(ch)
    return is_cjk_char(ch) or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF


def _join_lines(parts: Sequence[str]) -> str:
    """Join wrapped lines into one line: a space between them unless both sides are CJK."""
    joined = ""
    for part in parts:
        piece = part.strip()
        if not piece:
            continue
        if not joined:
            joined = piece
        elif _is_cjk_like(joined[-1]) and _is_cjk_like(piece[0]):
            joined += piece
        else:
            joined += " " + piece
    return joined


def _strip_wrapper_once(text: str) -> str:
    """Remove one pair of emphasis marks or quotes that wraps the whole text.

    A pair is removed only when its characters do not also occur inside, so that
    '"Hello," she said, "bye"' and 'Compute 2*3*4' keep their characters.
    """
    for opening, closing in _WRAPPERS:
        size = len(opening) + len(closing)
        if len(text) <= size or not (text.startswith(opening) and text.endswith(closing)):
            continue
        inner = text[len(opening) : -len(closing)]
        if opening in inner or closing in inner:
            continue
        return inner.strip()
    return text


def _strip_dangling_bold(text: str) -> str:
    """Drop a lone leading or trailing ``**`` left over from emphasis around a marker."""
    if text.count("**") % 2 == 1:
        if text.startswith("**"):
            return text[2:].strip()
        if text.endswith("**"):
            return text[:-2].strip()
    return text


def _strip_title_prefix(text: str) -> str:
    """``**Poem**: Write a haiku.`` -> ``Write a haiku.``: the bold label is not the task."""
    match = _TITLE_PREFIX.match(text)
    return match.group("rest") if match else text


def _clean_instruction(text: str) -> str:
    """Strip markdown decoration and quotes a chat model put around one instruction."""
    cleaned = _strip_title_prefix(text.strip())
    cleaned = _LABEL_PREFIX.sub("", _strip_dangling_bold(cleaned))
    while True:
        stripped = _strip_wrapper_once(cleaned)
        if stripped == cleaned:
            return cleaned
        cleaned = stripped


def _ends_with_colon(text: str) -> bool:
    """Whether text reads like a lead-in ("Here are some new tasks:", "以下是新任务：")."""
    return _clean_instruction(text).rstrip().endswith((":", "："))


def _indent_width(line: str) -> int:
    """Leading whitespace of a line, a tab counting as four spaces."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


# ------------------------------------------------------------------- numbered lists


@dataclass(frozen=True)
class _Marker:
    """A list marker found at the start of a line."""

    number: int | None  # None for bullets
    style: str  # "task", "ordinal", "paren", "bare" or "bullet"
    indent: int
    head: str  # the text after the marker on the same line
    heading: bool  # the marker line is a markdown heading ("### Task 1: Poetry")

    @property
    def titled(self) -> bool:
        """The head is only a title for the text below it: a heading or a bold phrase."""
        return self.heading or bool(_BOLD_TITLE.match(self.head))


@dataclass
class _Item:
    """A marker and the lines that follow it up to the next marker."""

    marker: _Marker
    body: list[str] = field(default_factory=list)


def _match_numbered(line: str) -> _Marker | None:
    """Recognise a numbered marker (``1.``, ``**Task 1:**``, ``任务1：``, ``第1条`` ...)."""
    match = _NUMBERED_MARKER.match(line)
    if match is None:
        return None
    style = next(name for name in ("task", "ordinal", "paren", "bare") if match.group(name))
    number = int(match.group(f"{style}_n"))
    head = match.group("rest").strip()
    opened = match.group("open")
    if opened and not (match.group("close") or match.group("task_close")):
        # "**1. Write a poem.**": the emphasis wraps the text, give it back to the text.
        head = opened + head
    return _Marker(number, style, _indent_width(line), head, bool(match.group("heading")))


def _match_bullet(line: str) -> _Marker | None:
    """Recognise a ``- item`` / ``* item`` / ``• item`` bullet."""
    match = _BULLET_MARKER.match(line)
    if match is None:
        return None
    head = match.group("rest").strip()
    return _Marker(None, "bullet", _indent_width(line), head, heading=False)


def _split_items(
    lines: Sequence[str], match_marker: Callable[[str], _Marker | None]
) -> tuple[list[str], list[_Item]]:
    """Split lines into the text before the first marker and one item per marker.

    The first marker fixes the list's style and indentation; a marker of another style
    or indented deeper is a sub-list inside an item ("Rank these: 1. ... 2. ...") and
    stays part of that item.
    """
    before: list[str] = []
    items: list[_Item] = []
    for raw in lines:
        line = "" if _RULE_LINE.match(raw) or _FENCE_LINE.match(raw) else raw
        marker = match_marker(line)
        if marker is not None and items:
            first = items[0].marker
            if marker.style != first.style or marker.indent > first.indent:
                marker = None
        if marker is not None:
            items.append(_Item(marker))
        elif items:
            items[-1].body.append(line)
        else:
            before.append(line)
    return before, items


def _without_trailing_chatter(item: _Item) -> list[str]:
    """The last item's body without the sign-off a chat model adds after the list.

    "I hope these help!" comes after a blank line and is not indented; an indented
    paragraph after a blank line is still part of the item, and so is the first paragraph
    under a markdown heading.
    """
    body = item.body
    seen_text = bool(item.marker.head) and not item.marker.heading
    for index, line in enumerate(body):
        if line.strip():
            if seen_text and index > 0 and not body[index - 1].strip() and line == line.lstrip():
                return body[:index]
            seen_text = True
    return body


def _item_text(item: _Item, body: Sequence[str]) -> str:
    """The instruction an item holds: its head and continuation lines, joined."""
    lines = [line for line in body if line.strip()]
    head = "" if item.marker.titled and lines else item.marker.head
    return _clean_instruction(_join_lines([head, *lines]))


def _leading_text_is_task(before: Sequence[str], items: Sequence[_Item], first_number: int) -> bool:
    """Whether the text before the first marker is the task the prompt left open.

    A completion model continues after "Task 9:" so its first task has no marker and the
    next one is numbered higher. A chat model that numbers its own list from 1 (or from
    9) puts a preamble there instead. So does any text that ends in a colon, opens like a
    chat answer ("Sure!", "Here are ...", "好的"), or runs over several paragraphs: the
    open task is written straight after the prompt, as one paragraph.
    """
    first = items[0].marker.number
    if first is None or first <= first_number:
        return False
    text = _join_lines(before)
    if not text or _ends_with_colon(text) or _PREAMBLE_START.match(text):
        return False
    return not _has_inner_blank_line(before)


def _has_inner_blank_line(lines: Sequence[str]) -> bool:
    """Whether a blank line separates two non-blank lines (the text has paragraphs)."""
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return any(not line.strip() for line in lines[filled[0] : filled[-1]]) if filled else False


def _lone_task(lines: Sequence[str]) -> list[str]:
    """The first paragraph of a marker-free answer, when it can be the open task."""
    paragraph: list[str] = []
    for line in lines:
        blank = not line.strip() or _RULE_LINE.match(line)
        if blank and paragraph:
            break
        if not blank:
            paragraph.append(line)
    text = _join_lines(paragraph)
    if not text or _ends_with_colon(text) or _PREAMBLE_START.match(text):
        return []
    if any(_match_bullet(line) for line in paragraph):
        return []
    instruction = _clean_instruction(text)
    return [instruction] if instruction else []


def _is_bullet_list(before: Sequence[str], items: Sequence[_Item]) -> bool:
    """Whether the whole answer is a bullet list (an optional lead-in line ending in ':').

    Bullets also appear inside numbered items and in chatter, so they count as markers
    only when nothing but bullets (and indented continuations) makes up the answer.
    """
    if not items:
        return False
    lead_in = _join_lines(before)
    if lead_in and not _ends_with_colon(lead_in):
        return False
    return all(
        not line.strip() or line != line.lstrip() for item in items[:-1] for line in item.body
    )


def parse_numbered_list(text: str, first_number: int) -> list[str]:
    """Return the instructions of a numbered list a model wrote, in order.

    ``first_number`` is the number the prompt left open (9 for "...Task 9:"): text
    before the first marker is that task when the model is visibly continuing the list.
    Numbers need not be consecutive. Preambles, sign-offs after a blank line, markdown
    emphasis, bold titles and surrounding quotes are dropped; continuation lines are
    joined. Text with no list at all is the open task alone (a completion model that
    wrote it and stopped), unless it reads as a preamble.
    """
    lines = text.splitlines()
    before, items = _split_items(lines, _match_numbered)
    if not items:
        before, items = _split_items(lines, _match_bullet)
        if not _is_bullet_list(before, items):
            return _lone_task(lines)
    texts: list[str] = []
    if _leading_text_is_task(before, items, first_number):
        texts.append(_clean_instruction(_join_lines(before)))
    for index, item in enumerate(items):
        body = _without_trailing_chatter(item) if index == len(items) - 1 else item.body
        texts.append(_item_text(item, body))
    return [instruction for instruction in texts if instruction]


# ------------------------------------------------------------------------ alpaca blocks


@dataclass(frozen=True)
class _Label:
    """An ``Instruction:`` / ``Input:`` / ``Output:`` label at the start of a line."""

    field_index: int
    number: int | None
    rest: str


@dataclass
class _Block:
    """The lines of each field of one task, in the order the labels came."""

    fields: tuple[list[str], list[str], list[str]] = field(default_factory=lambda: ([], [], []))
    current: int | None = None

    def start(self, field_index: int, first_line: str) -> None:
        """Begin a field with the text written on the label's own line."""
        self.current = field_index
        self.fields[field_index].append(first_line)

    def add(self, line: str) -> None:
        """Append a line to the field being written, if any (text before a label is lost)."""
        if self.current is not None:
            self.fields[self.current].append(line)


def _match_label(line: str) -> _Label | None:
    """Recognise ``4. Instruction:``, ``**Input:**``, ``Output 2:``, ``输入：`` ..."""
    match = _ALPACA_LABEL.match(line)
    if match is None:
        return None
    digits = match.group("num") or match.group("num_after")
    number = int(digits) if digits else None
    return _Label(_FIELD_OF_LABEL[match.group("label").lower()], number, match.group("rest"))


def _is_block_separator(line: str) -> bool:
    """``###``, a markdown rule, or a bare task heading such as ``**Task 2**``."""
    return bool(_RULE_LINE.match(line) or _ALPACA_TASK_HEADING.match(line))


def _label_applies(label: _Label, block: _Block, numbered: bool) -> bool:
    """Whether a label line starts a field rather than being text inside one.

    Fields only move forward (instruction, input, output), so an output that itself
    contains a line "Output: 5" keeps it. When the model numbers its labels, an
    unnumbered "Instruction:" inside an output is text too.
    """
    if block.current is None:
        return True
    if label.field_index == _INSTRUCTION:
        return label.number is not None or not numbered
    return label.field_index > block.current


def clean_no_input(text: str) -> str:
    """An input as the model wrote it, or "" when it says the task has no input
    (``<noinput>``, ``None``, ``N/A``, ``<无输入>``…).

    Text of brackets or quotes alone ("[]", '""') is a real input, an empty list or
    string, and stays.
    """
    normalised = _NO_INPUT_NOISE.sub("", text.lower())
    return "" if normalised and normalised in _NO_INPUT_VALUES else text


def _block_candidate(block: _Block) -> Candidate | None:
    """The block as a Candidate, or None when it has no instruction."""
    instruction_lines, input_lines, output_lines = block.fields
    instruction = _clean_instruction(_join_lines(instruction_lines))
    if not instruction:
        return None
    task_input = clean_no_input("\n".join(input_lines).strip())
    return Candidate(instruction, task_input, "\n".join(output_lines).strip())


def parse_alpaca_tasks(text: str, first_number: int) -> list[Candidate]:
    """Return the tasks of an Alpaca-style answer (``###`` blocks of labelled fields).

    ``first_number`` is the task the prompt left open ("###\\n4. Instruction:"): when
    the answer starts with text and then that task's Input or Output label, the text is
    its instruction. Blocks end at ``###`` lines, task headings, or a new Instruction
    label. Inputs such as ``<noinput>``, ``None``, ``N/A``, ``<无输入>`` become "";
    inputs and outputs are otherwise kept verbatim (stripped); a block without an
    instruction is dropped, one without an output gets "".
    """
    lines = text.splitlines()
    separators = [_is_block_separator(line) for line in lines]
    labels = [_match_label(line) for line in lines]  # no separator line has a label
    first = next((label for label in labels if label is not None), None)
    if first is None:
        return []
    numbered = first.number is not None
    blocks = [_Block()]
    if first.field_index != _INSTRUCTION and first.number in (None, first_number):
        blocks[0].start(_INSTRUCTION, "")
    for line, separator, label in zip(lines, separators, labels, strict=True):
        block = blocks[-1]
        if separator:
            blocks.append(_Block())
        elif label is not None and _label_applies(label, block, numbered):
            if label.field_index == _INSTRUCTION and block.current is not None:
                block = _Block()
                blocks.append(block)
            block.start(label.field_index, label.rest)
        else:
            block.add(line)
    return [candidate for block in blocks if (candidate := _block_candidate(block))]
