"""What the commands that send nothing say about what they did (the model stages' own
summaries are their jobs' ``summary()``)."""

from __future__ import annotations

from pathlib import Path

from selfinstruct.stages.dedup import DedupSummary, MinHashSummary
from selfinstruct.stages.export import ExportResult
from selfinstruct.stages.mix import MixResult
from selfinstruct.stages.report import ReportResult
from selfinstruct.stages.review import Drawn, Imported


def export_lines(result: ExportResult) -> list[str]:
    """Where the export went and the LLaMA-Factory dataset name to train on (and what the
    scores and reviews took out)."""
    lines: list[str] = list(result.summary)
    curated = result.curated
    if curated is not None and curated.min_score is not None:
        lines.append(f"--min-score {curated.min_score:g}: {curated.below_min_score} examples "
                     f"scored lower, {curated.unscored} without a score (see rejected.jsonl) "
                     "left out")
    if curated is not None and (curated.dropped_in_review or curated.edited):
        lines.append(f"review.jsonl: {curated.dropped_in_review} dropped, {curated.edited} "
                     "edited")
    skipped = (f" ({result.skipped} left out: empty instruction or answer)"
               if result.skipped else "")
    if result.dataset_name is None:
        return [*lines, f"exported {result.count} {result.unit} to {result.path}{skipped}; "
                        f"{result.note}"]
    return [*lines, f"exported {result.count} {result.unit} to {result.path}{skipped}; "
                    f"LLaMA-Factory dataset {result.dataset_name!r} registered in "
                    f"{result.dataset_info}"]


def dedup_lines(summary: DedupSummary, output: Path) -> list[str]:
    """Counts and speed of an exact ROUGE-L dedup."""
    return [f"kept {summary.kept} of {summary.read} records ({summary.dropped} dropped) "
            f"in {summary.elapsed_seconds:.1f}s, {summary.records_per_second:,.0f} records/s "
            f"-> {output}"]


def minhash_summary(summary: MinHashSummary, output: Path, removed: Path | None) -> list[str]:
    """Counts, tokens before and after, speed, and where kept and removed records went."""
    share = summary.tokens_after / summary.tokens_before if summary.tokens_before else 1.0
    lines = [
        f"kept {summary.kept:,} of {summary.read:,} records ({summary.removed:,} removed as "
        f"near-duplicates, in {summary.clusters:,} clusters)",
        f"tokens {summary.tokens_before:,} before, {summary.tokens_after:,} after "
        f"({share:.1%} kept)",
        f"{summary.elapsed_seconds:.1f}s, {summary.records_per_second:,.0f} records/s "
        f"-> {output}",
    ]
    if removed is not None:
        lines.append(f"removed records, with duplicate_of and estimated_jaccard -> {removed}")
    return lines


def mix_summary(result: MixResult) -> list[str]:
    """Each source's part, the duplicates removed, and where the blend was registered."""
    lines = [
        f"{part.source}: {part.taken} of {part.available} distinct records (weight "
        f"{part.weight:g}, share {part.share:.1%}"
        + (f", {part.repeated} repeated" if part.repeated else "")
        + (f"; {part.duplicates_removed} duplicates removed" if part.duplicates_removed
           else "") + ")"
        for part in result.parts
    ]
    total = sum(part.taken for part in result.parts)
    lines.append(f"wrote {total} records to {result.output}; what came from where: "
                 f"{result.mix_file}")
    if result.dataset_name is not None:
        lines.append(f"LLaMA-Factory dataset {result.dataset_name!r} registered in "
                     f"{result.dataset_info}")
    else:
        lines.append("not registered in dataset_info.json: the records do not share one "
                     "format (alpaca, sharegpt, messages or text)")
    return lines


def imported_line(done: Imported, sheet: Path, *, dry_run: bool) -> str:
    """What a reviewed sheet held and where it went."""
    verdicts = ", ".join(f"{k} {v}" for k, v in done.verdicts.items()) or "none"
    where = "(dry run: nothing written)" if dry_run else f"-> {done.path}"
    return (f"{sheet}: {done.reviewed} examples reviewed ({verdicts}); "
            f"{done.total_reviews} reviews in all {where}")


def drawn_line(drawn: Drawn, run_dir: Path, path: Path, *, dry_run: bool) -> str:
    """What the review sheet holds and what to do with it."""
    bands = ", ".join(f"{band}: {count}" for band, count in drawn.bands.items())
    verb = "would write" if dry_run else "wrote"
    return (f"{verb} {len(drawn.rows)} examples to {path} (by score band: {bands or 'none'}; "
            f"{drawn.lowest} lowest-scored); fill in the yellow columns, then run "
            f"selfinstruct review {run_dir} --import {path}")


def report_line(result: ReportResult, *, dry_run: bool) -> str:
    """Where the report went and what it shows."""
    facts = result.facts
    stages = ", ".join(f.stage for f in facts.funnels) or "none"
    shows = (f"{len(facts.instructions)} instructions, {len(facts.examples)} examples, "
             f"{len(facts.scores)} scored, {len(facts.reviews)} reviewed; stages: {stages}")
    if dry_run:
        return f"would write {result.path}: {shows}"
    return f"wrote {result.path} ({', '.join(result.figures)}): {shows}"
