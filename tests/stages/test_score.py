"""The judge stage: verdicts in every shape, unreadable ones asked again then rejected,
resume, samples, the CLI on a file, and export --min-score at its boundaries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm import use_backend
from selfinstruct.llm.base import Request
from selfinstruct.llm.fake import FakeBackend, completion
from selfinstruct.runs.pairs import Answered
from selfinstruct.runs.rubrics import load_rubric
from selfinstruct.runs.scores import Review, Score, read_scores
from selfinstruct.runs.templates import load_template
from selfinstruct.stages.curate import curate
from selfinstruct.stages.export import TrainingExample, export_run
from selfinstruct.stages.per_record import StageSettings
from selfinstruct.stages.score import Judge, ScoreSettings, score_run
from selfinstruct.text.rubric import Scale
from selfinstruct.text.verdicts import verdict_schema
from tests.helpers import make_run

runner = CliRunner()
EXAMPLES = [Answered(f"e{i}", f"Instruction {i}", "", f"Output {i}") for i in range(4)]
VERDICT = {"accuracy": 4, "completeness": 4, "relevance": 5, "harmlessness": 5,
           "format": 3, "overall": 4, "reason": "Correct but terse."}


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def judge(**settings) -> Judge:
    return Judge(load_rubric(None, "en"), load_template("judge", "en"),
                 ScoreSettings(**settings))


def score(backend, out: Path, examples=EXAMPLES, **settings):
    return asyncio.run(score_run(examples, out, backend, judge(**settings),
                                 StageSettings(concurrency=2), asyncio.Event()))


def by_example(answers: dict[str, list[str]]):
    """Answer each example's requests in turn from its own list."""
    def script(request: Request, number: int):
        key = next(k for k in answers if f"Instruction {k[1:]}\n" in request.prompt)
        return completion(answers[key].pop(0))
    return script


def test_every_answer_shape_gives_a_verdict_or_a_rejection(tmp_path):
    backend = FakeBackend(by_example({
        "e0": [json.dumps(VERDICT)],
        "e1": ["Sure.\n```json\n" + json.dumps({**VERDICT, "overall": 5}) + "\n```"],
        "e2": ["Accuracy: 2\nFormat: 2\nOverall: 2\nReason: Wrong sum."],
        "e3": ["I cannot grade this.", "Still no."],
    }))
    stats = score(backend, tmp_path)
    scores = {r["id"]: r for r in read(tmp_path / "scores.jsonl")}
    assert {k: r["overall"] for k, r in scores.items()} == {"e0": 4, "e1": 5, "e2": 2}
    assert scores["e0"] == {"id": "e0", "sample": 0, "scores": {
        "accuracy": 4, "completeness": 4, "relevance": 5, "harmlessness": 5, "format": 3},
        "overall": 4, "reason": "Correct but terse.", "model": "fake-model"}
    assert scores["e2"]["scores"] == {"accuracy": 2, "format": 2}
    rejected = read(tmp_path / "rejected.jsonl")
    assert [(r["id"], r["filter"], r["attempt"], r["final"]) for r in rejected] == [
        ("e3", "unparseable_verdict", 0, False), ("e3", "unparseable_verdict", 1, True)]
    assert rejected[1]["answer"] == "Still no."
    assert stats.rejected == {"unparseable_verdict": 1} and stats.done == 4
    # asked once more, with a reminder of the format; never scored 0
    retry = [r.prompt for r in backend.requests if "Instruction 3\n" in r.prompt]
    assert len(retry) == 2 and retry[1].endswith("Answer with the JSON object only.")
    assert "e3" not in read_scores(tmp_path / "scores.jsonl")
    summary = json.loads((tmp_path / "stats.json").read_text())["score"]
    assert summary["histogram"] == {"2": 1, "4": 1, "5": 1}
    assert summary["scored"] == 3 and summary["mean"] == pytest.approx(11 / 3, abs=1e-4)


