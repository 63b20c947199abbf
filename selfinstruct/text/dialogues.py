"""Read a conversation out of a model's answer, and write one back as text.

``dialogue --mode script`` asks the model for a whole conversation at once: as JSON
(``{"messages": [{"role", "content"}, …]}``, the schema of
:func:`~selfinstruct.text.schemas.dialogue_schema`) where the backend can hold it to a
schema, as text otherwise. Models answer in many shapes, so the reader is lenient: a
root list or any object with one list of turns, ``role``/``content`` or
``from``/``value`` keys, and in text ``User:`` / ``Assistant:`` (``用户：`` / ``助手：``,
``Human:``, ``**User:**`` …) paragraphs. The role names are made ``user`` and
``assistant``; whether they alternate is for the filters to say, not the reader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from selfinstruct.language import Language
from selfinstruct.text.structured import load_json_answer
from selfinstruct.text.thinking import split_thinking

__all__ = ["STOP_PHRASE", "Script", "Turn", "end_of_chat", "normalise_role", "parse_dialogue",
           "transcript", "turns_of"]

#: What the user simulator writes when the conversation has reached its end.
STOP_PHRASE = "[END]"

#: Role names models use, by what they mean.
_ROLES = {
    "user": "user", "human": "user", "customer": "user", "client": "user", "用户": "user",
    "用戶": "user", "提问者": "user", "问": "user",
    "assistant": "assistant", "gpt": "assistant", "ai": "assistant", "bot": "assistant",
    "model": "assistant", "助手": "assistant", "助理": "assistant", "答": "assistant",
    "system": "system", "系统": "system",
}
#: Keys under which a model puts its list of turns, checked before "the only list".
_LIST_KEYS = ("messages", "dialogue", "conversation", "conversations", "turns")
# A line that opens a turn: an optional bullet or bold marker, a role name, a colon.
_SPEAKER = re.compile(
    r"^[ \t>*#\-]*\**[ \t]*(?P<role>" + "|".join(sorted(map(re.escape, _ROLES), key=len,
                                                        reverse=True))
    + r")[ \t]*\**[ \t]*[:：][ \t]*\**[ \t]*(?P<rest>.*)$",
    re.IGNORECASE,
)
#: How :func:`transcript` names the speakers.
_SPEAKERS: dict[Language, dict[str, str]] = {
    "en": {"user": "User", "assistant": "Assistant", "system": "System"},
    "zh": {"user": "用户", "assistant": "助手", "system": "系统"},
}


class Turn(NamedTuple):
    """One message of a conversation: ``user`` or ``assistant`` (what the reader could
    not name keeps its own name, for the ``wrong_roles`` filter to report)."""

    role: str
    content: str


def normalise_role(name: str) -> str:
    """``Human`` → ``user``, ``gpt`` → ``assistant``; an unknown name lower-cased."""
    key = name.strip().strip("*").strip().lower()
    return _ROLES.get(key, key)


class Script(NamedTuple):
    """The turns read from a script answer (None: it held no conversation), and whether
    they were read as JSON rather than as text."""

    turns: list[Turn] | None
    json: bool


def parse_dialogue(text: str) -> Script:
    """The turns of a script answer (after any ``<think>`` block): JSON turns, else
    ``Speaker:`` paragraphs, else none."""
    answer = split_thinking(text).answer
    turns = turns_of(load_json_answer(answer))
    if turns is not None:
        return Script(turns, True)
    return Script(_text_turns(answer), False)


def turns_of(value: Any) -> list[Turn] | None:
    """The turns of a JSON value: a list of ``{role, content}`` (or ``{from, value}``)
    objects, or an object holding one such list."""
    items = _turn_list(value)
    if not items:
        return None
    turns = []
    for item in items:
        if not isinstance(item, dict):
            return None
        role = item.get("role", item.get("from", item.get("speaker")))
        content = item.get("content", item.get("value", item.get("text")))
        if not isinstance(role, str) or not isinstance(content, str | None):
            return None
        turns.append(Turn(normalise_role(role), (content or "").strip()))
    return turns


def _turn_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    for key in _LIST_KEYS:
        if isinstance(value.get(key), list):
            return list(value[key])
    lists = [item for item in value.values() if isinstance(item, list)]
    return lists[0] if len(lists) == 1 else None


def _text_turns(text: str) -> list[Turn] | None:
    """``User: …`` / ``Assistant: …`` paragraphs; lines without a speaker continue the
    turn before them (text before the first speaker is a preamble, dropped)."""
    turns: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _SPEAKER.match(line)
        if match is not None:
            turns.append((normalise_role(match["role"]), [match["rest"]]))
        elif turns:
            turns[-1][1].append(line)
    if not turns:
        return None
    return [Turn(role, "\n".join(lines).strip()) for role, lines in turns]


def end_of_chat(text: str, stop: str = STOP_PHRASE) -> tuple[str, bool]:
    """A simulated user's message without the stop phrase, and whether it was there."""
    if stop not in text:
        return text.strip(), False
    return text.replace(stop, "").strip(), True


def transcript(turns: Sequence[Turn], language: Language = "en") -> str:
    """The conversation as ``Speaker: text`` paragraphs, for a judge or a review sheet."""
    names = _SPEAKERS[language]
    return "\n\n".join(f"{names.get(turn.role, turn.role)}: {turn.content}" for turn in turns)
