"""What the page shows of a row's result."""

from __future__ import annotations

import re

from selfinstruct.runs.rows import Row
from selfinstruct.ui.session import RowResult
from selfinstruct.ui.view import card, compare, rows_table

KEPT = RowResult("row1", {"topic": "rust"}, "Ask about rust", "<think>hmm, rust</think>[1]",
                 "hmm, rust", [{"id": "row1", "instruction": "Why <rust>?", "prompt": "p",
                                "response": "r"}], prompt_tokens=12, completion_tokens=5,
                 latency_s=0.25)


def test_a_card_folds_the_reasoning_and_shows_the_records_fields():
    html = card(KEPT)
    assert "row1 · 1 record" in html and "12 prompt + 5 answer tokens · 0.25 s" in html
    folded = re.search(r"<details><summary>reasoning[^<]*</summary>(.*?)</details>", html)
    assert folded is not None and "hmm, rust" in folded.group(1)
    assert re.search(r'<pre class="si-answer">\[1\]</pre>', html)
    record = re.search(r'<pre class="si-record">(.*?)</pre>', html, re.S)
    assert record is not None and "Why &lt;rust&gt;?" in record.group(1)
    assert '"response"' not in record.group(1)  # shown once, above


def test_a_rejected_or_failed_row_says_why():
    rejected = RowResult("row2", {}, "p", "words", rejected=[
        {"filter": "unparseable", "detail": "no JSON in the answer"}])
    assert "rejected (unparseable): no JSON in the answer" in card(rejected)
    failed = RowResult("row3", {}, "p", error="HTTP 500")
    assert "request failed: HTTP 500" in card(failed) and "si-answer" not in card(failed)


def test_compare_pairs_rows_that_ran_before():
    earlier = RowResult("row1", {}, "the old prompt", "old")
    html = compare([KEPT, RowResult("row9", {}, "new", "x")], {"row1": earlier})
    assert html.count('class="si-pair"') == 1
    assert html.index("the old prompt") < html.index("Ask about rust")


def test_the_rows_table_lists_every_column():
    html = rows_table([("a", Row("l1", {"x": 1})), ("b", Row("l2", {"y": "<b>"}))])
    assert "<th>id</th><th>x</th><th>y</th>" in html and "<td>&lt;b&gt;</td>" in html
