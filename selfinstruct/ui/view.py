"""What the page shows of rows and results, as HTML (no web framework here).

Each row gets a card: its id, tokens and latency, the prompt as sent, the answer as
written with its reasoning folded away, and then what matters for the bulk run: the
records ``distill`` would write (their parsed fields; the prompt and answer they carry
are the ones above) or why it would reject the answer. Compare puts a row's previous
result beside its current one, so an edit's effect is visible.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from selfinstruct.runs.rows import Row
from selfinstruct.text.thinking import split_thinking
from selfinstruct.ui.session import RowResult

#: How the cards look (given to the page).
CSS = """
.si-card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.si-card pre { white-space: pre-wrap; word-break: break-word; background: #f6f6f6;
               padding: 6px; border-radius: 4px; margin: 2px 0 8px; }
.si-card pre.si-record { background: #eef7ee; }
.si-label { font-size: 0.8em; color: #666; margin: 4px 0 0; }
.si-rejected { color: #a33; }
.si-compare td { vertical-align: top; width: 50%; }
"""

#: Record fields every card shows once, above the records.
_SHOWN_ABOVE = frozenset({"prompt", "response", "reasoning", "model", "finish_reason",
                          "usage"})


def rows_table(rows: Sequence[tuple[str, Row]]) -> str:
    """The picked rows and their columns, one table."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(column for _, row in rows for column in row.values))
    head = "".join(f"<th>{escape(column)}</th>" for column in ["id", *columns])
    body = "".join(
        "<tr>" + f"<td>{escape(key)}</td>" + "".join(
            f"<td>{escape(_text(row.values.get(column, '')))}</td>" for column in columns)
        + "</tr>"
        for key, row in rows)
    return f'<table class="si-rows"><tr>{head}</tr>{body}</table>'


def result_cards(results: Iterable[RowResult]) -> str:
    """A card per row, in the order given."""
    return "".join(card(result) for result in results)


def card(result: RowResult) -> str:
    """One row: head line, prompt, answer (reasoning folded), records or rejection."""
    return (f'<div class="si-card" data-id="{escape(result.id)}">'
            f"<h4>{escape(result.id)} · {escape(outcome(result))}</h4>"
            f"<p class=\"si-meta\">{escape(_meta(result))}</p>"
            f'{_label("prompt")}<pre class="si-prompt">{escape(result.prompt)}</pre>'
            f"{_answer(result)}{_kept(result)}</div>")


def outcome(result: RowResult) -> str:
    """In a few words: kept, rejected (and why) or failed."""
    if result.error is not None:
        return f"request failed: {result.error}"
    parts = []
    if result.records:
        parts.append(f"{len(result.records)} record{'s' if len(result.records) != 1 else ''}")
    parts += [f"rejected ({reason['filter']}): {reason['detail']}" for reason in result.rejected]
    return "; ".join(parts)


def compare(current: Sequence[RowResult], earlier: Mapping[str, RowResult]) -> str:
    """Each current row beside its previous result, where there is one."""
    pairs = [(result, earlier[result.id]) for result in current if result.id in earlier]
    if not pairs:
        return "<p>No earlier answers for these rows yet: run, edit, run again.</p>"
    rows = "".join(
        f'<tr class="si-pair"><td>{card(before)}</td><td>{card(now)}</td></tr>'
        for now, before in pairs)
    return f'<table class="si-compare"><tr><th>before</th><th>now</th></tr>{rows}</table>'


def _meta(result: RowResult) -> str:
    return (f"{result.prompt_tokens} prompt + {result.completion_tokens} answer tokens · "
            f"{result.latency_s:.2f} s")


def _answer(result: RowResult) -> str:
    if result.error is not None:
        return ""
    reasoning = (f"<details><summary>reasoning ({len(result.reasoning)} characters)</summary>"
                 f'<pre class="si-reasoning">{escape(result.reasoning)}</pre></details>'
                 if result.reasoning else "")
    answer = split_thinking(result.answer).answer
    return f'{_label("answer")}{reasoning}<pre class="si-answer">{escape(answer)}</pre>'


def _kept(result: RowResult) -> str:
    records = "".join(
        f'<pre class="si-record">{escape(_json(_fields(record)))}</pre>'
        for record in result.records)
    reasons = "".join(
        f'<p class="si-rejected">rejected: {escape(reason["filter"])}: '
        f"{escape(str(reason['detail']))}</p>" for reason in result.rejected)
    head = _label("records distill would write (besides the prompt and answer above)")
    return (head if records else "") + records + reasons


def _label(text: str) -> str:
    return f'<p class="si-label">{escape(text)}</p>'


def _fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _SHOWN_ABOVE}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
