"""Every fault an OpenAI-compatible server can throw at a run, through the real CLI.

A fault is either absorbed by the client's own retries (nothing recorded, one extra
request), or, when retries are off or exhausted, recorded in ``failures.jsonl`` with
its error and replaced by another request; either way the run ends with exactly the
number of records asked for. Errors no retry can fix stop the run at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_one_clear_error,
    assert_pool_is_novel,
    backend_flags,
    flat,
    generate_args,
    invoke,
    read_records,
)

from .faultserver import MODEL, FaultServer

#: What ``failures.jsonl`` says for each fault when it is not retried away.
FAULT_ERRORS = {
    "429": "HTTP 429: Rate limit reached, please slow down",
    "429-retry-after": "HTTP 429: Rate limit reached",
    "500": "HTTP 500: The server had an error processing your request",
    "502": "HTTP 502: <html><head><title>502 Bad Gateway",
    "503": "HTTP 503: The server had an error processing your request",
    "reset": "cannot reach http://127.0.0.1:",
    "cut": "peer closed connection without sending complete message body",
    "hang": "the request timed out",
    "drip-slow": "the request timed out",
    "bad-json": "malformed response: the body is not JSON",
    "not-json": "malformed response: not JSON: '<html><body>Service is warming up",
    "empty-choices": "the server answered with no choices",
    "keepalive": "malformed response: the body is not JSON",
}


def stats(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


@pytest.mark.parametrize("fault", list(FAULT_ERRORS))
def test_a_fault_is_recorded_and_replaced(server: FaultServer, seeds, tmp_path, fault):
    server.push(fault)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6))
    assert result.exit_code == 0, result.output
    assert "kept 6 new instructions (6/6" in flat(result.output)
    assert len(read_records(out / "instructions.jsonl")) == 6
    assert_pool_is_novel(out)
    [failure] = read_records(out / "failures.jsonl")
    assert failure["stage"] == "generate" and failure["id"] == 1 and failure["retryable"]
    assert FAULT_ERRORS[fault] in failure["error"]
    answered = server.count() - 1
    assert f"requests: {server.count()} sent, {answered} answered, 1 failed" in flat(result.output)
    assert stats(out)["generate"]["requests"]["failed"] == 1
    assert server.served[0].behaviour == fault


@pytest.mark.parametrize("fault", ["429", "429-retry-after", "503", "reset", "hang", "drip-slow"])
def test_the_client_retries_a_fault_away(server: FaultServer, seeds, tmp_path, fault):
    server.push(fault)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6, retries=2))
    assert result.exit_code == 0, result.output
    assert len(read_records(out / "instructions.jsonl")) == 6
    assert read_records(out / "failures.jsonl") == []
    first, retry = server.served[:2]
    assert (first.behaviour, retry.behaviour) == (fault, "ok")
    gap = retry.time - first.time
    if fault == "429-retry-after":
        assert gap >= 0.95  # the server asked for one second
    elif fault == "429":
        assert gap < 0.9  # the client's own backoff starts at half a second


def test_an_answer_cut_by_the_length_limit(server: FaultServer, seeds, tmp_path):
    server.push("length")
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6))
    assert result.exit_code == 0, result.output
    truncated = [r for r in read_records(out / "rejected.jsonl") if r["filter"] == "truncated"]
    assert [r["request"] for r in truncated] == [1]
    assert len(read_records(out / "instructions.jsonl")) == 6
    assert read_records(out / "failures.jsonl") == []


@pytest.mark.parametrize("fault", ["drip", "keepalive-then-ok"])
def test_a_slow_but_complete_answer_is_kept(server: FaultServer, seeds, tmp_path, fault):
    server.push(fault)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6))
    assert result.exit_code == 0, result.output
    assert read_records(out / "failures.jsonl") == []
    assert 1 in {r["request"] for r in read_records(out / "instructions.jsonl")}


def test_completions_api_survives_faults(server: FaultServer, seeds, tmp_path):
    faults = ["bad-json", "500", "cut"]
    for fault in faults:
        server.push(fault, "ok")
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 30), "--api", "completions")
    assert result.exit_code == 0, result.output
    assert {s.path for s in server.served} == {"/v1/completions"}
    assert len(read_records(out / "instructions.jsonl")) == 30
    errors = [f["error"] for f in read_records(out / "failures.jsonl")]
    assert len(errors) == len(faults)
    for fault, error in zip(faults, errors, strict=True):
        assert FAULT_ERRORS[fault] in error


def generated_run(server: FaultServer, seeds: Path, out: Path, n: int, *,
                  classified: bool = False) -> None:
    """A run directory with ``n`` instructions (classified), made without faults."""
    assert invoke(*generate_args(server, seeds, out, n)).exit_code == 0
    if classified:
        assert invoke("classify", str(out)).exit_code == 0
    server.clear()


STAGE_OUTPUT = {"classify": "classification.jsonl", "instances": "instances.jsonl",
                "reason": "reasoning.jsonl"}


@pytest.mark.parametrize("stage", ["classify", "instances", "reason"])
def test_later_stages_retry_failed_records(server: FaultServer, seeds, tmp_path, stage):
    out = tmp_path / "run"
    generated_run(server, seeds, out, 16, classified=stage == "instances")
    faults = ["429", "502", "reset", "hang", "bad-json", "not-json", "empty-choices",
              "keepalive"]
    for fault in faults:
        server.push(fault, "ok")
    result = invoke(stage, str(out), *backend_flags(server))
    assert result.exit_code == 0, result.output
    records = read_records(out / STAGE_OUTPUT[stage])
    assert sorted(r["id"] for r in records) == [f"gen_{i:06d}" for i in range(16)]
    failures = [f for f in read_records(out / "failures.jsonl") if f["stage"] == stage]
    assert len(failures) == len(faults)
    for fault, failure in zip(faults, failures, strict=True):
        assert FAULT_ERRORS[fault] in failure["error"]
    assert f"{stage}: 16/16 done" in flat(result.output)
    assert f"{len(faults)} failed" in flat(result.output)
    if stage == "instances":
        assert all(r["instances"] for r in records)


def test_a_record_that_keeps_failing_is_left_for_the_next_session(server: FaultServer, seeds,
                                                                  tmp_path):
    out = tmp_path / "run"
    generated_run(server, seeds, out, 4)
    server.push("500", "ok", "ok", "ok", "500", "500")  # the first record fails three times
    result = invoke("classify", str(out), *backend_flags(server))
    assert result.exit_code == 0, result.output
    assert "classify: 3/4 done" in flat(result.output)
    assert "1 given up after repeated failures" in flat(result.output)
    assert [f["id"] for f in read_records(out / "failures.jsonl")] == ["gen_000000"] * 3
    again = invoke("classify", str(out), *backend_flags(server))
    assert again.exit_code == 0, again.output
    assert "classify: 4/4 done (1 now)" in flat(again.output)
    records = read_records(out / "classification.jsonl")
    assert sorted(r["id"] for r in records) == [f"gen_{i:06d}" for i in range(4)]


def test_the_server_goes_away_and_comes_back(server: FaultServer, seeds, tmp_path):
    server.latency = (0.05, 0.1)
    outage = server.outage(3.0, after_requests=3)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 40, retries=2, concurrency=2))
    outage.join()
    assert result.exit_code == 0, result.output
    assert len(read_records(out / "instructions.jsonl")) == 40
    assert_pool_is_novel(out)
    failures = read_records(out / "failures.jsonl")
    assert failures, "the outage should have cost some requests"
    assert all("cannot reach" in f["error"] for f in failures)
    assert server.count() > 3  # answered again after the outage
    assert stats(out)["generate"]["requests"]["failed"] == len(failures)


def test_an_outage_at_high_concurrency_counts_as_one_failure_per_round(server: FaultServer,
                                                                       seeds, tmp_path):
    """Eight requests in flight fail together when the server goes; with --max-failures 4
    that burst must not end the run, only four failed rounds in a row would."""
    server.latency = (0.1, 0.2)
    outage = server.outage(2.0, after_requests=10)
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 80, concurrency=8, max_failures=4))
    outage.join()
    assert result.exit_code == 0, result.output
    assert len(read_records(out / "instructions.jsonl")) == 80
    assert len(read_records(out / "failures.jsonl")) >= 8


def test_a_wrong_address_stops_quickly(seeds, tmp_path, monkeypatch):
    """A server that never answered: every failure counts, even in a burst. (The check
    before the first request catches a server that is not there at the start, see
    test_preflight.py; this is one gone between the check and the first request.)"""
    async def no_check(backend) -> None:
        return None

    monkeypatch.setattr("selfinstruct.stages.base.check_server", no_check)
    server = FaultServer()
    server.start()
    server.stop()  # nothing listens on its port any more
    out = tmp_path / "run"
    started = time.monotonic()
    result = invoke(*generate_args(server, seeds, out, 5, concurrency=8, max_failures=8))
    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "8 requests in a row failed", "cannot reach")


@pytest.mark.parametrize("stage", ["generate", "classify"])
def test_a_wrong_model_name_stops_at_once(server: FaultServer, seeds, tmp_path, stage):
    """On a server without ``/models`` (a server that lists its models is caught before
    the first request, see test_preflight.py), the first request's 404 stops the run."""
    out = tmp_path / "run"
    if stage == "classify":
        generated_run(server, seeds, out, 4)
        args = ["classify", str(out), *backend_flags(server, retries=3)]
    else:
        args = generate_args(server, seeds, out, 4, retries=3)
    args[args.index(MODEL)] = "wrong-model"
    server.models_status = 404
    result = invoke(*args)
    assert result.exit_code == 2
    assert_one_clear_error(
        result.output, "HTTP 404: the model or endpoint was not found",
        "The model `wrong-model` does not exist", "check --model 'wrong-model'",
    )
    assert server.count() == 1  # not retried, by the client or the run
    [failure] = [f for f in read_records(out / "failures.jsonl") if f["stage"] == stage]
    assert not failure["retryable"]


