"""The datatrove path (optional extra): the four steps built from the same settings read
the same --field in every step and remove the same planted copies as the in-process path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.errors import UserError
from selfinstruct.stages.dedup import MinHashDedupSettings
from selfinstruct.stages.dedup_datatrove import datatrove_steps, run_local
from tests.helpers import chinese_document, english_document, planted_corpus, write_jsonl

pytest.importorskip("datatrove.pipeline.dedup.minhash", exc_type=ImportError)


def read_folder(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("make", [english_document, chinese_document], ids=["en", "zh"])
def test_datatrove_steps_remove_the_planted_copies_of_the_chosen_field(tmp_path, make):
    records, copies = planted_corpus(make)
    # The field that matters is "body"; "text" (datatrove's default) is the same everywhere,
    # so a step that read it would put every record in one cluster.
    records = [{"id": r["id"], "text": "same", "body": r["text"]} for r in records]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    settings = MinHashDedupSettings(input=source, output=tmp_path / "kept",
                                    removed=tmp_path / "removed", field="body")
    run_local(datatrove_steps(settings, tmp_path / "work"), tmp_path / "work")
    removed, kept = read_folder(tmp_path / "removed"), read_folder(tmp_path / "kept")
    assert {r["id"] for r in removed} == copies
    assert sorted(r["id"] for r in kept + removed) == sorted(r["id"] for r in records)
    assert kept[0] == records[0]  # written back as the record it was


def test_datatrove_steps_need_an_existing_input(tmp_path):
    settings = MinHashDedupSettings(input=tmp_path / "nope.jsonl", output=tmp_path / "kept")
    with pytest.raises(UserError, match="no such file"):
        datatrove_steps(settings, tmp_path / "work")