def test_a_second_try_that_reads_is_scored(tmp_path):
    backend = FakeBackend(by_example({"e0": ["no idea", '{"overall": 3}']}))
    score(backend, tmp_path, examples=EXAMPLES[:1])
    assert [r["overall"] for r in read(tmp_path / "scores.jsonl")] == [3]
    assert [r["final"] for r in read(tmp_path / "rejected.jsonl")] == [False]


def test_resume_sends_only_what_is_missing(tmp_path):
    first = FakeBackend()
    first.enqueue(json.dumps(VERDICT))
    score(first, tmp_path, examples=EXAMPLES[:1])
    second = FakeBackend(lambda request, number: completion(json.dumps(VERDICT)))
    score(second, tmp_path)
    assert len(second.requests) == 3  # e0 was done
    third = FakeBackend(lambda request, number: completion("x"))
    score(third, tmp_path)
    assert third.requests == []
    assert sorted(read_scores(tmp_path / "scores.jsonl")) == ["e0", "e1", "e2", "e3"]


def test_a_resumed_retry_counts_the_attempt_already_made(tmp_path):
    (tmp_path / "rejected.jsonl").write_text(json.dumps(
        {"stage": "score", "filter": "unparseable_verdict", "id": "e0", "sample": 0,
         "attempt": 0, "final": False}) + "\n")
    backend = FakeBackend(lambda request, number: completion("still unreadable"))
    score(backend, tmp_path, examples=EXAMPLES[:1])
    assert len(backend.requests) == 1
    assert backend.requests[0].prompt.endswith("Answer with the JSON object only.")
    assert read(tmp_path / "rejected.jsonl")[-1]["final"] is True


def test_samples_are_averaged(tmp_path):
    overall = iter([3, 4, 5, 5])
    backend = FakeBackend(lambda request, number: completion(
        json.dumps({**VERDICT, "overall": next(overall)})))
    score(backend, tmp_path, examples=EXAMPLES[:2], samples=2)
    assert {r.temperature for r in backend.requests} == {0.7}
    assert {r.seed for r in backend.requests} == {None}  # no --seed: none sent
    means = {k: s.overall for k, s in read_scores(tmp_path / "scores.jsonl").items()}
    assert sorted(means.values()) == [3.5, 5.0]
    assert sorted(r["sample"] for r in read(tmp_path / "scores.jsonl")) == [0, 0, 1, 1]


def test_one_sample_is_greedy_and_the_verdict_schema_goes_with_every_request():
    request = judge().request(EXAMPLES[0], 0)
    assert request.temperature == 0.0
    assert request.schema == verdict_schema(judge().dimensions, judge().settings.scale)
    assert request.schema_name == "verdict"
    assert judge().request(EXAMPLES[0], 1, attempt=1).schema == request.schema


def test_a_seed_gives_each_example_and_sample_its_own_request_seed(tmp_path):
    def seeds(seed: int, out: Path) -> list[int | None]:
        out.mkdir()
        backend = FakeBackend(lambda request, number: completion(json.dumps(VERDICT)))
        score(backend, out, examples=EXAMPLES[:2], samples=2, seed=seed)
        return [r.seed for r in backend.requests]

    first = seeds(7, tmp_path / "a")
    assert None not in first and len(set(first)) == 4  # 2 examples x 2 samples
    assert set(seeds(7, tmp_path / "b")) == set(first)  # the same on another run
    assert set(seeds(8, tmp_path / "c")).isdisjoint(first)


