"""The ``selfinstruct distill`` command line that runs the playground's prompt over all rows.

The page is where a prompt is settled; the bulk run is ``distill``. The command shown
after a save carries every flag the page sent with (parsing, stop strings, sampling,
thinking switch, backend), each only when it differs from distill's default, so it
reads like a command a person would type. The API key never appears in it: ``distill``
reads it from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from selfinstruct.llm.settings import BackendSettings
from selfinstruct.stages.distill import DistillSettings
from selfinstruct.stages.teacher import Teacher

#: Settings the command names in other ways (files, ``--map``) or the page never sets.
_NOT_FLAGS = frozenset({"user_template", "teacher", "renames", "limit", "sample", "seed",
                        "shard", "samples"})
#: Backend settings ``distill`` takes no flag for, or that must not be printed.
_NOT_BACKEND_FLAGS = frozenset({"api_key", "structured", "executor"})


def distill_command(source: Path, out: Path, template: Path, system_file: Path | None,
                    settings: DistillSettings, teacher: Teacher,
                    backend: BackendSettings) -> str:
    """``selfinstruct distill SOURCE --out OUT --user-template T [--system-file S] …`` with
    the flags of ``settings``, ``teacher`` (as given, before its thinking style is made
    concrete) and ``backend``."""
    args = ["distill", str(source), "--out", str(out), "--user-template", str(template)]
    if system_file is not None:
        args += ["--system-file", str(system_file)]
    args += [*_settings_flags(settings), *_teacher_flags(teacher), *_backend_flags(backend)]
    return "selfinstruct " + shlex.join(args)


def _settings_flags(settings: DistillSettings) -> list[str]:
    args: list[str] = []
    for field in dataclasses.fields(settings):
        if field.name not in _NOT_FLAGS and getattr(settings, field.name) != field.default:
            args += _flag(field.name, getattr(settings, field.name))
    for new, old in settings.renames.items():
        args += ["--map", f"{new}={old}"]
    return args


def _teacher_flags(teacher: Teacher) -> list[str]:
    args: list[str] = []
    for stop in teacher.stop:
        args += ["--stop", stop]
    if teacher.extra_body:
        args += ["--extra-body", json.dumps(dict(teacher.extra_body), ensure_ascii=False)]
    if teacher.thinking is not None:
        args += ["--thinking", "on" if teacher.thinking else "off"]
    if teacher.thinking_style != "auto":
        args += ["--thinking-style", teacher.thinking_style]
    if teacher.thinking_budget is not None:
        args += ["--thinking-budget", str(teacher.thinking_budget)]
    return args


#: Backend settings written above the loop: repeatable flags, and ``--teachers``.
_LISTED = frozenset({"base_url", "model", "models", "teachers_file"})


def _backend_flags(backend: BackendSettings) -> list[str]:
    args: list[str] = []
    for url in backend.base_url:
        args += ["--base-url", url]
    for model in backend.models or ((backend.model,) if backend.model else ()):
        args += ["--model", model]
    if backend.teachers_file is not None:
        args += ["--teachers", str(backend.teachers_file)]
    for field in dataclasses.fields(backend):
        value = getattr(backend, field.name)
        if field.name in _NOT_BACKEND_FLAGS or field.name in _LISTED:
            continue
        if value is not None and not (field.name == "backend" and value == "auto"):
            args += _flag(field.name, value)
    return args


def _flag(name: str, value: Any) -> list[str]:
    """``--name VALUE``, or ``--name`` alone for a switch that is on."""
    flag = "--" + name.replace("_", "-")
    if value is True:
        return [flag]
    return [flag, f"{value:g}" if isinstance(value, float) else str(value)]
