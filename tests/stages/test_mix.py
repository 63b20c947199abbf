"""mix: exact parts by weight, reproducible draws, duplicates removed across sources, the
source of every record, mix.json and the dataset_info.json entry."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.mixing import draw, largest_remainder, record_key
from selfinstruct.stages.mix import MixSettings, MixSource, mix_sources


def test_three_sources_of_a_hundred_split_exactly():
    assert largest_remainder(100, [0.5, 0.3, 0.2]) == [50, 30, 20]
    assert largest_remainder(100, [5, 3, 2]) == [50, 30, 20]
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]  # a tie goes to the earlier one
    assert largest_remainder(7, [0.5, 0.3, 0.2]) == [4, 2, 1]  # 3.5, 2.1, 1.4


@given(st.integers(0, 10_000), st.lists(st.floats(0.001, 1000), min_size=1, max_size=8))
def test_the_parts_add_up_and_stay_within_one_of_their_quota(total, weights):
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / whole) < 1 + 1e-6


def test_a_draw_repeats_only_when_allowed_and_then_evenly():
    rng = random.Random(0)
    picked = draw(5, 9, rng)
    assert len(set(picked)) == 5 and all(0 <= i < 9 for i in picked)
    with pytest.raises(ValueError):
        draw(10, 9, rng)
    counts = Counter(draw(20, 9, rng, allow_repeats=True))
    assert sum(counts.values()) == 20 and set(counts.values()) <= {2, 3}


def test_the_identity_of_a_record_ignores_its_id_and_key_order():
    assert record_key({"id": 1, "a": 1, "b": [2]}) == record_key({"b": [2], "a": 1, "id": 9})
    assert record_key({"a": 1, "b": 2}, ["a"]) == record_key({"a": 1, "b": 3}, ["a"])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def alpaca(start: int, count: int) -> list[dict]:
    return [{"instruction": f"task {i}", "input": "", "output": f"answer {i}"}
            for i in range(start, start + count)]


@pytest.fixture
def sources(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", alpaca(0, 60))
    public = tmp_path / "public.parquet"
    pq.write_table(pa.Table.from_pylist(alpaca(1000, 40)), public)
    synthetic = tmp_path / "synthetic.csv"
    rows = alpaca(2000, 30) + alpaca(5, 1)  # one record that human.jsonl already has
    synthetic.write_text("instruction,input,output\n" + "".join(
        f"{r['instruction']},,{r['output']}\n" for r in rows), encoding="utf-8")
    return human, public, synthetic


def run_mix(*args: str):
    return CliRunner().invoke(cli.app, ["mix", *args])


def mix_args(sources, out: Path, *extra: str, weights=("0.5", "0.3", "0.2")) -> list[str]:
    flags = [item for path, weight in zip(sources, weights, strict=True)
             for item in ("--source", f"{path}:{weight}")]
    return [*flags, "-n", "100", "--seed", "7", "-o", str(out), *extra]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_mix_gives_exact_proportions_and_says_where_each_record_came_from(sources, tmp_path):
    out = tmp_path / "blend" / "mix.jsonl"
    result = run_mix(*mix_args(sources, out))
    assert result.exit_code == 0, result.output
    blend = read(out)
    counts = Counter(r["source"] for r in blend)
    assert counts == {str(sources[0]): 50, str(sources[1]): 30, str(sources[2]): 20}
    assert len({record_key(r, ["instruction"]) for r in blend}) == 100  # no repeats
    report = json.loads((out.parent / "mix.json").read_text())
    parts = {part["source"]: part for part in report["sources"]}
    assert parts[str(sources[2])]["records"] == 31
    assert parts[str(sources[2])]["duplicates_removed"] == 1
    assert parts[str(sources[2])]["available"] == 30
    assert [p["taken"] for p in report["sources"]] == [50, 30, 20]
    assert report["duplicates_removed"] == 1 and report["format"] == "alpaca"
    info = json.loads((out.parent / "dataset_info.json").read_text())
    assert info["mix"] == {"file_name": "mix.jsonl", "columns": {
        "prompt": "instruction", "query": "input", "response": "output"}}
    assert "registered" in result.output


def test_the_same_seed_gives_the_same_blend(sources, tmp_path):
    texts = []
    for seed in ("7", "7", "8"):
        out = tmp_path / f"mix-{len(texts)}.jsonl"
        args = mix_args(sources, out)
        args[args.index("--seed") + 1] = seed
        assert run_mix(*args).exit_code == 0
        texts.append(out.read_text(encoding="utf-8"))
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_a_source_too_small_for_its_part_is_an_error_naming_it(sources, tmp_path):
    result = run_mix(*mix_args(sources, tmp_path / "m.jsonl", weights=("0.2", "0.2", "0.6")))
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert line.startswith("Error:") and "Traceback" not in result.output
    assert (f"{sources[2]} has 30 distinct records (31 read, 1 duplicates removed) but its "
            "weight 0.6 asks for 60 of -n 100") in line
    assert "--allow-upsample" in line
    assert not (tmp_path / "m.jsonl").exists()


def test_upsampling_repeats_a_small_source_evenly(sources, tmp_path):
    out = tmp_path / "m.jsonl"
    result = run_mix(*mix_args(sources, out, "--allow-upsample",
                               weights=("0.2", "0.2", "0.6")))
    assert result.exit_code == 0, result.output
    blend = [r for r in read(out) if r["source"] == str(sources[2])]
    assert len(blend) == 60
    assert set(Counter(r["instruction"] for r in blend).values()) == {2}
    report = json.loads((tmp_path / "mix.json").read_text())
    assert report["sources"][2]["repeated"] == 30


def test_a_field_named_source_is_kept_and_key_fields_decide_duplicates(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "x", "instruction": "same", "output": "one", "source": "gpt"},
        {"id": "y", "instruction": "other", "output": "two", "source": "gpt"}])
    second = write_jsonl(tmp_path / "b.jsonl", [
        {"id": "z", "instruction": "same", "output": "three"},
        {"id": "w", "instruction": "third", "output": "four"}])
    out = tmp_path / "m.json"
    result = run_mix("--source", f"{first}:1", "--source", f"{second}:1", "-n", "3",
                     "--key", "instruction", "-o", str(out))
    assert result.exit_code == 0, result.output
    blend = json.loads(out.read_text())
    assert sorted(r["instruction"] for r in blend) == ["other", "same", "third"]
    assert {r.get("row_source") for r in blend if r["source"] == str(first)} == {"gpt"}


def test_records_of_different_formats_are_mixed_but_not_registered(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "user", "content": f"q{i}"},
                      {"role": "assistant", "content": f"a{i}"}]} for i in range(5)])
    plain = write_jsonl(tmp_path / "plain.jsonl", alpaca(0, 5))
    out = tmp_path / "m.jsonl"
    result = run_mix("--source", f"{chat}:1", "--source", f"{plain}:1", "-n", "6",
                     "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "not registered" in result.output
    assert not (tmp_path / "dataset_info.json").exists()


@pytest.mark.parametrize(("source", "message"), [
    ("data.jsonl", "write FILE:WEIGHT"),
    ("data.jsonl:-1", "write FILE:WEIGHT"),
    ("data.jsonl:x", "write FILE:WEIGHT"),
])
def test_a_bad_source_flag_is_one_line(source, message):
    result = run_mix("--source", source, "-n", "5", "-o", "m.jsonl")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_source_file_is_named(tmp_path):
    result = run_mix("--source", f"{tmp_path / 'nope.jsonl'}:1", "-n", "5",
                     "-o", str(tmp_path / "m.jsonl"))
    assert result.exit_code == 2
    assert "nope.jsonl: no such file" in result.output


def test_the_quota_is_checked_against_the_distinct_records(tmp_path):
    source = write_jsonl(tmp_path / "a.jsonl", alpaca(0, 30) + alpaca(7, 1))
    settings = MixSettings((MixSource(source, 1.0),), 31, tmp_path / "m.jsonl")
    with pytest.raises(UserError, match=re.escape(
            f"{source} has 30 distinct records (31 read, 1 duplicates removed) but its "
            "weight 1 asks for 31 of -n 31")):
        mix_sources(settings)
    assert not (tmp_path / "m.jsonl").exists()
