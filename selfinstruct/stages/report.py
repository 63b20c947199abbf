"""``report``: one HTML page per run that a person would rather look at than stats.json.

The funnel of every stage, the score histogram and per-dimension means, the review
rates next to Self-Instruct's, the verb–object sunburst (English) or leading verbs
(Chinese), the first words, the similarity to the seeds, the lengths, and two
examples per filter of what was thrown away. Reading is all it does to the run. A run
is a run directory, the directory ``score -o`` wrote, or a dataset file (which has no
funnel: its page shows the examples' verbs and lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfinstruct.errors import UserError
from selfinstruct.reporting import page
from selfinstruct.reporting.facts import RunFacts, gather
from selfinstruct.runs.store import write_atomic


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it shows."""

    path: Path
    figures: list[str]
    facts: RunFacts


def draw_figures(facts: RunFacts) -> dict[str, str | None]:
    """Every figure of the report, by name (None: nothing to draw)."""
    # matplotlib is imported here, not with this module: it costs about 0.8 s, which every
    # ``selfinstruct`` command (this module is part of the CLI) would otherwise pay.
    from selfinstruct.reporting import charts
    from selfinstruct.reporting.sunburst import sunburst

    verbs = facts.verbs
    total = max(len(facts.instructions), 1)
    return {
        "funnel": charts.funnel_chart(facts.funnels),
        "scores": charts.score_charts(facts.score_stats, facts.scale),
        "review": charts.review_chart(facts.rates),
        "sunburst": sunburst(verbs.pairs) if verbs and verbs.language == "en" else None,
        "verbs": (charts.bar_chart(verbs.verbs, "leading verbs", total)
                  if verbs and verbs.language == "zh" else None),
        "first_words": charts.bar_chart(verbs.first_words, "first words", total)
        if verbs else None,
        "similarity": charts.similarity_histogram(facts.similarity),
        "lengths": charts.length_histograms(facts.lengths()),
    }


def build_report(run: Path, output: Path | None = None, *, dry_run: bool = False) -> ReportResult:
    """Write the report of ``run`` (a run directory, the directory ``score -o`` wrote, or a
    dataset file) to ``output``: by default ``RUN/report.html``, or ``STEM_report.html``
    beside a file."""
    path = output or (run.parent / f"{run.stem}_report.html" if run.is_file()
                      else run / "report.html")
    if path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"{path}: the report is an HTML file; name it *.html")
    facts = gather(run)
    if dry_run:
        return ReportResult(path, [], facts)
    figures = draw_figures(facts)
    text = page.render(facts, figures)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{path.parent}: cannot create ({err.strerror})") from None
    write_atomic(path, lambda fp: fp.write(text))
    return ReportResult(path, [name for name, svg in figures.items() if svg is not None], facts)
