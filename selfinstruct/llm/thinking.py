"""Turn a thinking model's reasoning on or off, in the words each provider understands.

Qwen3-style models switch thinking in their chat template, and providers expose that
switch differently:

* ``template``: ``chat_template_kwargs: {"enable_thinking": …}``, the field vLLM,
  SGLang and llama.cpp's server pass to the template (and the vLLM engine's
  ``LLM.chat`` takes);
* ``top-level``: ``enable_thinking`` (and ``thinking_budget``) at the top of the request
  body, as DashScope and SiliconFlow take them;
* ``prompt``: Qwen3's soft switch, ``/think`` or ``/no_think`` at the end of the user
  message, for servers that take neither field.

``auto`` picks ``top-level`` for the DashScope and SiliconFlow hosts and ``template``
everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

from selfinstruct.errors import UserError

ThinkingStyle = Literal["auto", "template", "top-level", "prompt"]

#: Hosts whose APIs take ``enable_thinking`` / ``thinking_budget`` at the top level.
TOP_LEVEL_HOSTS = ("dashscope", "siliconflow")

_SOFT_SWITCH = {True: "/think", False: "/no_think"}


@dataclass(frozen=True)
class ThinkingSwitch:
    """What a request carries to switch thinking: the template flag, body fields, and a
    suffix for the user message. The default switches nothing."""

    enable_thinking: bool | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    prompt_suffix: str = ""


def resolve_style(style: ThinkingStyle, kind: str, base_urls: Sequence[str]) -> ThinkingStyle:
    """``auto`` made concrete for this backend; a style the backend cannot send is an error."""
    if style == "auto":
        hosts = [urlparse(url).hostname or "" for url in base_urls]
        top_level = kind == "openai" and any(
            name in host for host in hosts for name in TOP_LEVEL_HOSTS)
        return "top-level" if top_level else "template"
    if style == "top-level" and kind != "openai":
        raise UserError(f"--thinking-style top-level is for APIs such as DashScope's; the "
                        f"{kind} backend takes --thinking-style template or prompt")
    return style


def thinking_switch(on: bool | None, style: ThinkingStyle, budget: int | None) -> ThinkingSwitch:
    """The switch for ``on`` (None: leave the model's default) in a resolved ``style``."""
    if budget is not None and style != "top-level":
        raise UserError("--thinking-budget is sent as DashScope's top-level thinking_budget; "
                        "it needs --thinking-style top-level (auto picks it for DashScope "
                        "and SiliconFlow URLs)")
    if budget is not None and budget < 1:
        raise UserError("--thinking-budget must be at least 1")
    if on is None:
        if budget is not None:
            raise UserError("--thinking-budget needs --thinking on")
        return ThinkingSwitch()
    if style == "top-level":
        body: dict[str, Any] = {"enable_thinking": on}
        if budget is not None and on:
            body["thinking_budget"] = budget
        return ThinkingSwitch(extra_body=body)
    if style == "prompt":
        return ThinkingSwitch(prompt_suffix=f" {_SOFT_SWITCH[on]}")
    return ThinkingSwitch(enable_thinking=on)
