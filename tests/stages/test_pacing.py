"""generate sends only what the answers in flight are not expected to cover, and keeps
every candidate that arrives after the target for a resume with a larger -n."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.fake import FakeBackend, Script
from selfinstruct.stages.pacing import RAMP, SLOW_START, Pacer
from tests.helpers import (
    ENGLISH_SEEDS,
    distinct_texts,
    no_backoff,
    numbered_answer,
    open_bootstrap,
    read_lines,
    run,
)

#: Each answer of ``fixed_rate_script``: this many new tasks and one copy of a seed, so
#: exactly NEW_PER_ANSWER of its candidates are kept.
NEW_PER_ANSWER = 7


def fixed_rate_script(seed: int = 0) -> Script:
    """Every answer brings NEW_PER_ANSWER novel tasks and a seed the filter rejects."""
    texts = iter(distinct_texts(3000, seed))

    def script(request: Request, number: int) -> Completion:
        tasks = [next(texts) for _ in range(NEW_PER_ANSWER)]
        return numbered_answer(9, [*tasks[:3], ENGLISH_SEEDS[number % 10], *tasks[3:]])

    return script


def generate(out: Path, seeds: Path, n: int, concurrency: int, delay: float = 0.01,
             script: Script | None = None, **options: Any) -> FakeBackend:
    """One ``generate`` run to ``n``; the backend, with every request it was sent."""
    backend = FakeBackend(script or fixed_rate_script(), delay=delay)
    stats = run(open_bootstrap(out, seeds, backend, n=n, concurrency=concurrency, **options))
    assert stats.kept == n and not stats.interrupted
    assert len(read_lines(out / "instructions.jsonl")) == n
    return backend


@pytest.mark.parametrize("n", [20, 60, 150])
def test_high_concurrency_sends_about_what_low_concurrency_sends(tmp_path, seed_file, n):
    low = generate(tmp_path / "c5", seed_file, n, concurrency=5)
    high = generate(tmp_path / "c64", seed_file, n, concurrency=64)
    assert len(high.requests) <= 1.3 * len(low.requests), (len(high.requests),
                                                           len(low.requests))
    # ... and still uses the concurrency when the target needs it.
    if n >= 150:
        assert high.max_in_flight > 2 * SLOW_START


def test_slow_start_sends_a_few_requests_until_an_answer_shows_the_rate(tmp_path, seed_file):
    sent_at_first_answer: list[int] = []
    script = fixed_rate_script(seed=1)

    def watching(request: Request, number: int) -> Completion:
        if not sent_at_first_answer:
            sent_at_first_answer.append(len(backend.requests))
        return script(request, number)

    backend = FakeBackend(watching, delay=0.05)
    run(open_bootstrap(tmp_path / "run", seed_file, backend, n=400, concurrency=64))
    assert sent_at_first_answer == [SLOW_START]
    # well past the slow start once the rate is known (the exact peak depends on timing)
    assert backend.max_in_flight >= 4 * SLOW_START


def test_answers_after_the_target_are_recorded_not_dropped(tmp_path, seed_file):
    # No delay: the slow start's four answers all arrive before the first is handled.
    # The first reaches the target; its last candidates and the three other answers are
    # paid for, and recorded.
    out = tmp_path / "run"
    texts = iter(distinct_texts(40, seed=2))
    answers: dict[int, list[str]] = {}

    def script(request: Request, number: int) -> Completion:
        answers[number] = [next(texts) for _ in range(5)]
        return numbered_answer(9, answers[number])

    backend = FakeBackend(script)
    bootstrap = open_bootstrap(out, seed_file, backend, n=3, concurrency=8)
    stats = run(bootstrap)
    assert len(backend.requests) == SLOW_START
    assert stats.requests.succeeded == SLOW_START
    kept = [r["instruction"] for r in read_lines(out / "instructions.jsonl")]
    over = [r for r in read_lines(out / "rejected.jsonl") if r["filter"] == "over_target"]
    every_candidate = [text for number in sorted(answers) for text in answers[number]]
    assert kept == every_candidate[:3]
    assert [r["candidate"] for r in over] == every_candidate[3:]
    assert all(r["source"] == "fake-model" and r["stage"] == "generate" for r in over)
    assert stats.rejected["over_target"] == len(every_candidate) - 3
    assert stats.candidates == len(every_candidate)


def no_requests(request: Request, number: int) -> Completion:
    raise AssertionError("the set-aside candidates were enough; nothing should be sent")


def test_a_larger_n_keeps_the_over_target_candidates_first_and_once(tmp_path, seed_file):
    out = tmp_path / "run"
    a, b, c = distinct_texts(15, seed=3)[:5], distinct_texts(15, seed=3)[5:10], \
        distinct_texts(15, seed=3)[10:]
    near_copy = a[0] + " quickly"  # the ROUGE-L filter rejects it against a[0]
    third = [c[0], c[1], near_copy, c[2], c[3]]
    scripted = iter([a, b, third])
    generate(out, seed_file, 12, concurrency=1,
             script=lambda request, number: numbered_answer(9, next(scripted)))
    over = [r["candidate"] for r in read_lines(out / "rejected.jsonl")
            if r["filter"] == "over_target"]
    assert over == [near_copy, c[2], c[3]]

    # -n 13: the set-aside candidates come first, and one of them is enough.
    backend = generate(out, seed_file, 13, concurrency=4, script=no_requests)
    assert backend.requests == []
    records = read_lines(out / "instructions.jsonl")
    assert records[12]["instruction"] == c[2]
    assert records[12]["id"] == "gen_000012" and records[12]["source"] == "fake-model"
    similar = [r for r in read_lines(out / "rejected.jsonl") if r["candidate"] == near_copy]
    assert [r["filter"] for r in similar] == ["over_target", "similarity"]

    # The same -n again changes nothing.
    before = {name: (out / name).read_bytes() for name in ("instructions.jsonl",
                                                             "rejected.jsonl")}
    backend = generate(out, seed_file, 13, concurrency=4, script=no_requests)
    assert backend.requests == []
    assert {name: (out / name).read_bytes() for name in before} == before

    # -n 15: the last waiting candidate, then new requests; nothing judged twice.
    generate(out, seed_file, 15, concurrency=1, script=fixed_rate_script(seed=4))
    records = read_lines(out / "instructions.jsonl")
    assert [r["instruction"] for r in records[12:14]] == [c[2], c[3]]
    rejected = read_lines(out / "rejected.jsonl")
    assert [r["filter"] for r in rejected if r["candidate"] == near_copy] == \
        ["over_target", "similarity"]
    assert len({r["instruction"] for r in records}) == 15


def test_alpaca_candidates_over_the_target_keep_their_input_and_output(tmp_path, seed_file):
    out = tmp_path / "run"
    texts = distinct_texts(12, seed=5)

    def alpaca_answer(start: int) -> Completion:
        blocks = [f"{k + 4}. Instruction: {texts[start + k]}\n{k + 4}. Input:\n<noinput>\n"
                  f"{k + 4}. Output:\nanswer {start + k}" for k in range(3)]
        return Completion(text="\n###\n".join(blocks), finish_reason="stop", model="m")

    scripted = iter([alpaca_answer(0), alpaca_answer(3)])
    generate(out, seed_file, 4, concurrency=1, script=lambda r, n: next(scripted),
             prompt_style="alpaca")
    over = [r for r in read_lines(out / "rejected.jsonl") if r["filter"] == "over_target"]
    assert [(r["candidate"], r["output"]) for r in over] == \
        [(texts[4], "answer 4"), (texts[5], "answer 5")]
    backend = FakeBackend(no_requests)
    run(open_bootstrap(out, seed_file, backend, n=6, concurrency=1, prompt_style="alpaca"))
    records = read_lines(out / "instructions.jsonl")
    assert [(r["instruction"], r["output"], r["source"]) for r in records[4:]] == \
        [(texts[4], "answer 4", "m"), (texts[5], "answer 5", "m")]


def test_pacer_holds_requests_back_while_those_in_flight_cover_the_target():
    pacer = Pacer(target=100)
    for _ in range(SLOW_START):
        assert pacer.wants_more(kept=0)
        pacer.sent()
    assert not pacer.wants_more(kept=0)  # slow start: wait for the first answer
    for _ in range(SLOW_START):
        pacer.settled()
        pacer.observe(10)
    # 60 missing at 10 per answer: 6 answers, or a little more; never the 32 allowed.
    while pacer.wants_more(kept=40):
        pacer.sent()
    assert 6 <= pacer.in_flight <= 8
    assert not pacer.wants_more(kept=100)
    pacer.in_flight = 0
    assert pacer.wants_more(kept=99)  # nothing in flight: always one more


def test_pacer_ramps_up_with_the_answers_it_has_seen():
    pacer = Pacer(target=10_000)
    pacer.observe(1)  # one answer, a tiny rate: the target is far, yet at most RAMP go out
    while pacer.wants_more(kept=1):
        pacer.sent()
    assert pacer.in_flight == RAMP
    pacer.observe(1)
    while pacer.wants_more(kept=2):
        pacer.sent()
    assert pacer.in_flight == 2 * RAMP


def test_a_failed_request_does_not_count_as_in_flight(tmp_path, seed_file):
    # Every request of the slow start fails: the run goes on, it does not wait for
    # answers that will never come.
    script = fixed_rate_script(seed=6)

    def flaky(request: Request, number: int) -> Completion | BackendError:
        if number <= SLOW_START:
            return BackendError("HTTP 503: busy", retryable=True)
        return script(request, number)

    backend = FakeBackend(flaky, delay=0.001)
    bootstrap = open_bootstrap(tmp_path / "run", seed_file, backend, n=10, concurrency=8)
    with no_backoff():
        stats = asyncio.run(asyncio.wait_for(bootstrap.run(asyncio.Event()), 30))
    assert stats.kept == 10 and stats.requests.failed == SLOW_START


def test_dry_run_counts_the_candidates_set_aside(tmp_path, seed_file):
    from selfinstruct.llm.settings import BackendSettings
    from selfinstruct.runs.templates import load_template
    from selfinstruct.stages.generate import GenerateSettings, plan_generate, resolve_config

    out = tmp_path / "run"
    texts = distinct_texts(10, seed=7)
    scripted = iter([texts[:5], texts[5:]])
    generate(out, seed_file, 6, concurrency=1,
             script=lambda request, number: numbered_answer(9, next(scripted)))
    config, seeds, _ = resolve_config(
        out, GenerateSettings(num_instructions=30, seeds=seed_file),
        BackendSettings(base_url=("http://fake/v1",), model="fake"))
    plan = plan_generate(config, seeds, load_template("self-instruct", "en", None))
    # 24 missing, 4 of them perhaps from the set-aside candidates: 20 at 8 per answer.
    assert plan.requests == 3
    assert "after the 4 candidates set aside" in plan.note