def test_a_refused_key_stops_at_once(server: FaultServer, seeds, tmp_path):
    """Caught by the check before the first request: ``GET /models`` is refused too."""
    server.api_key = "sk-the-right-key-0000"
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 4, retries=3),
                    env={"OPENAI_API_KEY": "sk-a-wrong-key-1111"})
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "HTTP 401: the API key was refused",
                           "Incorrect API key provided: <API key>",
                           "check --api-key or OPENAI_API_KEY")
    assert (server.listings, server.count()) == (1, 0)
    assert "sk-a-wrong-key-1111" not in result.output


@pytest.mark.parametrize("stage", ["generate", "classify", "reason"])
def test_every_request_failing_stops_after_max_failures(server: FaultServer, seeds, tmp_path,
                                                        stage):
    out = tmp_path / "run"
    if stage != "generate":
        generated_run(server, seeds, out, 6)
    server.default = "503"
    flags = backend_flags(server, max_failures=3)
    args = [stage, str(out), *flags] if stage != "generate" else [
        *generate_args(server, seeds, out, 6, max_failures=3)]
    started = time.monotonic()
    result = invoke(*args)
    assert time.monotonic() - started < 15
    assert result.exit_code == 2
    assert_one_clear_error(
        result.output, "3 requests in a row failed; the last error: HTTP 503",
        "Check that the server is up and answering, then run the same command again",
    )
    assert server.count() == 3
    failures = [f for f in read_records(out / "failures.jsonl") if f["stage"] == stage]
    assert len(failures) == 3 and all("HTTP 503" in f["error"] for f in failures)
    # The summary is still printed, before the error, and stats.json still written.
    assert "requests: 3 sent, 0 answered, 3 failed" in flat(result.output)
    assert flat(result.output).index("3 failed") < flat(result.output).index("Error:")
    section = stats(out)[stage]
    assert section["interrupted"] is True
    assert section["requests"]["failed"] == 3


