"""Lay the report out as one self-contained HTML page.

Figures are SVG inside ``data:`` URIs, the styles are inline, and the only script checks
that every figure was drawn (and says so on the console if one was not), so the file
opens anywhere, offline, and can be mailed as it is. Numbers that also appear in
``stats.json`` carry a ``data-stat`` attribute naming where, so a test (or a person)
can check one against the other.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from selfinstruct.reporting.facts import Funnel, RunFacts
from selfinstruct.reporting.rates import SELF_INSTRUCT, Rate

#: Self-Instruct's verb–object count (§4): instructions with the structure, of all.
SELF_INSTRUCT_PAIRS = (26_559, 52_445)
#: How much of a rejected text is shown.
EXCERPT = 300

CSS = """
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC",
       "Microsoft YaHei", sans-serif; color: #1f2328; max-width: 1100px; margin: 2em auto;
       padding: 0 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #d0d7de;
     padding-bottom: 0.2em; margin-top: 2em; } h3 { margin-bottom: 0.3em; }
.lede { color: #57606a; } .note { color: #57606a; font-size: 0.92em; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1em 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left;
         vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: 0.92em; }
.example { white-space: pre-wrap; max-width: 60em; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  document.querySelectorAll("figure img").forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) {
      console.error("figure not drawn: " + img.alt);
    }
  });
});
"""


def figure(svg: str | None, alt: str, caption: str, missing: str = "nothing to draw in this "
           "run") -> str:
    """A figure from SVG text, or a note saying why there is none."""
    if svg is None:
        return f'<p class="note">{escape(alt)}: {escape(missing)}.</p>'
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<figure><img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def stat(value: Any, where: str | None = None) -> str:
    """A number cell; ``where`` names its place in ``stats.json`` (the exact value goes
    in ``data-value``, the cell shows it rounded)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'<td class="n">{escape(str(value))}</td>'
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    attribute = f' data-stat="{escape(where)}" data-value="{value!r}"' if where else ""
    return f'<td class="n"{attribute}>{text}</td>'


def table(head: Sequence[str], rows: Iterable[str]) -> str:
    """A table whose rows are already-rendered ``<td>`` cells."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def render(facts: RunFacts, figures: dict[str, str | None]) -> str:
    """The whole page."""
    sections = [_summary(facts), _funnels(facts, figures), _quality(facts, figures),
                _diversity(facts, figures), _lengths(facts, figures), _rejections(facts)]
    title = f"selfinstruct report: {facts.run.resolve().name}"
    return (
        f'<!DOCTYPE html>\n<html lang="{facts.language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="lede">{escape(str(facts.run))}. Every number on this page is computed '
        f"from the files in that directory.</p>{''.join(sections)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _summary(facts: RunFacts) -> str:
    stats = facts.score_stats
    cards = [("instructions", f"{len(facts.instructions):,}"),
             ("examples", f"{len(facts.examples):,}"),
             ("scored", f"{stats.get('scored', 0):,}"),
             ("mean score", f"{stats['mean']:.2f}" if stats.get("mean") is not None else "–"),
             ("reviewed", f"{len(facts.reviews):,}")]
    body = "".join(f'<div class="card"><b>{escape(value)}</b>{escape(name)}</div>'
                   for name, value in cards)
    return f'<div class="cards">{body}</div>'


def _funnels(facts: RunFacts, figures: dict[str, str | None]) -> str:
    tables = '<div class="tables">' + "".join(_funnel_table(f) for f in facts.funnels) + "</div>"
    return ("<h2>What the filters threw away</h2>"
            + figure(figures.get("funnel"), "funnel", "Per stage: what came in, what each "
                     "filter took out (red), what was kept (green).") + tables)


def _funnel_table(funnel: Funnel) -> str:
    rows = [f"<td>{escape(funnel.unit)}</td>{stat(funnel.candidates, f'{funnel.stage}.in')}"]
    rows += [f"<td>− {escape(name)}</td>{stat(n, f'{funnel.stage}.rejected.{name}')}"
             for name, n in funnel.rejected]
    rows.append(f"<td>kept</td>{stat(funnel.kept, f'{funnel.stage}.kept')}")
    note = f'<p class="note">{escape(funnel.note)}</p>' if funnel.note else ""
    return (f"<div><h3>{escape(funnel.stage)}</h3>{table(['', 'count'], rows)}{note}</div>")


def _spread(spread: dict[str, Any]) -> str:
    """How often a prompt's K answers disagree, and by how much (top minus bottom)."""
    if not spread.get("prompts"):
        return ""
    values = sorted(spread["spreads"])
    counts: dict[str, int] = {}
    for value in values:
        counts[f"{value:g}"] = counts.get(f"{value:g}", 0) + 1
    rows = [f"<td>prompts with two or more scored answers</td>{stat(spread['prompts'])}",
            f"<td>whose answers' scores differ</td>{stat(spread['disagree'])}",
            f"<td>median spread (top − bottom)</td>{stat(values[len(values) // 2])}"]
    return ("<h3>Score spread within prompts</h3>"
            f'<div class="tables">{table(["", "count"], rows)}'
            f'{table(["spread", "prompts"], (f"<td>{k}</td>{stat(n)}" for k, n in counts.items()))}'
            "</div><p class=\"note\">A spread of at least --min-margin makes a preference "
            "pair (export --pairs); no spread, nothing for --best-of to choose.</p>")


