"""The bootstrap loop with a fake backend: exact-N stopping, resume, filters, failures."""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any

import pytest

from selfinstruct.errors import UserError
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.similarity.index import rouge_l
from selfinstruct.similarity.tokens import tokenize
from tests.helpers import (
    ENGLISH_SEEDS,
    distinct_texts,
    no_backoff,
    numbered_answer,
    open_bootstrap,
    read_lines,
    run,
    stream_script,
)


def test_stops_at_exactly_n(tmp_path, seed_file):
    backend = FakeBackend(stream_script(per_answer=5))
    stats = run(open_bootstrap(tmp_path / "run", seed_file, backend, n=12))
    records = read_lines(tmp_path / "run" / "instructions.jsonl")
    assert len(records) == 12
    assert stats.kept == 12
    assert len(backend.requests) == 3  # 5 + 5 + 2 of the third answer
    assert [r["id"] for r in records] == [f"gen_{i:06d}" for i in range(12)]
    for record in records:
        assert set(record) == {"id", "instruction", "source", "request"}  # no --most-similar
        assert record["source"] == "fake-model"
    saved = json.loads((tmp_path / "run" / "stats.json").read_text())["generate"]
    assert saved["kept"] == 12
    assert saved["requests"]["succeeded"] == 3


def test_resume_continues_without_duplicates(tmp_path, seed_file):
    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script(seed=1)), n=7))
    first = read_lines(out / "instructions.jsonl")
    stats = run(open_bootstrap(out, seed_file, FakeBackend(stream_script(seed=2)), n=15))
    records = read_lines(out / "instructions.jsonl")
    assert len(records) == 15
    assert records[:7] == first
    assert stats.kept_now == 8
    assert len({r["instruction"] for r in records}) == 15
    assert len({r["id"] for r in records}) == 15


def test_resume_when_already_complete_sends_nothing(tmp_path, seed_file):
    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=5))
    backend = FakeBackend(stream_script())
    stats = run(open_bootstrap(out, seed_file, backend, n=5))
    assert backend.requests == []
    assert stats.kept == 5


def test_resume_repairs_torn_last_line(tmp_path, seed_file):
    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script(seed=3)), n=4))
    with (out / "instructions.jsonl").open("a", encoding="utf-8") as fp:
        fp.write('{"id": "gen_000004", "instruction": "Half writ')
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script(seed=4)), n=6))
    records = read_lines(out / "instructions.jsonl")
    assert len(records) == 6
    assert all("Half writ" not in r["instruction"] for r in records)
    assert [r["id"] for r in records] == [f"gen_{i:06d}" for i in range(6)]


def test_resume_refuses_changed_threshold(tmp_path, seed_file):
    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=2))
    changed = r"similarity_threshold=0\.7, now similarity_threshold=0\.5"
    with pytest.raises(UserError, match=changed):
        open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=4,
                       similarity_threshold=0.5)
    forced = open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=4, force=True,
                            similarity_threshold=0.5)
    assert run(forced).kept == 4


@pytest.mark.parametrize(
    ("setting", "value", "changed"),
    [("min_length", 6, "min_length=4, now min_length=6"),
     ("max_length", 40, "max_length=150, now max_length=40")],
)
def test_resume_refuses_changed_length_limits(tmp_path, seed_file, setting, value, changed):
    """The length limits decide which candidates a pool holds, like the threshold."""
    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=2))
    config = (out / "config.json").read_bytes()
    with pytest.raises(UserError, match=f"this run was started with {changed};"):
        open_bootstrap(out, seed_file, FakeBackend(stream_script()), n=4, **{setting: value})
    assert (out / "config.json").read_bytes() == config


