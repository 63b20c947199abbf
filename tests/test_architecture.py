"""The layout is the architecture: pure packages stay pure.

``text``, ``filters`` and ``similarity`` (and the ``language`` and ``errors`` modules
they share) turn values into values. They must not reach the run storage, the model
backends, the stages or the CLI, and they do no file, process or network I/O, so that
they can be tested and reused without a run directory or a model.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "selfinstruct"
PURE = ("text", "filters", "similarity")
PURE_MODULES = ("language", "errors", "mixing")
ALLOWED = {f"selfinstruct.{name}" for name in (*PURE, *PURE_MODULES)}
#: Standard modules whose only use is I/O.
IO_MODULES = {"os", "io", "pathlib", "shutil", "subprocess", "socket", "tempfile", "urllib",
              "http", "asyncio", "sqlite3", "glob"}


def pure_files() -> list[Path]:
    files = [path for name in PURE for path in sorted((PACKAGE / name).glob("*.py"))]
    return files + [PACKAGE / f"{name}.py" for name in PURE_MODULES]


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module in ("selfinstruct", *ALLOWED):
                names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_the_pure_packages_exist_and_hold_modules():
    assert all(len(list((PACKAGE / name).glob("*.py"))) >= 2 for name in PURE)


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_modules_import_only_pure_modules(path):
    for name in imported_modules(path):
        if name.startswith("selfinstruct"):
            assert any(name == allowed or name.startswith(allowed + ".")
                       for allowed in ALLOWED), f"{path.name} imports {name}"
        else:
            assert name.split(".")[0] not in IO_MODULES, f"{path.name} imports {name} (I/O)"


def test_the_check_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from selfinstruct.runs.store import read_jsonl\nimport subprocess\n")
    assert imported_modules(sample) == ["selfinstruct.runs.store", "subprocess"]