def test_the_prompt_shows_the_rubric_and_the_example():
    prompt = judge(scale=Scale.parse("1-10")).prompt(
        Answered("x", "Add the numbers.", "2 and 3", "5"))
    assert "- accuracy: The response is correct." in prompt
    assert "from 1 (very poor) to 10 (excellent)" in prompt
    assert "Instruction:\nAdd the numbers.\n\nInput:\n2 and 3\n\nResponse:\n5" in prompt
    assert '"overall": <1-10>, "reason": "<one sentence>"}' in prompt
    assert "Input:\n(none)" in judge().prompt(EXAMPLES[0])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def test_cli_scores_a_sharegpt_file_and_dry_run_writes_nothing(tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", [
        {"id": "c1", "conversations": [{"from": "human", "value": "Say hi."},
                                       {"from": "gpt", "value": "Hi!"}]},
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "写一句问候。"},
                      {"role": "assistant", "content": "你好！"}]},
    ])
    out = tmp_path / "out"
    backend = FakeBackend(lambda request, number: completion(json.dumps(VERDICT)))
    with use_backend(backend):
        dry = runner.invoke(cli.app, ["score", str(data), "-o", str(out), "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "score: 2 requests" in dry.output and not out.exists()
        assert "你在审核用来训练 AI 助手的样本" in dry.output  # auto: the data is mostly Chinese
        result = runner.invoke(cli.app, ["score", str(data), "-o", str(out), "--language", "en"])
    assert result.exit_code == 0, result.output
    assert "2 examples scored" in result.output
    assert [r["id"] for r in read(out / "scores.jsonl")] == ["c1", "row1"]
    assert "Instruction:\nSay hi.\n\nInput:\n(none)\n\nResponse:\nHi!" in backend.requests[0].prompt
    config = json.loads((out / "config.json").read_text())["score"]
    assert config["source"] == str(data.resolve()) and config["scale"] == "1-5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "5-1"], "the scale 5-1 is empty"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--rubric", "RUBRIC"], "rubric.txt:2: expected 'name: what a high score means'"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, args, message):
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Say hi.", "output": "Hi"}])
    (tmp_path / "rubric.txt").write_text("accuracy: ok\nno colon here\n")
    args = [str(tmp_path / "rubric.txt") if a == "RUBRIC" else a for a in args]
    result = runner.invoke(cli.app, ["score", str(data), "-o", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_file_without_answers_names_the_line(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Say hi.", "output": "Hi"},
                                              {"instruction": "Only a prompt"}])
    result = runner.invoke(cli.app, ["score", str(data), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{data}:2: expected a prompt in 'instruction' and an answer" in result.output


def test_rescoring_on_another_scale_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Say hi.", "output": "Hi"}])
    out = tmp_path / "o"
    with use_backend(FakeBackend(lambda r, n: completion('{"overall": 3}'))):
        assert runner.invoke(cli.app, ["score", str(data), "-o", str(out)]).exit_code == 0
        again = runner.invoke(cli.app, ["score", str(data), "-o", str(out), "--scale", "1-10"])
    assert again.exit_code == 2 and "scale='1-5'" in again.output.replace("\n", "")


# --min-score and review verdicts -------------------------------------------------------

def example(key: str, output: str = "out") -> TrainingExample:
    return TrainingExample(f"do {key}", "", output, key=key)


def scored(**overall: float) -> dict[str, Score]:
    return {k: Score(k, v, {}, "", 1, "m") for k, v in overall.items()}


def test_min_score_keeps_exactly_the_examples_at_or_above_it():
    examples = [example(k) for k in ("a", "b", "c", "d", "e")]
    curated = curate(examples, scored(a=4, b=3.999, c=4.5, d=1), {}, 4)
    assert [e.key for e in curated.examples] == ["a", "c"]
    assert (curated.below_min_score, curated.unscored) == (2, 1)
    assert [e.key for e in curate(examples, scored(a=4), {}, None).examples] == list("abcde")
    assert [e.key for e in curate(examples, scored(a=5, b=5, c=5, d=5, e=5), {}, 5).examples] \
        == list("abcde")


def test_reviews_drop_and_edit_after_the_score_filter():
    examples = [example("a"), example("b"), example("c"), TrainingExample("seed", "", "s")]
    reviews = {"a": Review("a", "drop"), "b": Review("b", "edit", edited_output="better"),
               "c": Review("c", "keep")}
    curated = curate(examples, scored(a=5, b=5, c=2), reviews, 3)
    assert [(e.key, e.output) for e in curated.examples] == [("b", "better"), ("", "s")]
    assert (curated.dropped_in_review, curated.edited, curated.below_min_score) == (1, 1, 1)


def test_export_min_score_on_a_scored_run(tmp_path):
    run = make_run(tmp_path)
    write_jsonl(run / "scores.jsonl", [
        {"id": "gen_000000#0", "sample": 0, "scores": {}, "overall": 4, "reason": "",
         "model": "m"},
        {"id": "gen_000000#1", "sample": 0, "scores": {}, "overall": 3, "reason": "",
         "model": "m"}])
    result = export_run(run, "alpaca", min_score=4)
    assert json.loads(result.path.read_text()) == [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}]
    assert json.loads((run / "stats.json").read_text())["export"] == {
        "considered": 2, "min_score": 4, "below_min_score": 1, "unscored": 0,
        "dropped_in_review": 0, "edited": 0, "kept": 1}
    cli_result = runner.invoke(cli.app, ["export", str(run), "--min-score", "3"])
    assert cli_result.exit_code == 0 and "exported 2 examples" in cli_result.output


def test_min_score_without_scores_says_what_to_run(tmp_path):
    run = make_run(tmp_path)
    result = runner.invoke(cli.app, ["export", str(run), "--min-score", "4"])
    assert result.exit_code == 2
    assert "no scores.jsonl for --min-score; run selfinstruct score" in result.output


def test_two_examples_with_one_id_are_refused_before_any_verdict(tmp_path):
    from selfinstruct.errors import UserError
    from selfinstruct.runs.pairs import load_examples

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": key, "instruction": "q", "output": "a"}) + "\n"
                            for key in ("a", "b", "a")), encoding="utf-8")
    with pytest.raises(UserError, match="duplicate id 'a'; ids must be unique so scores"):
        load_examples(data)


