"""The command line echoed back: how to resume a run, without the secrets in it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

#: Flags whose value must never be echoed back (a resume hint is often pasted in chats).
SECRET_FLAGS = ("--api-key",)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without secret flags and their values (``--flag V`` and ``--flag=V``)."""
    redacted: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg in SECRET_FLAGS:
            skip_next = True
        elif arg.split("=", 1)[0] not in SECRET_FLAGS:
            redacted.append(arg)
    return redacted


def resume_command(argv: Sequence[str]) -> str:
    """The command line that resumes this run: same flags, the key left to the environment."""
    kept = redact_argv(argv)
    command = "selfinstruct " + shlex.join(kept)
    if len(kept) != len(argv):
        command += "  (with the API key in OPENAI_API_KEY)"
    return command
