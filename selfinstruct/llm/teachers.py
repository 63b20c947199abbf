"""Which teachers a ``distill`` or ``reason`` run asks: ``--model`` given more than once
(all on the same servers), and the lines of a ``--teachers`` file, each
``BASE_URL MODEL [KEY_ENV]`` (``#`` starts a comment; KEY_ENV names the environment
variable holding that server's API key, so no key is written in the file).

Each teacher is resolved like a single ``--model`` (:func:`resolve_backend`), then the
first one's spec carries them all (``BackendSpec.teachers``), so a stage that never heard
of several teachers still has one spec to plan and connect with. Sample k of a row goes
to teacher k mod n (:func:`selfinstruct.llm.pool.teacher_of`): ``--samples`` counts the
answers of a row over all teachers, so it must be at least the number of teachers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.errors import UserError
from selfinstruct.llm.registry import BackendSpec
from selfinstruct.llm.settings import BackendSettings, resolve_backend


@dataclass(frozen=True)
class TeacherLine:
    """One teacher as named: its model, and its own server and key variable, if any."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None


def teacher_lines(given: BackendSettings) -> list[TeacherLine]:
    """The teachers named: every ``--model`` when there are several, then the file's."""
    lines = [TeacherLine(model) for model in given.models] if len(given.models) > 1 else []
    if given.teachers_file is not None:
        lines += read_teachers(given.teachers_file)
    return lines


def read_teachers(path: Path) -> list[TeacherLine]:
    """The lines of a ``--teachers`` file: ``BASE_URL MODEL [KEY_ENV]``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"{path}: cannot read the teachers file ({err.strerror})") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise UserError(f"{path}:{number}: expected 'BASE_URL MODEL [KEY_ENV]', got "
                            f"{line.strip()!r}")
        lines.append(TeacherLine(fields[1], fields[0], fields[2] if len(fields) == 3 else None))
    if not lines:
        raise UserError(f"{path}: no teachers (one 'BASE_URL MODEL [KEY_ENV]' a line)")
    return lines


def resolve_teachers(given: BackendSettings, samples: int) -> BackendSpec:
    """The backend of a teacher stage: one model as usual, or the first of several
    teachers carrying them all. ``samples`` (answers per row) must give each teacher at
    least one."""
    lines = teacher_lines(given)
    one = dataclasses.replace(given, models=(), teachers_file=None)
    if not lines:
        return resolve_backend({}, one)
    if len(lines) < 2:
        raise UserError("one teacher in --teachers: name two or more, or use --model")
    if given.executor.executor == "ray":
        raise UserError("several teachers are sent from this process; leave out "
                        "--executor ray")
    if samples < len(lines):
        raise UserError(f"--samples {samples} with {len(lines)} teachers: sample k goes to "
                        f"teacher k mod {len(lines)}, so ask --samples {len(lines)} or more "
                        "(a multiple of it gives each teacher as many)")
    specs = tuple(
        dataclasses.replace(
            resolve_backend({}, dataclasses.replace(
                one, model=line.model,
                base_url=(line.base_url,) if line.base_url else one.base_url)),
            api_key_env=line.api_key_env)
        for line in lines)
    return dataclasses.replace(specs[0], teachers=specs)
