"""classify → instances → export through the CLI with a fake backend."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.llm.fake import FakeBackend
from tests.helpers import CLASSIFICATION_WORD, answer, no_backoff, read

runner = CliRunner()

@pytest.fixture
def fake(serve):
    backends: list[FakeBackend] = []

    def create(*args, **kwargs):
        backend = FakeBackend(answer)
        backends.append(backend)
        return backend

    serve(create)
    return backends


def test_run_does_every_stage(tmp_path, seed_file, fake):
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                                     "--per-task", "3", "--format", "sharegpt"])
    assert result.exit_code == 0, result.output
    classified = read(out / "classification.jsonl")
    assert len(classified) == 6
    by_id = {r["id"]: r["is_classification"] for r in classified}
    pool = {r["id"]: r["instruction"] for r in read(out / "instructions.jsonl")}
    assert by_id == {i: CLASSIFICATION_WORD in text for i, text in pool.items()}
    tasks = read(out / "instances.jsonl")
    assert len(tasks) == 6
    for task in tasks:
        if task["is_classification"]:
            assert task["labels"] == ["Positive", "Negative"]
            assert [i["output"] for i in task["instances"]] == ["Positive", "Negative"]
        else:
            assert task["instances"] == [{"input": "2, 3", "output": "5"},
                                         {"input": "10, 4", "output": "14"}]
    rejected = {r["filter"] for r in read(out / "rejected.jsonl") if r["stage"] == "instances"}
    assert {"label_not_listed", "duplicate", "empty_output"} <= rejected
    export = json.loads((out / "export" / "sharegpt.json").read_text(encoding="utf-8"))
    assert len(export) == sum(len(t["instances"]) for t in tasks)
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert info["run_sharegpt"]["file_name"] == "sharegpt.json"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["classify"]["done"] == 6 and stats["instances"]["done"] == 6
    again = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "6",
                                    "--per-task", "3", "--format", "sharegpt"])
    assert again.exit_code == 0, again.output
    assert len(fake[-1].requests) == 0
    assert len(read(out / "instances.jsonl")) == 6


def test_stages_resume_and_retry_failures(tmp_path, seed_file, fake, serve):
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "4"]).exit_code == 0
    failing = {"count": 0}
    seen: set[str] = set()

    def flaky(request: Request, number: int) -> Completion | BackendError:
        """Every prompt fails on its first try and works on the second."""
        if request.prompt not in seen:
            seen.add(request.prompt)
            failing["count"] += 1
            return BackendError("HTTP 502: bad gateway", retryable=True)
        return answer(request, number)

    serve(lambda *a, **k: FakeBackend(flaky))
    with no_backoff():
        result = runner.invoke(cli.app, ["classify", str(out)])
    assert result.exit_code == 0, result.output
    assert len(read(out / "classification.jsonl")) == 4
    failures = [r for r in read(out / "failures.jsonl") if r["stage"] == "classify"]
    assert len(failures) == failing["count"] == 4
    result = runner.invoke(cli.app, ["classify", str(out)])
    assert "classify: 4/4 done (0 now)" in " ".join(result.output.split())


def test_instances_needs_classification_first(tmp_path, seed_file, fake):
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "2"]).exit_code == 0
    result = runner.invoke(cli.app, ["instances", str(out)])
    assert result.exit_code == 2
    assert "2 instructions are not classified yet; run selfinstruct classify" in " ".join(
        result.output.split())


def test_stage_on_a_non_run_directory(tmp_path):
    result = runner.invoke(cli.app, ["classify", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run directory" in result.output


def test_a_record_that_keeps_failing_is_given_up_then_retried_next_time(
        tmp_path, seed_file, fake, serve):
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "3"]).exit_code == 0
    doomed = read(out / "instructions.jsonl")[1]["instruction"]

    def broken_for_one(request: Request, number: int) -> Completion | BackendError:
        if doomed in request.prompt:
            return BackendError("HTTP 500: boom", retryable=True)
        return answer(request, number)

    serve(lambda *a, **k: FakeBackend(broken_for_one))
    with no_backoff():
        result = runner.invoke(cli.app, ["classify", str(out)])
    assert result.exit_code == 0, result.output
    assert "classify: 2/3 done (2 now) in" in " ".join(result.output.split())
    assert "1 given up after repeated failures" in result.output
    assert len([r for r in read(out / "failures.jsonl") if r["stage"] == "classify"]) == 3
    serve(lambda *a, **k: FakeBackend(answer))
    result = runner.invoke(cli.app, ["classify", str(out)])
    assert "classify: 3/3 done (1 now)" in " ".join(result.output.split())


def chinese_answer(request: Request, number: int) -> Completion:
    """The Chinese prompts: the pool, 是/否, and both instance prompts."""
    prompt = request.prompt
    if prompt.endswith("是否为分类任务？"):
        task = [line for line in prompt.splitlines() if line.startswith("任务：")][-1]
        return Completion(text="是" if "情感" in task else "否。这是写作任务。")
    if prompt.startswith("你要为分类任务编写示范例子"):
        return Completion(text="类别列表：正面、负面\n类别：正面\n输入：这家店的菜太好吃了！\n"
                               "类别：负面\n输入：等了一个小时还没上菜。\n")
    if prompt.startswith("你要为人们交给 AI 助手的任务编写示范例子"):
        return Completion(text="示例1\n输入：3和5\n输出：8\n示例2\n输入：10和20\n输出：30\n")
    topics = ["判断这条评论的情感倾向是正面还是负面", "写一段介绍西湖美景的导游词",
              "计算两个数的和并说明步骤", "给即将毕业的学弟学妹写一句寄语"]
    first = topics[(number - 1) % len(topics)] + f"（第{number}组）"
    return Completion(text=f"{first}\n任务10：列出{number}种常见的家用电器及其用途。")


def test_chinese_pipeline(tmp_path, serve):
    seeds = tmp_path / "zh.txt"
    seeds.write_text("请解释为什么夏天白天比冬天长。\n给一家新开的奶茶店起三个好听的名字。\n"
                     "把下面这句话改写得更正式一些。\n用三句话总结唐朝由盛转衰的原因。\n",
                     encoding="utf-8")
    serve(lambda *a, **k: FakeBackend(chinese_answer))
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seeds), "-o", str(out), "-n", "4",
                                     "--format", "messages", "--seed-examples", "4"])
    assert result.exit_code == 0, result.output
    classified = {r["id"]: r["is_classification"] for r in read(out / "classification.jsonl")}
    tasks = read(out / "instances.jsonl")
    assert any(classified.values()) and not all(classified.values())
    for task in tasks:
        if task["is_classification"]:
            assert "情感" in task["instruction"]
            assert task["labels"] == ["正面", "负面"]
            assert [i["output"] for i in task["instances"]] == ["正面", "负面"]
        else:
            assert task["instances"] == [{"input": "3和5", "output": "8"},
                                         {"input": "10和20", "output": "30"}]
    exported = read(out / "export" / "messages.jsonl")
    assert len(exported) == sum(len(t["instances"]) for t in tasks)
    assert exported[0]["messages"][0]["content"].startswith(tasks[0]["instruction"])


def test_instances_shard(tmp_path, seed_file, fake):
    out = tmp_path / "run"
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "5"]).exit_code == 0
    assert runner.invoke(cli.app, ["classify", str(out)]).exit_code == 0
    result = runner.invoke(cli.app, ["instances", str(out), "--shard", "1/2"])
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in read(out / "instructions.jsonl")]
    assert [r["id"] for r in read(out / "instances.jsonl")] == [ids[1], ids[3]]


def test_dry_run_sends_and_writes_nothing(tmp_path, seed_file, fake):
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                     "-n", "40", "--dry-run"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "generate: 5 requests at least, for 40 more instructions" in flat
    assert "Task 8: " in result.output and "Task 9:" in result.output
    assert not out.exists() and fake == []
    assert runner.invoke(cli.app, ["generate", "--seeds", str(seed_file), "-o", str(out),
                                   "-n", "3"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = len(fake)
    result = runner.invoke(cli.app, ["classify", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "classify: 3 requests; each about" in " ".join(result.output.split())
    assert "Is it classification?" in result.output
    result = runner.invoke(cli.app, ["instances", str(out), "--dry-run"])
    assert result.exit_code == 2 and "not classified yet" in result.output
    assert runner.invoke(cli.app, ["classify", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = len(fake)
    result = runner.invoke(cli.app, ["instances", str(out), "--dry-run", "--per-task", "7"])
    assert "instances: 3 requests" in " ".join(result.output.split())
    assert "write up to 7 examples" in " ".join(result.output.split())
    result = runner.invoke(cli.app, ["reason", str(out), "--dry-run", "--samples", "2"])
    assert "reason: 6 requests" in " ".join(result.output.split())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert len(fake) == calls


def test_stats_and_summaries_report_rates(tmp_path, seed_file, serve):
    """Every stage's stats.json section and summary say answers/s and tokens/s."""

    def with_usage(request: Request, number: int) -> Completion | BackendError:
        completion = answer(request, number)
        return dataclasses.replace(completion, usage=Usage(prompt_tokens=20, completion_tokens=8))

    serve(lambda *a, **k: FakeBackend(with_usage))
    out = tmp_path / "run"
    result = runner.invoke(cli.app, ["run", "--seeds", str(seed_file), "-o", str(out), "-n", "4",
                                     "--per-task", "2"])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    summary = " ".join(result.output.split())
    for stage in ("generate", "classify", "instances"):
        answered = stats[stage]["requests"]["succeeded"]
        assert answered > 0
        assert stats[stage]["requests"]["completion_tokens"] == 8 * answered
        assert f"tokens: {20 * answered} prompt, {8 * answered} completion;" in summary
        # 8 tokens per answer; both rates are rounded to 2 decimals
        rate = stats[stage]["requests_per_second"]
        assert rate > 0
        assert stats[stage]["completion_tokens_per_second"] == pytest.approx(8 * rate, abs=0.05)
    assert result.output.count("completion tokens/s") == 3


def test_throughput_counts_answers_and_completion_tokens():
    from selfinstruct.stages.ledger import RequestStats
    from selfinstruct.stages.per_record import throughput

    requests = RequestStats(sent=12, succeeded=10, failed=2, prompt_tokens=999,
                            completion_tokens=500)
    assert throughput(requests, 4.0) == {"requests_per_second": 2.5,
                                         "completion_tokens_per_second": 125.0}
    assert throughput(requests, 0.0) == {"requests_per_second": 0.0,
                                         "completion_tokens_per_second": 0.0}
