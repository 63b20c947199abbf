"""What a run tells the person at the end: counts, where the files are, how to resume."""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from selfinstruct.runs.layout import DISTILLED_FILE, REASONING_FILE, SCORES_FILE, STATS_FILE
from selfinstruct.runs.store import read_json, read_jsonl
from selfinstruct.stages.dedup import MinHashSummary
from selfinstruct.stages.generate import GenerateStats
from selfinstruct.stages.mix import MixResult
from selfinstruct.stages.per_record import StageStats, throughput
from selfinstruct.stages.runner import RequestStats

#: Flags whose value must never be echoed back (a resume hint is often pasted in chats).
SECRET_FLAGS = ("--api-key",)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without secret flags and their values (``--flag V`` and ``--flag=V``)."""
    redacted: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg in SECRET_FLAGS:
            skip_next = True
        elif arg.split("=", 1)[0] not in SECRET_FLAGS:
            redacted.append(arg)
    return redacted


def resume_command(argv: Sequence[str]) -> str:
    """The command line that resumes this run: same flags, the key left to the environment."""
    kept = redact_argv(argv)
    command = "selfinstruct " + shlex.join(kept)
    if len(kept) != len(argv):
        command += "  (with the API key in OPENAI_API_KEY)"
    return command


def _requests_line(requests: RequestStats, elapsed: float) -> str:
    """Requests, tokens and this session's rates, one line."""
    rates = throughput(requests, elapsed)
    return (
        f"requests: {requests.sent} sent, {requests.succeeded} answered, "
        f"{requests.failed} failed; tokens: {requests.prompt_tokens} prompt, "
        f"{requests.completion_tokens} completion; {rates['requests_per_second']:g} "
        f"answers/s, {rates['completion_tokens_per_second']:g} completion tokens/s"
    )


def _rejected_lines(rejected: Counter[str]) -> list[str]:
    """Rejections by filter, most frequent first (none: no line)."""
    if not rejected:
        return []
    counts = ", ".join(f"{name} {count}" for name, count in rejected.most_common())
    return [f"rejected: {counts} (see rejected.jsonl)"]


def generate_summary(stats: GenerateStats, out: Path) -> list[str]:
    """Human-readable summary lines of a generate run."""
    requests = stats.requests
    lines = [
        f"kept {stats.kept_now} new instructions ({stats.kept}/{stats.target} in {out})"
        f" from {stats.candidates} candidates in {stats.elapsed:.1f}s",
        _requests_line(requests, stats.elapsed),
    ]
    return lines + _rejected_lines(stats.rejected)


def stage_summary(stats: StageStats) -> list[str]:
    """Human-readable summary lines of a per-record stage (classify, instances)."""
    requests = stats.requests
    lines = [
        f"{stats.stage}: {stats.done}/{stats.total} done ({stats.done - stats.done_before} "
        f"now) in {stats.elapsed:.1f}s; {stats.gave_up} given up after repeated failures",
        _requests_line(requests, stats.elapsed),
    ]
    return lines + _rejected_lines(stats.rejected)


def reason_summary(stats: StageStats, out: Path) -> list[str]:
    """What a reason run kept, and a hint when the model never reasoned."""
    kept = sum(1 for _ in read_jsonl(out / REASONING_FILE))
    lines = [f"reason: {kept} traces in {out / REASONING_FILE}, "
             f"{sum(stats.rejected.values())} rejected this session"]
    without = stats.seen.get("without_reasoning", 0)
    if without:
        lines.append(
            f"{without} answers had no reasoning trace; is the model a thinking model "
            "(DeepSeek-R1, Qwen3, QwQ)? For Qwen3 pass --enable-thinking; behind vLLM, "
            "--reasoning-parser is optional (the trace is read from <think> tags too)"
        )
    return lines


def score_summary_lines(out: Path) -> list[str]:
    """How the examples scored: the histogram and the means, from ``stats.json``."""
    section = (read_json(out / STATS_FILE) or {}).get("score", {})
    if not section.get("scored"):
        return [f"score: nothing scored yet in {out / SCORES_FILE}"]
    histogram = ", ".join(f"{key}: {count}" for key, count in section["histogram"].items())
    means = ", ".join(f"{name} {value:g}" for name, value in section["dimension_means"].items())
    lines = [f"score: {section['scored']} examples scored in {out / SCORES_FILE}; "
             f"overall mean {section['mean']:g} ({histogram})"]
    if means:
        lines.append(f"dimension means: {means}")
    return lines


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


def distill_summary(stats: StageStats, out: Path) -> list[str]:
    """Where a distill run's records are, and how many answers were rejected."""
    rejected = sum(stats.rejected.values())
    return [f"distill: {stats.seen.get('records', 0)} records written to "
            f"{out / DISTILLED_FILE} this session, {rejected} answers or items rejected"]


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
