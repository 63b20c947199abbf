"""What loading the command line imports: none of the heavy libraries.

Every ``selfinstruct`` command, ``--help`` included, starts by importing
``selfinstruct.cli``; a library imported there is paid for by all of them (matplotlib
alone cost 0.8 s, issue 18). The heavy ones belong in the code path that needs them:
the report's figures, the review sheet, the model backends, the similarity index.
Each check runs in a fresh interpreter, since this test process has imported most of
them already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Top-level packages that cost 0.1 s or more to import, or pull in a framework.
HEAVY = frozenset({
    "matplotlib", "openpyxl", "pyarrow", "pandas", "PIL",     # report, review, tables
    "numpy", "numba", "llvmlite", "rouge_score",              # similarity
    "openai", "httpx", "httpx2",                               # the OpenAI backend
    "vllm", "llama_cpp", "ray", "datatrove",                   # optional backends, executors
    "jieba", "textblob",                                       # the report's verb taggers
    "gradio", "gradio_client", "selenium",                     # the playground's page
})


def imported_by(code: str, tmp_path: Path) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter
    started in the repository (so this checkout's ``selfinstruct`` is the one imported)."""
    listing = tmp_path / "modules.json"
    script = (f"{code}\nimport json, sys\n"
              f"open({str(listing)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n")
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return {name.split(".")[0] for name in json.loads(listing.read_text())}


def test_importing_the_cli_imports_no_heavy_library(tmp_path):
    assert imported_by("import selfinstruct.cli", tmp_path) & HEAVY == set()


def test_help_imports_no_heavy_library(tmp_path):
    code = ("import contextlib, sys\nfrom selfinstruct.cli import main\n"
            "sys.argv = ['selfinstruct', '--help']\n"
            "with contextlib.suppress(SystemExit):\n    main()")
    assert imported_by(code, tmp_path) & HEAVY == set()


def test_playground_help_imports_no_heavy_library(tmp_path):
    code = ("import contextlib, sys\nfrom selfinstruct.cli import main\n"
            "sys.argv = ['selfinstruct', 'playground', '--help']\n"
            "with contextlib.suppress(SystemExit):\n    main()")
    assert imported_by(code, tmp_path) & HEAVY == set()


def test_the_check_sees_a_heavy_import(tmp_path):
    loaded = imported_by("import selfinstruct.reporting.charts", tmp_path) & HEAVY
    assert {"matplotlib", "numpy"} <= loaded