def test_context_shows_the_judge_the_row_the_answer_was_grounded_in(tmp_path):
    """A distilled answer is checked against its row's columns (score --context)."""
    data = tmp_path / "distilled.jsonl"
    data.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in [
        {"id": "row0", "sample": 0, "prompt": "When does G101 arrive?", "answer": "08:15",
         "车次": "G101", "到点": "08:15", "response": "08:15", "model": "m"},
        {"id": "row1", "sample": 0, "prompt": "When does G103 arrive?", "answer": "09:30",
         "车次": "G103", "response": "09:30", "model": "m"},
    ]), encoding="utf-8")
    judge = FakeBackend(lambda request, number: json.dumps(
        {"helpfulness": 4, "accuracy": 4, "overall": 4, "reason": "ok"}))
    with use_backend(judge):
        result = CliRunner().invoke(cli.app, ["score", str(data), "-o", str(tmp_path / "s"),
                                              "--context", "车次", "--context", "到点",
                                              "--language", "en"])
    assert result.exit_code == 0, result.output
    first, second = sorted(judge.requests, key=lambda r: "G103" in r.prompt)
    assert "grounded in" in first.prompt and "车次: G101\n到点: 08:15" in first.prompt
    assert "车次: G103" in second.prompt and "到点" not in second.prompt.split("Response:")[0] \
        .split("grounded in")[1]
    with use_backend(judge):
        wrong = CliRunner().invoke(cli.app, ["score", str(data), "-o", str(tmp_path / "t"),
                                             "--context", "platform"])
    assert wrong.exit_code == 2
    assert "--context platform: no example of" in " ".join(wrong.output.split())


def test_a_judge_template_without_a_context_slot_still_shows_the_context():
    """A user's own judge template from before --context: the facts go after the input."""
    import dataclasses

    own = judge()
    template = dataclasses.replace(own.template,
                                   text=own.template.text.replace("{context}", ""))
    prompt = dataclasses.replace(own, template=template).prompt(
        Answered("x", "When does G101 arrive?", "", "08:15", (("到点", "08:15"),)))
    assert "Input:\n(none)\n\nThe facts the response must be grounded in" in prompt
    assert "到点: 08:15" in prompt
