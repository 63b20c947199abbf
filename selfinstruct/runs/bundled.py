"""Where the bundled seed tasks and prompt templates live.

They are kept at the top of the repository (``seed_tasks/``, ``prompts/``) so people can
read and edit them, and are copied into the wheel under ``selfinstruct/_data/``; an
editable install or a source checkout finds them beside the package instead.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """The bundled data folder ``name`` (``"prompts"`` or ``"seed_tasks"``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {name}/ is missing from this installation")