def _quality(facts: RunFacts, figures: dict[str, str | None]) -> str:
    parts = ["<h2>Is it good</h2>"]
    stats = facts.score_stats
    if stats:
        parts.append(figure(figures.get("scores"), "scores", "The judge's overall scores "
                            "and the mean of each rubric dimension (scores.jsonl)."))
        rows = [f"<td>{escape(k)}</td>{stat(n, f'score.histogram.{k}')}"
                for k, n in stats["histogram"].items()]
        means = [f"<td>{escape(k)}</td>{stat(v, f'score.dimension_means.{k}')}"
                 for k, v in stats["dimension_means"].items()]
        means.append(f"<td>overall</td>{stat(stats['mean'], 'score.mean')}")
        parts.append(f'<div class="tables">{table(["overall score", "examples"], rows)}'
                     f'{table(["dimension", "mean"], means)}</div>')
        parts.append(_spread(facts.spread))
    else:
        parts.append('<p class="note">Not scored: run <code>selfinstruct score</code>.</p>')
    parts.append("<h3>Human review</h3>")
    if facts.reviews:
        parts.append(figure(figures.get("review"), "review rates", "Share of the sampled "
                            "examples a reviewer answered yes, with 95% Wilson intervals; "
                            "diamonds: Self-Instruct's expert review of 200 GPT-3 examples."))
        parts.append(table(["question", "yes", "answered", "rate", "95% interval",
                            "Self-Instruct"], (_rate_row(rate) for rate in facts.rates)))
        verdicts: dict[str, int] = {}
        for review in facts.reviews:
            verdicts[review.verdict] = verdicts.get(review.verdict, 0) + 1
        parts.append(table(["verdict", "examples"],
                           (f"<td>{escape(k)}</td>{stat(n)}" for k, n in verdicts.items())))
        lowest = sum(1 for r in facts.reviews if r.picked != "sample")
        if lowest:
            parts.append(f'<p class="note">{lowest} lowest-scored examples (--lowest) were '
                         "reviewed too; they are left out of the rates above.</p>")
    else:
        parts.append('<p class="note">Not reviewed: run <code>selfinstruct review</code>.</p>')
    return "".join(parts)


def _rate_row(rate: Rate) -> str:
    value = f"{rate.value:.0%}" if rate.value is not None else "–"
    interval = rate.interval
    span = f"{interval[0]:.0%} – {interval[1]:.0%}" if interval else "–"
    return (f"<td>{escape(rate.name.replace('_', ' '))}</td>{stat(rate.yes)}"
            f"{stat(rate.answered)}{stat(value)}{stat(span)}"
            f"{stat(f'{SELF_INSTRUCT[rate.name]:.0%}')}")


def _diversity(facts: RunFacts, figures: dict[str, str | None]) -> str:
    parts = ["<h2>Is it diverse</h2>"]
    verbs = facts.verbs
    if verbs is not None and verbs.language == "en":
        ours, theirs = verbs.with_pair, SELF_INSTRUCT_PAIRS
        parts.append(f"<p>{ours:,} of {verbs.instructions:,} instructions "
                     f"({ours / max(verbs.instructions, 1):.0%}) open with a verb and its "
                     f"direct object (Self-Instruct: {theirs[0]:,} of {theirs[1]:,}, "
                     f"{theirs[0] / theirs[1]:.0%}).</p>")
        parts.append(figure(figures.get("sunburst"), "verb-object sunburst", "The 20 most "
                            "common leading verbs (inner ring) and their 4 most common direct "
                            "objects (outer ring). Tagged offline by TextBlob's pattern tagger "
                            "with the opening-verb rule in selfinstruct/text/verbs.py."))
    elif verbs is not None:
        parts.append(figure(figures.get("verbs"), "leading verbs", "The most common leading "
                            "verbs (jieba's part-of-speech tagger, offline)."))
    parts.append(figure(figures.get("first_words"), "first words",
                        "The most common first words of the instructions."))
    parts.append(figure(figures.get("similarity"), "similarity to seeds", "ROUGE-L of each "
                        "generated instruction to its most similar seed task (Self-Instruct: "
                        "most below 0.4).", "only a generate run whose seed file is still "
                        "where it was has seeds to compare with"))
    return "".join(parts)


def _lengths(facts: RunFacts, figures: dict[str, str | None]) -> str:
    rows = []
    for name, values in facts.lengths().items():
        median = sorted(values)[len(values) // 2] if values else "–"
        rows.append(f"<td>{escape(name)}s</td>{stat(len(values))}{stat(median)}"
                    f"{stat(max(values) if values else '–')}")
    return ("<h2>How long</h2>"
            + figure(figures.get("lengths"), "lengths", "Lengths in words (a Han or kana "
                     "character counts as one); the longest 1% are drawn in the last bar; "
                     "empty inputs are left out.")
            + table(["", "count", "median", "longest"], rows))


def _rejections(facts: RunFacts) -> str:
    parts = ["<h2>Examples of what each filter rejected</h2>"]
    if not facts.rejected_examples:
        parts.append('<p class="note">Nothing was rejected.</p>')
    for (stage, name), records in sorted(facts.rejected_examples.items()):
        parts.append(f"<h3>{escape(stage)} · {escape(name)}</h3>")
        rows = [f'<td class="example">{escape(_rejected_text(r))}</td>'
                f"<td>{escape(str(r.get('detail', '')))}</td>" for r in records]
        parts.append(table(["rejected", "why"], rows))
    return "".join(parts)


def _rejected_text(record: dict[str, Any]) -> str:
    """What was rejected: a candidate instruction, an instance, a trace's answer."""
    parts = []
    for key in ("id", "candidate", "instruction", "input", "output", "answer"):
        value = record.get(key)
        if key == "id" and "candidate" not in record and value is not None:
            parts.append(f"id: {value}")
        elif key != "id" and isinstance(value, str) and value.strip():
            parts.append(f"{key}: {_cut(value)}")
    return "\n".join(parts)


def _cut(text: str) -> str:
    flat = text.strip()
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"