@pytest.mark.parametrize("most_similar", [0, 3])
def test_every_kept_instruction_passes_the_similarity_filter(tmp_path, seed_file, most_similar):
    """Near-copies of seeds and of each other are rejected; the pool stays novel. With
    --most-similar K each record shows its exact best score and K closest texts."""
    texts = distinct_texts(30, seed=5)

    def script(request: Request, number: int) -> Completion:
        rng = random.Random(number)
        picks = [rng.choice(texts), rng.choice(ENGLISH_SEEDS), rng.choice(texts) + " quickly"]
        return numbered_answer(9, picks)

    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(script), n=20, most_similar=most_similar))
    records = read_lines(out / "instructions.jsonl")
    assert len(records) == 20
    pool = list(ENGLISH_SEEDS)
    for record in records:
        tokens = tokenize(record["instruction"])
        scores = sorted(((rouge_l(tokens, tokenize(text)), -i, text)
                         for i, text in enumerate(pool)), reverse=True)
        assert scores[0][0] <= 0.7
        if most_similar:
            assert record["max_similarity"] == scores[0][0]
            assert record["most_similar"] == {text: score for score, _, text in scores[:3]
                                              if score > 0}
        else:
            assert "max_similarity" not in record and "most_similar" not in record
        pool.append(record["instruction"])
    rejected = read_lines(out / "rejected.jsonl")
    assert {r["filter"] for r in rejected} == {"similarity"}
    assert any(r["candidate"] in ENGLISH_SEEDS for r in rejected)
    for record in rejected:  # the evidence shown is a real pool text above the threshold
        score, text = re.fullmatch(r"ROUGE-L (\S+) > 0\.7 vs (.*)", record["detail"]).groups()
        assert float(score) > 0.7
        assert text[1:-1] in pool
        assert round(rouge_l(tokenize(record["candidate"]), tokenize(text[1:-1])), 3) == \
            float(score)


