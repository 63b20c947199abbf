"""Candidates that arrived after ``generate`` reached its target, kept for a later -n.

The requests in flight when the N-th instruction is kept still bring answers, and those
answers were paid for. Their candidates are not filtered (the pool must stop at exactly
N), but they are not thrown away either: each goes to ``rejected.jsonl`` with the filter
``over_target``, with everything needed to keep it later (its input and output for the
alpaca style, the model that wrote it, the request it came from). A resume with a larger
-n runs them through the filters before it sends a new request.

Which of them are still waiting is read from the run files themselves, so nothing is
reconsidered twice, even across a crash: a candidate is settled once its text is in
``instructions.jsonl`` (it was kept) or once a line of ``rejected.jsonl`` judges the
same text with a real filter (it was rejected on reconsideration, or the model wrote it
again and that copy was judged; the verdict is the same, since the pool only grows).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.runs.store import read_jsonl
from selfinstruct.text.tasks import Candidate

#: The ``filter`` of a candidate that arrived after the target was reached.
OVER_TARGET = "over_target"


@dataclass(frozen=True)
class SetAside:
    """A candidate from an earlier session that arrived after its target was reached."""

    candidate: Candidate
    #: The request it came from (numbered within its session) and the model that wrote it.
    request: int | None
    source: str | None


def over_target_record(
    candidate: Candidate, *, request: int, source: str, target: int, alpaca: bool
) -> dict[str, Any]:
    """The ``rejected.jsonl`` line of a candidate that arrived after ``target`` was kept."""
    record: dict[str, Any] = {
        "stage": "generate",
        "candidate": candidate.instruction,
        "filter": OVER_TARGET,
        "detail": f"arrived after the target of {target} was reached; a resume with a "
                  "larger -n considers it before sending new requests",
        "request": request,
        "source": source,
    }
    if alpaca:
        record.update(input=candidate.input, output=candidate.output)
    return record


def pending_over_target(rejected: Path, kept: Iterable[str]) -> list[SetAside]:
    """The over-target candidates of ``rejected`` not settled yet, oldest first (see the
    module docstring); one per text."""
    if not rejected.is_file():
        # Missing, or not a file one can read back (a pipe, /dev/null, /dev/full, whose
        # reading never ends): nothing was set aside that could be found again.
        return []
    waiting: dict[str, dict[str, Any]] = {}
    judged = set(kept)
    for record in read_jsonl(rejected):
        text = record.get("candidate")
        if record.get("stage") != "generate" or not isinstance(text, str):
            continue
        if record.get("filter") == OVER_TARGET:
            waiting.setdefault(text, record)
        else:
            judged.add(text)
    return [_set_aside(record) for text, record in waiting.items() if text not in judged]


def _set_aside(record: dict[str, Any]) -> SetAside:
    candidate = Candidate(
        record["candidate"], str(record.get("input") or ""), str(record.get("output") or "")
    )
    request = record.get("request")
    source = record.get("source")
    return SetAside(
        candidate,
        request if isinstance(request, int) else None,
        source if isinstance(source, str) else None,
    )
