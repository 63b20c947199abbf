"""The layout of a run directory: which file holds what, and reading its config.

Every command reads and writes the same directory; keeping the names in one place is
what lets ``classify`` find what ``generate`` wrote and ``export`` find them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.runs.store import read_json, write_json_atomic

CONFIG_FILE = "config.json"
INSTRUCTIONS_FILE = "instructions.jsonl"
CLASSIFICATION_FILE = "classification.jsonl"
INSTANCES_FILE = "instances.jsonl"
REJECTED_FILE = "rejected.jsonl"
FAILURES_FILE = "failures.jsonl"
STATS_FILE = "stats.json"
REASONING_FILE = "reasoning.jsonl"
PASS_RATES_FILE = "pass_rates.jsonl"
SCORES_FILE = "scores.jsonl"
REVIEW_FILE = "review.jsonl"
DISTILLED_FILE = "distilled.jsonl"
DIALOGUES_FILE = "dialogues.jsonl"
#: The journal of a dialogue run: every answer (a turn, an outline) as it arrives.
TURNS_FILE = "turns.jsonl"


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
    if config.get("language") not in ("en", "zh"):
        raise UserError(
            f"{run_dir / CONFIG_FILE}: no valid 'language' (was the file edited?); "
            "run selfinstruct generate -o DIR again to rewrite it"
        )
    return config


#: Counters in ``stats.json`` that add up over the sessions of a resumed run.
CUMULATIVE = ("requests", "rejected", "seen", "parsed", "candidates", "elapsed_seconds")


def save_config_section(run_dir: Path, section: str, settings: dict[str, Any]) -> None:
    """Record a later stage's settings in ``config.json`` beside the generate settings."""
    path = run_dir / CONFIG_FILE
    document = read_json(path) or {}
    document[section] = settings
    write_json_atomic(path, document)


def save_stats(run_dir: Path, stage: str, current: dict[str, Any]) -> None:
    """Write ``stage``'s section of ``stats.json``, adding this session's counters to the
    earlier sessions' so a resumed run still reports the whole run's requests and tokens."""
    path = run_dir / STATS_FILE
    document = read_json(path) or {}
    previous = document.get(stage, {}) if isinstance(document.get(stage), dict) else {}
    merged = dict(current)
    for key in CUMULATIVE:
        if key in current and key in previous:
            merged[key] = _add(previous[key], current[key])
    document[stage] = merged
    write_json_atomic(path, document)


def _add(before: Any, now: Any) -> Any:
    if isinstance(now, dict) and isinstance(before, dict):
        return {key: _add(before.get(key, 0), now.get(key, 0)) for key in {*before, *now}}
    if isinstance(now, (int, float)) and isinstance(before, (int, float)):
        return round(before + now, 3) if isinstance(now, float) else before + now
    return now


def update_stats(run_dir: Path, stage: str, values: dict[str, Any]) -> None:
    """Set ``values`` in ``stage``'s section of ``stats.json``, keeping its other keys:
    for numbers recounted from the run files (a histogram), not added up per session."""
    path = run_dir / STATS_FILE
    document = read_json(path) or {}
    section = document.get(stage)
    document[stage] = {**(section if isinstance(section, dict) else {}), **values}
    write_json_atomic(path, document)
