"""export --best-of and --pairs: the best of K answers and preference pairs, from the
judge's scores or a reason run's reference answers, in each format, through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec, use_backend
from selfinstruct.llm.base import Request
from selfinstruct.llm.fake import FakeBackend, completion
from selfinstruct.reporting.facts import gather
from selfinstruct.runs.pairs import TrainingExample
from selfinstruct.stages.best_of import best_of
from selfinstruct.stages.distill import SAMPLES_TEMPERATURE
from selfinstruct.stages.export import export_run
from selfinstruct.stages.preference import (
    PreferencePair,
    export_pairs,
    make_pairs,
    pair_dataset_info_entry,
    pair_records,
)
from selfinstruct.stages.ranking import group_by_prompt
from tests.helpers import flat

runner = CliRunner()
VERDICT = {"accuracy": 4, "completeness": 4, "relevance": 5, "harmlessness": 5,
           "format": 3, "reason": "ok"}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def trace(prompt: str, sample: int, answer: str, **extra: Any) -> TrainingExample:
    record = {"id": prompt, "sample": sample, "instruction": f"Q {prompt}", "input": "",
              "answer": answer, "reasoning": "", **extra}
    return TrainingExample(f"Q {prompt}", "", answer, None, f"{prompt}/{sample}",
                           fields=record)


# -- best of K ---------------------------------------------------------------------------


def test_best_of_keeps_the_top_score_and_the_lowest_sample_on_a_tie():
    # Samples arrive out of order (as concurrent answers are written): the tie between
    # samples 1 and 3 goes to sample 1 wherever it lies in the file.
    examples = [trace("p", 3, "d"), trace("p", 0, "a"), trace("p", 1, "b"), trace("p", 2, "c"),
                trace("q", 0, "x"), trace("q", 1, "y"), trace("r", 0, "unjudged")]
    scores = {"p/0": 2.0, "p/1": 4.5, "p/2": 1.0, "p/3": 4.5, "q/0": 3.0}
    best = best_of(group_by_prompt(examples), scores)
    assert [e.key for e in best.examples] == ["p/1", "q/0"]
    assert (best.prompts, best.unscored_prompts) == (3, 1)


def test_distilled_items_of_one_row_are_separate_prompts():
    def distilled(item: int, sample: int) -> TrainingExample:
        record = {"id": "row0", "item": item, "sample": sample, "prompt": "same prompt",
                  "response": "raw", "answer": f"{item}-{sample}"}
        return TrainingExample("same prompt", "", f"{item}-{sample}", None,
                               f"row0/{item}/{sample}", fields=record)

    groups = group_by_prompt([distilled(0, 0), distilled(1, 0), distilled(0, 1),
                              distilled(1, 1)])
    assert [[e.key for e in group] for group in groups] == [["row0/0/0", "row0/0/1"],
                                                            ["row0/1/0", "row0/1/1"]]


# -- pairs -------------------------------------------------------------------------------


def test_pairs_take_top_and_bottom_only_when_the_margin_allows():
    examples = [trace("p", s, f"p{s}") for s in range(4)] + \
               [trace("q", s, f"q{s}") for s in range(3)] + \
               [trace("r", 0, "r0"), trace("r", 1, "r1"), trace("u", 0, "u0")]
    scores = {"p/0": 3, "p/1": 5, "p/2": 5, "p/3": 1,        # top 5 (s1), bottom 1 (s3)
              "q/0": 4, "q/1": 3.5, "q/2": 4,                # 0.5 apart: below margin 1
              "r/0": 4}                                      # one scored answer
    made = make_pairs(group_by_prompt(examples), scores, 1.0)
    assert [(p.chosen.key, p.rejected.key) for p in made.pairs] == [("p/1", "p/3")]
    assert (made.prompts, made.below_margin, made.single, made.unscored) == (4, 1, 1, 1)
    assert make_pairs(group_by_prompt(examples), scores, 0.5).pairs[1].chosen.key == "q/0"
    every = make_pairs(group_by_prompt(examples), scores, 2.0, every=True)
    assert sorted((p.chosen.key, p.rejected.key) for p in every.pairs) == [
        ("p/0", "p/3"), ("p/1", "p/0"), ("p/1", "p/3"), ("p/2", "p/0"), ("p/2", "p/3")]
    high = make_pairs(group_by_prompt(examples), scores, 1.0, min_score=5.5)
    assert (high.pairs, high.below_min_score) == ([], 1)


def pair(system: str | None = None, reasoning: str | None = None) -> PreferencePair:
    good = TrainingExample("Translate", "chat", "猫", reasoning, "a/0", system)
    bad = TrainingExample("Translate", "chat", "dog", None, "a/1", system)
    return PreferencePair(good, bad, 5.0, 1.0)


def test_each_format_has_the_shape_its_trainer_reads():
    [alpaca] = pair_records([pair("Be brief.")], "alpaca")
    assert alpaca == {"instruction": "Translate", "input": "chat", "chosen": "猫",
                      "rejected": "dog", "system": "Be brief."}
    [sharegpt] = pair_records([pair("Be brief.")], "sharegpt")
    assert sharegpt == {
        "conversations": [{"from": "system", "value": "Be brief."},
                          {"from": "human", "value": "Translate\nchat"}],
        "chosen": {"from": "gpt", "value": "猫"}, "rejected": {"from": "gpt", "value": "dog"}}
    [messages] = pair_records([pair()], "messages")
    assert messages == {"prompt": [{"role": "user", "content": "Translate\nchat"}],
                        "chosen": [{"role": "assistant", "content": "猫"}],
                        "rejected": [{"role": "assistant", "content": "dog"}]}


def test_traces_follow_think():
    [inline] = pair_records([pair(reasoning="r")], "alpaca")
    assert inline["chosen"] == "<think>\nr\n</think>\n\n猫" and inline["rejected"] == "dog"
    [field] = pair_records([pair(reasoning="r")], "sharegpt", "field")
    assert field["chosen"] == {"from": "gpt", "value": "猫", "reasoning_content": "r"}
    [dropped] = pair_records([pair(reasoning="r")], "alpaca", "drop")
    assert dropped["chosen"] == "猫" and "chosen_reasoning" not in dropped


def test_dataset_info_entries_are_llamafactory_ranking_entries():
    # LLaMA-Factory's data/README: a ranking Alpaca dataset maps prompt, query, chosen,
    # rejected (and system); a ranking ShareGPT one maps messages, chosen, rejected.
    alpaca = pair_dataset_info_entry("alpaca", "alpaca_pairs.json", system=True)
    assert alpaca == {"file_name": "alpaca_pairs.json", "ranking": True, "columns": {
        "prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
        "system": "system"}}
    sharegpt = pair_dataset_info_entry("sharegpt", "sharegpt_pairs.json")
    assert sharegpt["ranking"] is True and sharegpt["formatting"] == "sharegpt"
    assert sharegpt["columns"] == {"messages": "conversations", "chosen": "chosen",
                                   "rejected": "rejected"}
    [record] = pair_records([pair("Be brief.")], "sharegpt")
    tags = sharegpt["tags"]
    # LLaMA-Factory's converter: the turns end on the user, chosen/rejected are one
    # assistant message each.
    assert record["conversations"][-1][tags["role_tag"]] == tags["user_tag"]
    assert record["chosen"][tags["role_tag"]] == tags["assistant_tag"]


# -- whole exports -----------------------------------------------------------------------


def scored_run(tmp_path: Path) -> Path:
    """A reason run of two prompts, three traces each, judged; one prompt unjudged."""
    run = tmp_path / "run"
    records = [{"id": p, "sample": s, "instruction": f"Q {p}", "input": "",
                "reasoning": f"think {p}{s}", "answer": f"{p}{s}", "model": "m"}
               for p in ("a", "b", "c") for s in range(3)]
    write_jsonl(run / "reasoning.jsonl", records)
    write_jsonl(run / "scores.jsonl", [
        {"id": key, "sample": 0, "overall": value, "scores": {}, "model": "judge"}
        for key, value in {"a/0": 2, "a/1": 5, "a/2": 1, "b/0": 4, "b/1": 4, "b/2": 3.5}.items()
    ])
    return run


def test_export_best_of_with_min_score(tmp_path):
    run = scored_run(tmp_path)
    result = export_run(run, "alpaca", best_of=True, think="drop")
    kept = json.loads(result.path.read_text())
    assert [r["output"] for r in kept] == ["a1", "b0"]
    assert "2 of 3 prompts; 1 prompts without a scored answer" in result.summary[0]
    stats = json.loads((run / "stats.json").read_text())
    assert stats["best_of"] == {"prompts": 3, "best_of_kept": 2, "unscored_prompts": 1}
    high = export_run(run, "alpaca", best_of=True, min_score=4.5, think="drop")
    assert [r["output"] for r in json.loads(high.path.read_text())] == ["a1"]
    assert high.curated is not None and high.curated.below_min_score == 1


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_export_pairs_writes_and_registers_each_format(tmp_path, fmt):
    run = scored_run(tmp_path)
    result = export_pairs(run, fmt, think="drop")
    records = (read_jsonl(result.path) if fmt == "messages"
               else json.loads(result.path.read_text()))
    assert len(records) == 1 and result.count == 1 and result.unit == "pairs"
    if fmt == "messages":
        assert result.dataset_name is None and "TRL" in result.note
        assert records[0]["chosen"][0]["content"] == "a1"
        assert not (run / "export" / "dataset_info.json").exists()
        return
    info = json.loads((run / "export" / "dataset_info.json").read_text())
    assert info[result.dataset_name]["ranking"] is True
    assert info[result.dataset_name]["file_name"] == result.path.name
    chosen = records[0]["chosen"]
    assert (chosen if fmt == "alpaca" else chosen["value"]) == "a1"
    stats = json.loads((run / "stats.json").read_text())["pairs"]
    assert (stats["pairs"], stats["below_margin"], stats["unscored"]) == (1, 1, 1)


def test_pairs_need_scores_and_a_positive_margin(tmp_path):
    run = scored_run(tmp_path)
    with pytest.raises(UserError, match="--min-margin must be positive"):
        export_pairs(run, "alpaca", margin=0)
    (run / "scores.jsonl").unlink()
    with pytest.raises(UserError, match=r"no scores\.jsonl for --pairs"):
        export_pairs(run, "alpaca")


# -- reason with references: correct over wrong, no judge --------------------------------


def test_reason_reference_pairs_choose_correct_over_wrong(tmp_path):
    prompts = write_jsonl(tmp_path / "math.jsonl", [
        {"id": "m1", "instruction": "2+2?", "ref": "4"},
        {"id": "m2", "instruction": "3+3?", "ref": "6"},
    ])
    answers = {"2+2?": ["4", "5", "4"], "3+3?": ["6", "6", "6"]}

    def script(request: Request, number: int):
        return completion(f"<think>sum</think>{answers[request.prompt].pop(0)}")

    out = tmp_path / "r"
    with use_backend(FakeBackend(script)):
        result = runner.invoke(cli.app, [
            "reason", str(prompts), "-o", str(out), "--samples", "3", "--reference-field",
            "ref", "--concurrency", "1", "--base-url", "http://127.0.0.1:9/v1",
            "--model", "thinker"])
    assert result.exit_code == 0, result.output
    exported = runner.invoke(cli.app, ["export", str(out), "--pairs", "--format", "alpaca"])
    assert exported.exit_code == 0, exported.output
    assert "ranked by reference answers" in exported.output
    [only] = json.loads((out / "export" / "alpaca_pairs.json").read_text())
    assert only["instruction"] == "2+2?"
    assert only["chosen"].endswith("4") and only["rejected"].endswith("5")
    stats = json.loads((out / "stats.json").read_text())["pairs"]
    assert (stats["basis"], stats["pairs"], stats["below_margin"]) == ("reference", 1, 1)


# -- the chain of the issue: distill --samples 4 -> score -> export ----------------------

#: The judge's overall score of each distilled answer: prompt row0 has a tie at the top,
#: row1 four equal answers (no pair), row2 answers one point apart.
OVERALL = {"row0": [3, 5, 5, 1], "row1": [4, 4, 4, 4], "row2": [2, 3, 2, 3]}


def distill_answer(request: Request, number: int) -> str:
    row = re.search(r"row(\d)", request.prompt)
    assert row is not None
    key = f"row{row.group(1)}"
    drawn = distill_answer.drawn.setdefault(key, 0)  # type: ignore[attr-defined]
    distill_answer.drawn[key] += 1  # type: ignore[attr-defined]
    return f"answer-{key}-{drawn}"


def judge_answer(request: Request, number: int) -> str:
    found = re.search(r"answer-(row\d)-(\d)", request.prompt)
    assert found is not None
    overall = OVERALL[found.group(1)][int(found.group(2))]
    return json.dumps({**VERDICT, "overall": overall})


def test_distill_score_export_best_of_and_pairs(tmp_path):
    rows = write_jsonl(tmp_path / "p.jsonl", [{"q": f"question row{i}"} for i in range(3)])
    (tmp_path / "t.txt").write_text("Answer: {q}", encoding="utf-8")
    out = tmp_path / "out"
    distill_answer.drawn = {}  # type: ignore[attr-defined]
    with use_backend(FakeBackend(distill_answer)):
        result = runner.invoke(cli.app, [
            "distill", str(rows), "--user-template", str(tmp_path / "t.txt"), "--samples",
            "4", "-o", str(out), "--base-url", "http://127.0.0.1:9/v1", "--model", "t"])
    assert result.exit_code == 0, result.output
    with use_backend(FakeBackend(judge_answer)):
        result = runner.invoke(cli.app, ["score", str(out), "--language", "en"])
    assert result.exit_code == 0, result.output
    # What each sample holds and scored, read back from the run itself.
    score_of: dict[str, dict[int, tuple[float, str]]] = {}
    for record in read_jsonl(out / "distilled.jsonl"):
        row, drawn = re.findall(r"answer-(row\d)-(\d)", record["answer"])[0]
        score_of.setdefault(row, {})[record["sample"]] = (OVERALL[row][int(drawn)],
                                                          record["answer"])
    best = {row: max(sorted(s.items()), key=lambda kv: kv[1][0])[1][1]
            for row, s in score_of.items()}

    result = runner.invoke(cli.app, ["export", str(out), "--best-of"])
    assert result.exit_code == 0, result.output
    kept = json.loads((out / "export" / "alpaca.json").read_text())
    assert sorted(r["output"] for r in kept) == sorted(best.values())
    assert "--best-of: the top-scored answer of 3 of 3 prompts" in result.output

    result = runner.invoke(cli.app, ["export", str(out), "--pairs", "--min-margin", "1",
                                     "--format", "alpaca"])
    assert result.exit_code == 0, result.output
    pairs = json.loads((out / "export" / "alpaca_pairs.json").read_text())
    assert len(pairs) == 2  # row1's answers all scored 4
    for record in pairs:
        row = re.findall(r"row\d", record["instruction"])[0]
        values = [v for v, _ in score_of[row].values()]
        text_score = {text: v for v, text in score_of[row].values()}
        assert text_score[record["chosen"]] == max(values)
        assert text_score[record["rejected"]] == min(values)
        assert max(values) - min(values) >= 1
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert info["out_alpaca_pairs"]["ranking"] is True
    assert "exported 2 pairs" in result.output

    every = runner.invoke(cli.app, ["export", str(out), "--pairs-all", "--format", "sharegpt",
                                    "--min-margin", "2"])
    assert every.exit_code == 0, every.output
    # row0: 5, 5 and 3 over 1 are at least 2 apart; 5 over 3 too (twice).
    assert len(json.loads((out / "export" / "sharegpt_pairs.json").read_text())) == 5

    # report: the spread within prompts, and what the margin kept (the last --pairs run).
    facts = gather(out)
    assert (facts.spread["prompts"], facts.spread["disagree"]) == (3, 2)
    assert sorted(facts.spread["spreads"]) == [0, 1, 4]
    [pairs_funnel] = [f for f in facts.funnels if f.stage == "pairs"]
    assert (pairs_funnel.candidates, pairs_funnel.kept) == (3, 1)
    assert pairs_funnel.rejected == [("below_margin", 2)]
    assert runner.invoke(cli.app, ["report", str(out)]).exit_code == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Score spread within prompts" in page and "5 pairs at least 2 apart" in page


def test_pairs_refuse_a_text_format_and_best_of(tmp_path):
    run = scored_run(tmp_path)
    text = runner.invoke(cli.app, ["export", str(run), "--pairs", "--format", "text"])
    assert text.exit_code != 0 and "pairs are written as alpaca" in text.output
    both = runner.invoke(cli.app, ["export", str(run), "--pairs", "--best-of"])
    assert both.exit_code != 0 and "pick one" in both.output


# -- several teachers --------------------------------------------------------------------


def teacher_backend(spec: BackendSpec) -> FakeBackend:
    """Each teacher answers in its own words, so a record shows who wrote it."""
    return FakeBackend(lambda request, number: f"<think>hm</think>{spec.model} says "
                                               f"{request.prompt}",
                       name=spec.model)


def test_two_teachers_answer_the_same_rows_and_pairs_span_them(tmp_path):
    rows = write_jsonl(tmp_path / "p.jsonl", [{"q": f"question row{i}"} for i in range(2)])
    (tmp_path / "t.txt").write_text("Answer: {q}", encoding="utf-8")
    out = tmp_path / "out"
    args = ["distill", str(rows), "--user-template", str(tmp_path / "t.txt"), "-o", str(out),
            "--base-url", "http://127.0.0.1:9/v1", "--model", "strong", "--model", "weak"]
    made: list[FakeBackend] = []

    def backend(spec: BackendSpec) -> FakeBackend:
        made.append(teacher_backend(spec))
        return made[-1]

    with use_backend(backend):
        too_few = runner.invoke(cli.app, [*args, "--samples", "1"])
        assert too_few.exit_code != 0 and "--samples 2 or more" in flat(too_few.output)
        result = runner.invoke(cli.app, [*args, "--samples", "4"])
    assert result.exit_code == 0, result.output
    records = read_jsonl(out / "distilled.jsonl")
    assert sorted((r["id"], r["sample"], r["model"]) for r in records) == [
        (row, s, "strong" if s % 2 == 0 else "weak") for row in ("row0", "row1")
        for s in range(4)]
    assert all(r["answer"].startswith(r["model"] + " says") for r in records)
    # --samples 4 and no --temperature: the answers are drawn, not greedy.
    assert {r.temperature for b in made for r in b.requests} == {SAMPLES_TEMPERATURE}

    def judge(request: Request, number: int) -> str:
        return json.dumps({**VERDICT, "overall": 5 if "strong says" in request.prompt else 2})

    with use_backend(FakeBackend(judge)):
        assert runner.invoke(cli.app, ["score", str(out), "--language", "en"]).exit_code == 0
    exported = runner.invoke(cli.app, ["export", str(out), "--pairs", "--format", "sharegpt",
                                       "--think", "drop"])
    assert exported.exit_code == 0, exported.output
    pairs = json.loads((out / "export" / "sharegpt_pairs.json").read_text())
    assert len(pairs) == 2
    assert all(p["chosen"]["value"].startswith("strong") and
               p["rejected"]["value"].startswith("weak") for p in pairs)
    # Other teachers would answer other samples: resuming with them is refused.
    swapped = [*args[:-1], "other", "--samples", "4"]
    with use_backend(backend):
        refused = runner.invoke(cli.app, swapped)
    assert refused.exit_code == 2
    assert "this run was started with teachers=['strong', 'weak']" in flat(refused.output)


def test_a_teachers_file_names_each_server_and_key_variable(tmp_path, monkeypatch):
    prompts = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "instruction": "Why?"}])
    teachers = tmp_path / "teachers.txt"
    teachers.write_text("# url model key\nhttp://127.0.0.1:9/v1 alpha\n"
                        "http://127.0.0.1:8/v1 beta BETA_KEY  # the second server\n")
    seen: list[BackendSpec] = []

    def backend(spec: BackendSpec) -> FakeBackend:
        seen.append(spec)
        return teacher_backend(spec)

    args = ["reason", str(prompts), "-o", str(tmp_path / "r"), "--samples", "2",
            "--teachers", str(teachers)]
    with use_backend(backend):
        missing = runner.invoke(cli.app, args)
        assert missing.exit_code != 0 and "BETA_KEY is not set" in missing.output
        monkeypatch.setenv("BETA_KEY", "secret")
        result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert [(s.model, s.base_urls) for s in seen[-2:]] == [
        ("alpha", ("http://127.0.0.1:9/v1",)), ("beta", ("http://127.0.0.1:8/v1",))]
    traces = read_jsonl(tmp_path / "r" / "reasoning.jsonl")
    assert sorted((t["sample"], t["model"]) for t in traces) == [(0, "alpha"), (1, "beta")]


def test_several_models_are_refused_where_one_model_answers(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Say hi.", "output": "Hi"}])
    result = runner.invoke(cli.app, ["score", str(data), "-o", str(tmp_path / "s"),
                                     "--base-url", "http://127.0.0.1:9/v1", "--model", "a",
                                     "--model", "b"])
    assert result.exit_code != 0
    assert "this command talks to one model" in flat(result.output)
