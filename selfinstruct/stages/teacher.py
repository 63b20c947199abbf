"""What goes to a teacher model with every prompt: one definition for distill and reason.

Both stages ask a big model to answer prompts (the user's rows, or instructions), and
people drive such a teacher the same way whichever stage they run: a system prompt,
stop strings, provider fields merged into the body (``repetition_penalty``, ``top_k``),
and a thinking model's reasoning switched on or off in the words its provider takes.
:class:`Teacher` holds those settings, checked once, and :meth:`Teacher.apply` puts them
on a request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Request
from selfinstruct.llm.thinking import ThinkingStyle, ThinkingSwitch, resolve_style, thinking_switch
from selfinstruct.runs.readers import read_text

#: The keywords (and flags) that make a :class:`Teacher`; ``system_file`` is read into
#: ``system``.
KEYWORDS = frozenset({"system", "system_file", "stop", "extra_body", "thinking",
                      "thinking_style", "thinking_budget"})


@dataclass(frozen=True)
class Teacher:
    """The teacher's settings besides sampling (see the module)."""

    system: str | None = None
    stop: tuple[str, ...] = ()
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    #: The reasoning switch: on, off, or None to leave the model's default.
    thinking: bool | None = None
    #: How the switch is sent; ``auto`` is made concrete for the server by
    #: :meth:`resolved` (``top-level`` for DashScope and SiliconFlow, else ``template``).
    thinking_style: ThinkingStyle = "auto"
    thinking_budget: int | None = None

    def __post_init__(self) -> None:
        if not all(self.stop):
            raise UserError("--stop must not be empty")

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Teacher:
        """From keywords named like the flags: ``system`` or ``system_file`` (not both),
        ``stop`` one string or several, ``extra_body`` a dict or its JSON, ``thinking``
        True / False or ``on`` / ``off``."""
        system_file = values.get("system_file")
        return cls(
            system=system_prompt(values.get("system"),
                                 Path(system_file) if system_file is not None else None),
            stop=_strings(values.get("stop")),
            extra_body=_extra_body(values.get("extra_body")),
            thinking=_switch(values.get("thinking")),
            thinking_style=values.get("thinking_style") or "auto",
            thinking_budget=values.get("thinking_budget"),
        )

    def resolved(self, spec: BackendSpec) -> Teacher:
        """``auto`` made concrete for ``spec``'s server, and the switch checked against
        it (a style or budget the backend cannot send is an error before any request)."""
        teacher = dataclasses.replace(
            self, thinking_style=resolve_style(self.thinking_style, spec.kind, spec.base_urls))
        teacher.switch()
        return teacher

    def switch(self) -> ThinkingSwitch:
        """The thinking switch as the request carries it."""
        style = "template" if self.thinking_style == "auto" else self.thinking_style
        return thinking_switch(self.thinking, style, self.thinking_budget)

    def apply(self, request: Request) -> Request:
        """``request`` with the system prompt, stop strings, body fields and the thinking
        switch (a ``/think`` soft switch goes after the prompt)."""
        switch = self.switch()
        enable = request.enable_thinking if switch.enable_thinking is None \
            else switch.enable_thinking
        return dataclasses.replace(
            request,
            prompt=request.prompt + switch.prompt_suffix,
            system=self.system if self.system is not None else request.system,
            stop=self.stop or request.stop,
            enable_thinking=enable,
            extra_body={**request.extra_body, **switch.extra_body, **self.extra_body},
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as ``config.json`` keeps them (flat, named like the flags)."""
        return {"system": self.system, "stop": list(self.stop),
                "extra_body": dict(self.extra_body), "thinking": self.thinking,
                "thinking_style": self.thinking_style,
                "thinking_budget": self.thinking_budget}


def system_prompt(text: str | None, path: Path | None) -> str | None:
    """The system message from ``--system`` or ``--system-file`` (not both)."""
    if text is not None and path is not None:
        raise UserError("give the system prompt with --system or --system-file, not both")
    if path is not None:
        text = read_text(path, "--system-file").strip()
        if not text:
            raise UserError(f"{path}: the system prompt is empty")
    return text or None


def parse_extra_body(text: str | None) -> dict[str, Any]:
    """``--extra-body`` JSON as a dict: the fields to merge into every request."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"--extra-body is not valid JSON ({err.msg} at column {err.colno}); "
                        """write e.g. --extra-body '{"repetition_penalty": 1.05}'""") from None
    if not isinstance(value, dict):
        raise UserError("--extra-body must be a JSON object of request fields")
    return value


def _strings(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``stop=``: one string or several."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _extra_body(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra_body=``: a dict, or the JSON the flag takes."""
    if value is None or isinstance(value, str):
        return parse_extra_body(value)
    return dict(value)


def _switch(value: bool | str | None) -> bool | None:
    """``thinking=``: True / False, or the flag's ``on`` / ``off``."""
    if value is None or isinstance(value, bool):
        return value
    if value not in ("on", "off"):
        raise UserError(f"--thinking {value}: expected on or off")
    return value == "on"