def test_answers_that_never_add_anything_stop_the_run(server: FaultServer, seeds, tmp_path):
    server.default = "duds"
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6, concurrency=4))
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "the last 100 answers added no new instruction",
                           "too_short", "check --language, the prompt template")
    # Beyond the 100th: the 4 in flight, and up to 3 answers that came back with it,
    # whose slots were refilled before they were read.
    assert 100 <= server.count() <= 100 + 4 + 3
    assert "kept 0 new instructions (0/6" in flat(result.output)
    assert stats(out)["generate"]["interrupted"] is True


@pytest.mark.parametrize("fault", ["empty-content", "null-content"])
def test_an_empty_answer_is_settled_not_failed(server: FaultServer, seeds, tmp_path, fault):
    """An empty answer is an answer: recorded as a rejection, never a failed request, and
    a rerun does not pay for it again."""
    out = tmp_path / "run"
    generated_run(server, seeds, out, 4)
    server.push(fault)
    assert invoke("reason", str(out), *backend_flags(server)).exit_code == 0
    assert [f for f in read_records(out / "failures.jsonl") if f["stage"] == "reason"] == []
    rejected = [r for r in read_records(out / "rejected.jsonl") if r.get("stage") == "reason"]
    assert len(rejected) == 1 and rejected[0]["answer"] == ""
    sent = len(server.served)
    result = invoke("reason", str(out), *backend_flags(server))
    assert result.exit_code == 0 and len(server.served) == sent
