"""The layout of a run directory: which file holds what, and reading its config.

Every command reads and writes the same directory; keeping the names in one place is
what lets ``classify`` find what ``generate`` wrote and ``export`` find them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.store import read_json

CONFIG_FILE = "config.json"
INSTRUCTIONS_FILE = "instructions.jsonl"
CLASSIFICATION_FILE = "classification.jsonl"
INSTANCES_FILE = "instances.jsonl"
REJECTED_FILE = "rejected.jsonl"
FAILURES_FILE = "failures.jsonl"
STATS_FILE = "stats.json"


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The saved config of a run, or a clear error when ``run_dir`` is not a run."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    config = read_json(run_dir / CONFIG_FILE)
    if config is None or not (run_dir / INSTRUCTIONS_FILE).exists():
        raise UserError(
            f"{run_dir}: not a run directory (no {CONFIG_FILE} / {INSTRUCTIONS_FILE}); "
            "create one with selfinstruct generate -o DIR"
        )
    return config
