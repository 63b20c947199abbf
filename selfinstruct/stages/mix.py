"""Blend datasets by ratio: human, public and synthetic data in the proportions asked for.

Each source is read whole (JSONL, JSON, CSV/TSV, XLSX, Parquet), exact duplicates are
removed across all of them first (a record keeps its first place, in the order the
sources were given), then ``-n`` is split over the sources by their weights (largest
remainder, so the parts are exact and add up), each source's part is drawn without
replacement (or, with ``allow_upsample``, in whole rounds plus a draw), and the blend is
shuffled and written with every record's ``source``. ``mix.json`` beside the output says
what came from where, and a LLaMA-Factory ``dataset_info.json`` entry registers it when
the records share one of the export formats.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.mixing import draw, largest_remainder, record_key, shares, source_rng
from selfinstruct.runs.readers import iter_objects, json_type
from selfinstruct.runs.rows import SUFFIXES, read_rows
from selfinstruct.runs.store import read_json, write_atomic, write_json_atomic
from selfinstruct.stages.export import ExportFormat, dataset_info_entry

MIX_FILE = "mix.json"
DATASET_INFO = "dataset_info.json"


@dataclass(frozen=True)
class MixSource:
    """One ``--source FILE:WEIGHT``."""

    path: Path
    weight: float

    @classmethod
    def parse(cls, text: str) -> MixSource:
        """Read ``FILE:WEIGHT`` (the last colon splits, so a path may hold others)."""
        path, colon, weight = text.rpartition(":")
        try:
            value = float(weight) if colon and path else 0.0
        except ValueError:
            value = 0.0
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"--source {text!r}: write FILE:WEIGHT with a positive weight, "
                            "e.g. --source human.jsonl:0.5")
        return cls(Path(path), value)


@dataclass(frozen=True)
class MixSettings:
    """What ``mix`` blends, how much of it, and where it goes."""

    sources: tuple[MixSource, ...]
    total: int
    output: Path
    seed: int = 0
    allow_upsample: bool = False
    #: Fields that make two records the same (empty: every field but ``id``).
    key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise UserError("mix needs at least one --source FILE:WEIGHT")
        if self.total < 1:
            raise UserError("-n must be at least 1")
        if self.output.suffix.lower() not in (".jsonl", ".json"):
            raise UserError(f"-o {self.output}: write the blend as .jsonl or .json")
        seen: set[Path] = set()
        for source in self.sources:
            if source.path.resolve() in seen:
                raise UserError(f"--source {source.path} is given twice; give it once with "
                                "the sum of its weights")
            seen.add(source.path.resolve())


@dataclass
class SourcePart:
    """What one source gave the blend (one entry of ``mix.json``)."""

    source: str
    weight: float
    share: float
    records: int
    duplicates_removed: int
    quota: int = 0
    taken: int = 0
    repeated: int = 0

    @property
    def available(self) -> int:
        """Records left to draw from once duplicates are removed."""
        return self.records - self.duplicates_removed


@dataclass(frozen=True)
class MixResult:
    """The blend as written."""

    output: Path
    parts: list[SourcePart]
    mix_file: Path
    dataset_info: Path
    dataset_name: str | None
    formats: list[str] = field(default_factory=list)


def mix_sources(settings: MixSettings) -> MixResult:
    """Read, deduplicate, split, draw, shuffle and write; see the module."""
    weights = [source.weight for source in settings.sources]
    tables = [read_records(source.path) for source in settings.sources]
    pools, parts = distinct_pools(settings, tables, shares(weights))
    for part, quota in zip(parts, largest_remainder(settings.total, weights), strict=True):
        part.quota = quota
    check_sizes(settings, parts)
    blend: list[dict[str, Any]] = []
    for index, (pool, part) in enumerate(zip(pools, parts, strict=True)):
        picked = draw(part.quota, len(pool), source_rng(settings.seed, index),
                      allow_repeats=settings.allow_upsample)
        part.taken = len(picked)
        part.repeated = len(picked) - len(set(picked))
        blend += [labelled(pool[i], part.source) for i in picked]
    random.Random(f"selfinstruct-mix/{settings.seed}/order").shuffle(blend)
    write_records(settings.output, blend)
    return register(settings, parts, blend)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of ``path`` as it is (JSON records keep their own fields and types;
    tables give one record per row)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--source {path}: cannot read {suffix or 'a file without a suffix'};"
                        f" expected one of {', '.join(SUFFIXES)}")
    if suffix not in (".jsonl", ".json"):
        return [dict(row.values) for row in read_rows(path).rows]
    records = []
    for line, value in iter_objects(path):
        if not isinstance(value, dict):
            raise UserError(f"{path}:{line}: expected a JSON object (a record), got "
                            f"{json_type(value)}")
        records.append(value)
    if not records:
        raise UserError(f"{path}: no records found")
    return records


def distinct_pools(settings: MixSettings, tables: Sequence[list[dict[str, Any]]],
                   fractions: Sequence[float]) -> tuple[list[list[dict[str, Any]]],
                                                        list[SourcePart]]:
    """Each source's records less the exact duplicates of records before them (in its
    own file or an earlier source)."""
    seen: set[str] = set()
    pools, parts = [], []
    for source, table, share in zip(settings.sources, tables, fractions, strict=True):
        pool = []
        for record in table:
            key = record_key(record, settings.key or None)
            if key not in seen:
                seen.add(key)
                pool.append(record)
        pools.append(pool)
        parts.append(SourcePart(str(source.path), source.weight, round(share, 6),
                                len(table), len(table) - len(pool)))
    return pools, parts


def check_sizes(settings: MixSettings, parts: Sequence[SourcePart]) -> None:
    """Without ``allow_upsample``, a source must hold at least its part: say which
    ones do not, with the counts."""
    if settings.allow_upsample:
        short = [part for part in parts if part.quota and not part.available]
    else:
        short = [part for part in parts if part.quota > part.available]
    if not short:
        return
    details = "; ".join(
        f"{part.source} has {part.available} distinct records ({part.records} read, "
        f"{part.duplicates_removed} duplicates removed) but its weight {part.weight:g} asks "
        f"for {part.quota} of -n {settings.total}"
        for part in short
    )
    raise UserError(f"{details}. Lower -n or that weight, or pass --allow-upsample to "
                    "repeat records")


def labelled(record: dict[str, Any], source: str) -> dict[str, Any]:
    """The record with its ``source``; a field of that name it already had is kept as
    ``row_source``."""
    out = dict(record)
    if "source" in out:
        out["row_source"] = out.pop("source")
    out["source"] = source
    return out


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    """JSONL, or a JSON list for ``.json``, written atomically."""
    if path.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda fp: fp.write(text))
    except OSError as err:
        raise UserError(f"{path}: cannot write the blend ({err.strerror})") from None


def blend_format(records: Sequence[dict[str, Any]]) -> ExportFormat | None:
    """The export format every record of the blend has, if one: what LLaMA-Factory
    would read it as."""
    def every(*names: str) -> bool:
        return all(all(name in record for name in names) for record in records)

    if every("conversations"):
        return "sharegpt"
    if every("messages"):
        return "messages"
    if every("instruction", "output"):
        return "alpaca"
    if every("text"):
        return "text"
    return None


def register(settings: MixSettings, parts: list[SourcePart],
             blend: list[dict[str, Any]]) -> MixResult:
    """Write ``mix.json`` and, when the blend has one format, its ``dataset_info.json``
    entry, both beside the output."""
    directory = settings.output.parent
    fmt = blend_format(blend)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", settings.output.stem).strip("_") or "mix"
    info_path = directory / DATASET_INFO
    if fmt is not None:
        info = read_json(info_path) or {}
        info[name] = dataset_info_entry(fmt, settings.output.name,
                                        fmt == "alpaca" and any("system" in r for r in blend))
        write_json_atomic(info_path, info)
    mix_file = directory / MIX_FILE
    write_json_atomic(mix_file, {
        "output": settings.output.name, "n": settings.total, "seed": settings.seed,
        "allow_upsample": settings.allow_upsample, "key": list(settings.key) or None,
        "format": fmt, "dataset": name if fmt else None,
        "duplicates_removed": sum(part.duplicates_removed for part in parts),
        "sources": [{**vars(part), "available": part.available} for part in parts],
    })
    return MixResult(settings.output, parts, mix_file, info_path, name if fmt else None,
                     [fmt] if fmt else [])