@pytest.mark.parametrize("most_similar", [0, 3])
def test_a_score_exactly_at_the_threshold_is_kept(tmp_path, most_similar):
    """The filter rejects scores *above* the threshold, on both paths: ROUGE-L of the
    candidate against the pool text is exactly 0.7 (LCS 7 of 10 tokens each side)."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join([*ENGLISH_SEEDS[:7], "a b c d e f g x y z"]) + "\n",
                     encoding="utf-8")
    at_threshold, above = "a b c d e f g h i j", "a b c d e f g x y w"
    assert rouge_l(tokenize(at_threshold), tokenize("a b c d e f g x y z")) == 0.7
    backend = FakeBackend(lambda r, n: numbered_answer(9, [above, at_threshold]))
    out = tmp_path / "run"
    run(open_bootstrap(out, seeds, backend, n=1, most_similar=most_similar))
    kept = read_lines(out / "instructions.jsonl")
    assert [r["instruction"] for r in kept] == [at_threshold]
    if most_similar:
        assert kept[0]["max_similarity"] == 0.7
        assert next(iter(kept[0]["most_similar"].items())) == ("a b c d e f g x y z", 0.7)
    rejected = read_lines(out / "rejected.jsonl")
    assert [(r["candidate"], r["filter"]) for r in rejected] == [(above, "similarity")]
    assert rejected[0]["detail"] == "ROUGE-L 0.900 > 0.7 vs 'a b c d e f g x y z'"


def test_heuristic_filters_and_truncation_are_recorded(tmp_path, seed_file):
    good = distinct_texts(40, seed=6)

    def script(request: Request, number: int) -> Completion:
        tasks = [
            good[2 * number],
            "Draw a picture of a cat sitting on a mat in the sun.",
            "Too short",
            "Write a program that sorts numbers read from standard input.",
            good[2 * number + 1],
        ]
        return numbered_answer(9, tasks, finish_reason="length")

    out = tmp_path / "run"
    run(open_bootstrap(out, seed_file, FakeBackend(script), n=3))
    rejected = read_lines(out / "rejected.jsonl")
    by_filter = {r["filter"] for r in rejected}
    assert {"blacklisted_word", "too_short", "writes_a_program", "truncated"} <= by_filter
    truncated = [r for r in rejected if r["filter"] == "truncated"]
    assert all(r["candidate"] in good for r in truncated)
    kept = read_lines(out / "instructions.jsonl")
    assert len(kept) == 3


def test_prompts_mix_seeds_and_machine_instructions(tmp_path, seed_file):
    backend = FakeBackend(stream_script(per_answer=3))
    run(open_bootstrap(tmp_path / "run", seed_file, backend, n=9))
    kept = {r["instruction"] for r in read_lines(tmp_path / "run" / "instructions.jsonl")}
    first, later = backend.requests[0].prompt, backend.requests[-1].prompt
    assert "Task 8:" in first and "Task 9:" in first and "Task 10:" not in first
    assert not any(text in first for text in kept)
    assert sum(text in later for text in kept) == 2
    assert sum(text in later for text in ENGLISH_SEEDS) == 6


def test_seed_makes_prompts_reproducible(tmp_path, seed_file):
    prompts = []
    for attempt in range(2):
        backend = FakeBackend(stream_script(per_answer=2, seed=7))
        run(open_bootstrap(tmp_path / f"run{attempt}", seed_file, backend, n=6, seed=42))
        prompts.append([(r.prompt, r.seed) for r in backend.requests])
    assert prompts[0] == prompts[1]
    other = FakeBackend(stream_script(per_answer=2, seed=7))
    run(open_bootstrap(tmp_path / "run2", seed_file, other, n=6, seed=43))
    assert [(r.prompt, r.seed) for r in other.requests] != prompts[0]


def test_keeps_concurrency_requests_in_flight(tmp_path, seed_file):
    backend = FakeBackend(stream_script(per_answer=1), delay=0.02)
    run(open_bootstrap(tmp_path / "run", seed_file, backend, n=40, concurrency=8))
    assert backend.max_in_flight == 8
    assert len(read_lines(tmp_path / "run" / "instructions.jsonl")) == 40


def test_failed_requests_are_recorded_and_replaced(tmp_path, seed_file):
    texts = iter(distinct_texts(100, seed=8))

    def script(request: Request, number: int) -> Completion | BackendError:
        if number % 3 == 0:
            return BackendError("HTTP 503: overloaded", retryable=True)
        return numbered_answer(9, [next(texts), next(texts)])

    out = tmp_path / "run"
    stats = run(open_bootstrap(out, seed_file, FakeBackend(script), n=10))
    failures = read_lines(out / "failures.jsonl")
    assert len(failures) == stats.requests.failed >= 2
    assert failures[0]["error"] == "HTTP 503: overloaded"
    assert failures[0]["stage"] == "generate"
    assert len(read_lines(out / "instructions.jsonl")) == 10


def test_fatal_error_stops_at_once(tmp_path, seed_file):
    backend = FakeBackend(lambda r, n: BackendError("HTTP 401: bad key", retryable=False))
    with pytest.raises(UserError, match="HTTP 401: bad key"):
        run(open_bootstrap(tmp_path / "run", seed_file, backend, n=5))
    assert len(backend.requests) == 1


def test_all_requests_failing_stops_after_bounded_count(tmp_path, seed_file):
    backend = FakeBackend(lambda r, n: BackendError("connection refused", retryable=True))
    with no_backoff(), pytest.raises(UserError,
                                     match=r"4 requests in a row failed.*connection refused"):
        run(open_bootstrap(tmp_path / "run", seed_file, backend, n=5, max_consecutive_failures=4))
    assert len(backend.requests) == 4
    assert len(read_lines(tmp_path / "run" / "failures.jsonl")) == 4


def test_the_backoff_waits_through_the_executor_the_block_gives(tmp_path, seed_file):
    """use_executor is the seam: every pause after a failure goes through its executor."""
    from selfinstruct.stages.executor import LocalExecutor, use_executor

    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    backend = FakeBackend(lambda r, n: BackendError("connection refused", retryable=True))
    with use_executor(LocalExecutor(pause=pause)), pytest.raises(UserError):
        run(open_bootstrap(tmp_path / "run", seed_file, backend, n=5, max_consecutive_failures=4))
    assert pauses and all(seconds > 0 for seconds in pauses)


def test_stop_event_ends_the_run_cleanly(tmp_path, seed_file):
    out = tmp_path / "run"
    bootstrap = open_bootstrap(out, seed_file, FakeBackend(stream_script(), delay=0.01), n=1000)

    async def stop_soon() -> Any:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        return await bootstrap.run(stop)

    stats = asyncio.run(stop_soon())
    assert stats.interrupted
    assert 0 < stats.kept < 1000
    assert len(read_lines(out / "instructions.jsonl")) == stats.kept
    assert json.loads((out / "stats.json").read_text())["generate"]["interrupted"] is True


def test_chinese_seeds_use_chinese_prompts_and_keep_chinese(tmp_path):
    seeds = tmp_path / "zh.txt"
    seeds.write_text(
        "\n".join([
            "请解释为什么夏天白天比冬天长。",
            "给一家新开的奶茶店起三个好听的名字。",
            "把下面这句话改写得更正式一些。",
            "用三句话总结唐朝由盛转衰的原因。",
            "写一首关于秋天落叶的五言绝句。",
            "列出五种适合上班族的健康早餐。",
            "判断下面这条评论是好评还是差评。",
            "推荐一个记忆英语单词的有效方法。",
        ]),
        encoding="utf-8",
    )
    answers = iter([
        "如何向小学生解释月亮为什么会有圆缺变化？\n任务10：为公司年会设计一个有趣的互动游戏。",
        "请写一段话说服朋友每天坚持锻炼身体。\n任务10：比较高铁和飞机在五百公里路程上的优缺点。",
    ])

    def script(request: Request, number: int) -> Completion:
        return Completion(text=next(answers), finish_reason="stop")

    backend = FakeBackend(script)
    out = tmp_path / "run"
    run(open_bootstrap(out, seeds, backend, n=4))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["language"] == "zh"
    assert "任务9：" in backend.requests[0].prompt
    assert len(read_lines(out / "instructions.jsonl")) == 4


def test_chinese_near_duplicate_is_rejected(tmp_path):
    """The multilingual tokenizer catches a Chinese paraphrase that ``rouge`` scores 0."""
    seeds = tmp_path / "zh.txt"
    seeds.write_text("请解释为什么夏天白天比冬天长。\n给一家新开的奶茶店起三个好听的名字。\n",
                     encoding="utf-8")
    answers = iter(["请解释一下为什么夏天的白天比冬天长。\n任务4：列出三种减少家庭用电的方法。"])
    backend = FakeBackend(lambda r, n: Completion(text=next(answers), finish_reason="stop"))
    out = tmp_path / "run"
    run(open_bootstrap(out, seeds, backend, n=1, seed_examples=2,
                       machine_examples=0))
    kept = read_lines(out / "instructions.jsonl")
    assert [r["instruction"] for r in kept] == ["列出三种减少家庭用电的方法。"]
    rejected = read_lines(out / "rejected.jsonl")
    assert rejected[0]["filter"] == "similarity"


def test_a_bootstrap_runs_twice_and_the_second_run_goes_on_from_the_pool(tmp_path, seed_file):
    backend = FakeBackend(stream_script(per_answer=2), delay=0.01)
    bootstrap = open_bootstrap(tmp_path / "run", seed_file, backend, n=8)
    stop = asyncio.Event()

    def stop_early(stats) -> None:
        if stats.kept >= 3:
            stop.set()

    first = asyncio.run(bootstrap.run(stop, stop_early))
    assert first.interrupted and 3 <= first.kept < 8
    second = run(bootstrap)  # writes again: its files are its own session's
    assert second is not first and not second.interrupted
    assert (second.kept, second.kept_before) == (8, first.kept)
    kept = read_lines(tmp_path / "run" / "instructions.jsonl")
    assert [r["id"] for r in kept] == [f"gen_{i:06d}" for i in range(8)]
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())["generate"]
    assert stats["kept"] == 8 and stats["kept_this_session"] == 8 - first.kept
