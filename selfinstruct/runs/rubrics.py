"""Find and read a judge's rubric: the user's ``--rubric FILE`` or the bundled one.

The bundled rubrics (``prompts/en/rubric.txt``, ``prompts/zh/rubric.txt``) rate
accuracy, completeness, relevance, harmlessness and format. A malformed rubric stops
the command with ``file:line: what is wrong`` before any request is sent.
"""

from __future__ import annotations

from pathlib import Path

from selfinstruct.errors import UserError
from selfinstruct.language import Language
from selfinstruct.runs.bundled import data_dir
from selfinstruct.text.rubric import Dimension, RubricError, parse_rubric


def rubric_path(rubric: Path | None, language: Language, bundled: str = "rubric.txt") -> Path:
    """The file a run's rubric comes from: ``rubric``, else the bundled file ``bundled``
    (``dialogue_rubric.txt`` for conversations)."""
    return rubric if rubric is not None else data_dir("prompts") / language / bundled


def load_rubric(rubric: Path | None, language: Language,
                bundled: str = "rubric.txt") -> tuple[Dimension, ...]:
    """The dimensions of ``rubric`` (or the bundled rubric for ``language``)."""
    path = rubric_path(rubric, language, bundled)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such rubric file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: the rubric is not UTF-8 text") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read the rubric ({err.strerror})") from None
    try:
        return parse_rubric(text)
    except RubricError as err:
        where = f"{path}:{err.line}" if err.line else str(path)
        raise UserError(f"{where}: {err}") from None
