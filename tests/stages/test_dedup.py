"""dedup_file: keep a record iff its best ROUGE-L against what was kept (and --against)
is at most the threshold; every kind of bad input is one clear ``file:line:`` error.
dedup_minhash: the first record of each MinHash cluster is kept, in order, the rest go
to --removed with what they duplicate, and --field is the one field every step reads."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from rouge_score import rouge_scorer

from selfinstruct.errors import UserError
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.stages.dedup import (
    DedupSummary,
    MinHashDedupSettings,
    MinHashSummary,
    count_records,
    dedup_file,
    dedup_minhash,
    iter_records,
)
from tests.helpers import (
    chinese_document,
    edit_words,
    english_document,
    planted_corpus,
    write_jsonl,
)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def brute_force_keep(texts: list[str], threshold: float, against: list[str] = ()) -> list[int]:
    """The definition, with rouge_score itself: indexes of the texts that survive."""
    kept_tokens = [tokenize(t) for t in against]
    kept = []
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        best = max((rouge_scorer._score_lcs(tokens, other).fmeasure for other in kept_tokens),
                   default=0.0)
        if best <= threshold:
            kept.append(i)
            kept_tokens.append(tokens)
    return kept


RECORDS = [
    {"instruction": "Write a poem about the sea.", "id": 1},
    {"instruction": "Write a poem about the sea!", "id": 2},           # duplicate of 1
    {"instruction": "Explain how photosynthesis works.", "id": 3},
    {"instruction": "Write a short poem about the sea.", "id": 4},     # 0.93 vs 1
    {"instruction": "List three prime numbers.", "id": 5},
    {"instruction": "写一首关于大海的诗。", "id": 6},
    {"instruction": "写一首关于大海的诗", "id": 7},                    # duplicate of 6
    {"instruction": "Translate this sentence into French.", "id": 8},
]


def test_keeps_first_of_each_near_duplicate_group(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    calls: list[tuple[int, int]] = []
    summary = dedup_file(source, tmp_path / "out.jsonl", threshold=0.7,
                         progress=lambda read, kept: calls.append((read, kept)))
    kept = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in kept] == [1, 3, 5, 6, 8]
    assert kept[0] == RECORDS[0]  # records are copied whole, not just the field
    assert (summary.read, summary.kept, summary.dropped) == (8, 5, 3)
    assert summary.elapsed_seconds > 0
    assert calls[-1] == (8, 5) and len(calls) == 8


def test_matches_brute_force_rouge_score_at_several_thresholds(tmp_path: Path) -> None:
    words = ["write", "a", "poem", "story", "about", "the", "sea", "cat", "猫", "海"]
    texts = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(2 + i % 6))
             for i in range(120)]
    source = write_jsonl(tmp_path / "in.jsonl", [{"instruction": t} for t in texts])
    for threshold in (0.0, 0.5, 0.7, 1.0):
        out = tmp_path / f"out-{threshold}.jsonl"
        summary = dedup_file(source, out, threshold=threshold)
        expected = [texts[i] for i in brute_force_keep(texts, threshold)]
        assert [r["instruction"] for r in read_jsonl(out)] == expected
        assert summary.kept == len(expected)


def test_rouge_tokenizer_does_not_see_chinese_duplicates(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    summary = dedup_file(source, tmp_path / "out.jsonl", tokenizer="rouge")
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 3, 5, 6, 7, 8]
    assert summary.dropped == 2


def test_against_file_drops_records_similar_to_seeds(tmp_path: Path) -> None:
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"instruction": "Explain how photosynthesis works in plants."},
        {"instruction": "List three prime numbers."},
    ])
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    summary = dedup_file(source, tmp_path / "out.jsonl", against=seeds)
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 6, 8]
    assert (summary.kept, summary.dropped, summary.against) == (3, 5, 2)


def test_json_array_input_and_other_field(tmp_path: Path) -> None:
    records = [{"prompt": r["instruction"], "n": r["id"]} for r in RECORDS]
    source = tmp_path / "in.json"
    source.write_text("\ufeff  " + json.dumps(records, ensure_ascii=False, indent=2),
                      encoding="utf-8")
    dedup_file(source, tmp_path / "out.jsonl", field="prompt")
    assert [r["n"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 3, 5, 6, 8]


def test_json_array_records_know_their_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text('[\n  {"instruction": "a"},\n\n  {"instruction":\n "b"}, {"instruction": "c"}'
                      "\n]\n", encoding="utf-8")
    assert [(r.line, r.text) for r in iter_records(source)] == [(2, "a"), (4, "b"), (5, "c")]


def test_blank_lines_and_empty_array_are_fine(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('\n{"instruction": "a"}\n\n   \n{"instruction": "b c"}\n', encoding="utf-8")
    assert [(r.line, r.text) for r in iter_records(source)] == [(2, "a"), (5, "b c")]
    empty_array = tmp_path / "empty.json"
    empty_array.write_text(" [ ] \n", encoding="utf-8")
    summary = dedup_file(empty_array, tmp_path / "out.jsonl")
    assert (summary.read, summary.kept) == (0, 0)
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_output_is_replaced_not_appended(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS[:1])
    out = tmp_path / "out.jsonl"
    out.write_text("old content\n", encoding="utf-8")
    dedup_file(source, out)
    assert read_jsonl(out) == RECORDS[:1]


def test_count_records_validates_and_counts(tmp_path: Path) -> None:
    assert count_records(write_jsonl(tmp_path / "in.jsonl", RECORDS)) == len(RECORDS)


def test_summary_throughput() -> None:
    assert DedupSummary(read=10, kept=5, dropped=5, elapsed_seconds=2.0).records_per_second == 5
    assert DedupSummary(read=0, kept=0, dropped=0, elapsed_seconds=0.0).records_per_second == 0


# ---------------------------------------------------------------------------
# Bad input: one message naming file and line, and no output written
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"", ":1: the file is empty"),
    (b"  \n\n", ":1: the file is empty"),
    (b'{"instruction": "ok"}\n{"instruction": "ok2"\n', ":2: not valid JSON (Expecting ',' "
                                                        "delimiter at column 22)"),
    (b'{"instruction": "ok"}\n\n["a list"]\n', ":3: expected a JSON object, got an array"),
    (b'"just a string"\n', ":1: expected a JSON object, got a string"),
    (b'{"instruction": "ok"}\n{"text": "x", "id": 2}\n', ":2: no 'instruction' field "
                                                          "(fields: id, text); use --field"),
    (b'{"instruction": 5}\n', ":1: field 'instruction' is a number, expected a string"),
    (b'{"instruction": null}\n', ":1: field 'instruction' is null, expected a string"),
    (b'{"instruction": "ok"}\n{"instruction": "caf\xe9"}\n', ":2: not valid UTF-8 (byte 0xe9"),
    (b'[\n {"instruction": "a"},\n 42\n]', ":3: expected a JSON object, got a number"),
    (b'[\n {"instruction": "a"},\n {"x": 1}\n]', ":3: no 'instruction' field (fields: x)"),
    (b'[\n {"instruction": "a"}\n {"instruction": "b"}\n]', ":3: not valid JSON (expected ','"),
    (b'[\n {"instruction": "a"},\n]', ":3: not valid JSON (Expecting value"),
    (b'[{"instruction": "a"}] extra', ":1: unexpected content after the JSON array"),
    (b'[\n{"instruction": "\xff"}]', ":2: not valid UTF-8 (byte 0xff)"),
])
def test_bad_input_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserError) as caught:
        dedup_file(source, out)
    assert str(caught.value).startswith(f"{source}{message}")
    assert caught.value.exit_code == 2
    assert not out.exists()


def test_bad_against_file_is_reported_with_its_own_name(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "fine"}\n{"task": "no field"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"seeds\.jsonl:2: no 'instruction' field"):
        dedup_file(source, tmp_path / "out.jsonl", against=seeds)
    assert not (tmp_path / "out.jsonl").exists()


def test_output_equal_to_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="is the input; write to a different file"):
        dedup_file(source, Path("in.jsonl"))
    with pytest.raises(UserError, match="is the --against file"):
        dedup_file(source, tmp_path / "seeds.jsonl", against=Path("seeds.jsonl"))
    assert read_jsonl(source) == RECORDS


@pytest.mark.parametrize(("options", "message"), [
    ({"threshold": 1.5}, "--similarity-threshold must be between 0 and 1, got 1.5"),
    ({"threshold": -0.1}, "--similarity-threshold must be between 0 and 1"),
    ({"tokenizer": "bert"}, "unknown tokenizer 'bert'; use one of: multilingual, rouge"),
])
def test_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    with pytest.raises(UserError, match=re.escape(message)):
        dedup_file(source, tmp_path / "out.jsonl", **options)


def test_missing_input_and_unwritable_output(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.jsonl: no such file"):
        dedup_file(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")
    with pytest.raises(UserError, match="is a directory"):
        dedup_file(tmp_path, tmp_path / "out.jsonl")
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    with pytest.raises(UserError, match=r"cannot write .*missing/out\.jsonl"):
        dedup_file(source, tmp_path / "missing" / "out.jsonl")


# ---------------------------------------------------------------------------
# MinHash: dedup_minhash(settings)
# ---------------------------------------------------------------------------

def minhash(tmp_path: Path, records: list[dict[str, Any]], **options: Any):
    source = write_jsonl(tmp_path / "in.jsonl", records)
    settings = MinHashDedupSettings(input=source, output=tmp_path / "kept.jsonl",
                                    removed=tmp_path / "removed.jsonl", **options)
    summary = dedup_minhash(settings)
    return summary, read_jsonl(tmp_path / "kept.jsonl"), read_jsonl(tmp_path / "removed.jsonl")


@pytest.mark.parametrize("make", [english_document, chinese_document], ids=["en", "zh"])
def test_minhash_removes_planted_near_duplicates(tmp_path: Path, make) -> None:
    records, copies = planted_corpus(make)
    summary, kept, removed = minhash(tmp_path, records, field="text")
    assert {r["id"] for r in removed} == copies
    assert all(r["source"] == "base" for r in kept)
    assert (summary.read, summary.kept, summary.removed, summary.clusters) == (48, 40, 8, 8)


def test_minhash_kept_and_removed_partition_the_input_in_order(tmp_path: Path) -> None:
    records, _ = planted_corpus(english_document)
    summary, kept, removed = minhash(tmp_path, records, field="text")
    ids = [r["id"] for r in records]
    kept_ids = [r["id"] for r in kept]
    removed_ids = [r["id"] for r in removed]
    assert sorted(kept_ids + removed_ids) == sorted(ids)
    assert not set(kept_ids) & set(removed_ids)
    assert kept_ids == [i for i in ids if i in set(kept_ids)]  # input order
    assert removed_ids == [i for i in ids if i in set(removed_ids)]
    # Records are copied whole; the removed ones gain exactly two fields.
    assert kept == [r for r in records if r["id"] in set(kept_ids)]
    by_id = {r["id"]: r for r in records}
    for record in removed:
        extra = {k: v for k, v in record.items() if k not in by_id[record["id"]]}
        assert set(extra) == {"duplicate_of", "estimated_jaccard"}
    tokens = {r["id"]: len(tokenize(r["text"])) for r in records}
    assert summary.tokens_before == sum(tokens.values())
    assert summary.tokens_after == sum(tokens[i] for i in kept_ids)


def test_minhash_keeps_the_first_and_names_it_in_duplicate_of(tmp_path: Path) -> None:
    rng = random.Random(2)
    base = english_document(rng)
    records = [
        {"id": "other", "text": english_document(rng)},
        {"id": "late-copy", "text": edit_words(base, rng, 1, "x")},  # first in order: kept
        {"id": "original", "text": base},
        {"id": "exact", "text": base},
    ]
    _, kept, removed = minhash(tmp_path, records, field="text")
    assert [r["id"] for r in kept] == ["other", "late-copy"]
    assert [(r["id"], r["duplicate_of"]) for r in removed] == [("original", "late-copy"),
                                                               ("exact", "late-copy")]
    assert all(0.9 <= r["estimated_jaccard"] <= 1.0 for r in removed)
    assert all(r["estimated_jaccard"] == round(r["estimated_jaccard"], 4) for r in removed)


def test_minhash_duplicate_of_is_the_position_without_an_id_field(tmp_path: Path) -> None:
    text = "the same long enough sentence is written here twice over"
    records = [{"text": "something else entirely, a different sentence"}, {"text": text},
               {"text": text}]
    _, kept, removed = minhash(tmp_path, records, field="text")
    assert len(kept) == 2
    assert removed == [{"text": text, "duplicate_of": 1, "estimated_jaccard": 1.0}]
    _, _, removed = minhash(tmp_path, [{**r, "key": i} for i, r in enumerate(records)],
                            field="text", id_field="key")
    assert removed[0]["duplicate_of"] == 1


def test_minhash_hashes_the_field_it_is_given(tmp_path: Path) -> None:
    """The article's bug: stage 1 hashed another field than the rest used, and found no
    duplicates. Here the instruction is the same everywhere and the outputs are distinct
    except one near-copy: only the field asked for may decide."""
    rng = random.Random(4)
    outputs = [english_document(rng) for _ in range(6)]
    outputs.append(edit_words(outputs[2], rng, 1, "x"))
    records = [{"id": i, "instruction": "Write an essay.", "output": text}
               for i, text in enumerate(outputs)]
    summary, kept, removed = minhash(tmp_path, records, field="output")
    assert [r["id"] for r in removed] == [6]
    assert [r["duplicate_of"] for r in removed] == [2]
    assert summary.tokens_before == sum(len(tokenize(t)) for t in outputs)
    # The same records on the instruction field: all one cluster.
    _, kept, removed = minhash(tmp_path, records, field="instruction")
    assert [r["id"] for r in kept] == [0]
    # A record whose other field is identical but whose --field differs stays.
    twins = [{"id": "a", "instruction": "Same prompt", "output": outputs[0]},
             {"id": "b", "instruction": "Same prompt", "output": outputs[1]}]
    _, kept, removed = minhash(tmp_path, twins, field="output")
    assert ([r["id"] for r in kept], removed) == (["a", "b"], [])


def test_minhash_missing_field_names_file_and_line_before_writing(tmp_path: Path) -> None:
    records = [{"text": "a b c"}, {"output": "no text field"}]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    settings = MinHashDedupSettings(input=source, output=tmp_path / "kept.jsonl",
                                    removed=tmp_path / "removed.jsonl", field="text")
    with pytest.raises(UserError, match=r"in\.jsonl:2: no 'text' field \(fields: output\)"):
        dedup_minhash(settings)
    assert not (tmp_path / "kept.jsonl").exists()
    assert not (tmp_path / "removed.jsonl").exists()


def test_minhash_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    # Pairs at true Jaccard ~0.6-0.75, where LSH finds some and misses some: which
    # ones depends on the hash functions, so on the seed and nothing else.
    rng = random.Random(8)
    records = []
    for i in range(40):
        base = english_document(rng)
        records += [{"id": f"b{i}", "text": base},
                    {"id": f"c{i}", "text": edit_words(base, rng, 10, "x")}]
    runs = {}
    for seed in (1, 1, 2):
        _, _, removed = minhash(tmp_path, records, field="text", seed=seed)
        runs.setdefault(seed, []).append(removed)
    assert runs[1][0] == runs[1][1]
    assert runs[1][0] != runs[2][0]


def test_minhash_without_removed_file_and_empty_input(tmp_path: Path) -> None:
    source = tmp_path / "empty.json"
    source.write_text("[]", encoding="utf-8")
    summary = dedup_minhash(MinHashDedupSettings(input=source, output=tmp_path / "kept.jsonl"))
    assert (summary.read, summary.kept, summary.removed, summary.tokens_before) == (0, 0, 0, 0)
    assert (tmp_path / "kept.jsonl").read_text() == ""
    assert summary.records_per_second == 0.0  # nothing read, however long it took
    assert MinHashSummary(10, 10, 0, 0, 0, 0, elapsed_seconds=2.0).records_per_second == 5.0
    assert MinHashSummary(10, 10, 0, 0, 0, 0, elapsed_seconds=0.0).records_per_second == 0.0


@pytest.mark.parametrize(("options", "message"), [
    ({"ngram": 0}, "--ngram must be at least 1, got 0"),
    ({"bands": 0}, "--bands must be at least 1, got 0"),
    ({"rows": 0}, "--rows must be at least 1, got 0"),
    ({"num_perm": 128}, "--num-perm 128 is not --bands x --rows = 14 x 8 = 112"),
    ({"bands": 16, "num_perm": 112}, "--num-perm 112 is not --bands x --rows = 16 x 8 = 128"),
    ({"seed": -3}, "--seed must not be negative, got -3"),
    ({"tokenizer": "bert"}, "unknown tokenizer 'bert'"),
])
def test_minhash_bad_settings_are_user_errors(tmp_path: Path, options: dict[str, Any],
                                              message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        MinHashDedupSettings(input=tmp_path / "in.jsonl", output=tmp_path / "o.jsonl",
                             **options)
    assert "\n" not in str(caught.value)


def test_minhash_num_perm_equal_to_bands_times_rows_is_accepted(tmp_path: Path) -> None:
    text = "the quick brown fox jumps over the lazy dog near the river bank today"
    source = write_jsonl(tmp_path / "i.jsonl", [{"instruction": text}, {"instruction": text},
                                                {"instruction": "something else entirely"}])
    settings = MinHashDedupSettings(input=source, output=tmp_path / "o.jsonl", bands=20,
                                    rows=5, num_perm=100)
    summary = dedup_minhash(settings)
    assert (settings.num_perm, summary.read, summary.kept, summary.removed) == (100, 3, 2, 1)
    assert [r["instruction"] for r in read_jsonl(tmp_path / "o.jsonl")] == [
        text, "something else entirely"]


def test_minhash_refuses_outputs_that_overwrite_the_input_or_each_other(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "a b c"}])
    cases = [({"output": source}, "output .* is the input"),
             ({"removed": source}, "--removed file .* is the input"),
             ({"removed": tmp_path / "kept.jsonl"}, "--removed .* is the output"),
             ({"output": tmp_path}, "is a directory")]
    for options, message in cases:
        settings = MinHashDedupSettings(**{"input": source, "output": tmp_path / "kept.jsonl",
                                           **options})
        with pytest.raises(UserError, match=message):
            dedup_minhash(settings)
    assert read_jsonl(source) == [{"instruction": "a b c"}]
