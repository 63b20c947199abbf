"""Streaming servers and silent ones, through the real CLI against the fault server.

A streamed answer must be kept exactly as the whole answer would be; a server that
answers thinking requests only streamed (DashScope) must work under ``--stream auto``
with every trace kept; a stream that stalls is a timeout, retried; a server that takes
requests and then sends nothing ends the command in seconds of its silence limit, with
one line; a slow server that is alive is never cut off. The limits are made short here
(the defaults are checked once, below); everything runs on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selfinstruct.llm import BackendSpec, use_backend
from selfinstruct.llm import openai as openai_backend
from selfinstruct.llm.registry import FACTORIES
from tests.helpers import (
    assert_one_clear_error,
    backend_flags,
    flat,
    generate_args,
    invoke,
    read_records,
)

from .faultserver import MODEL, FaultServer

#: The promise: a silent server ends a command within this many seconds, by default.
SILENT_SERVER_SECONDS = 90


@contextlib.contextmanager
def limits(**fields: float) -> Iterator[None]:
    """Every backend the CLI builds in the block has these BackendSpec fields."""
    def build(spec: BackendSpec) -> Any:
        return FACTORIES[spec.kind](dataclasses.replace(spec, **fields), None,
                                    spec.concurrency)

    with use_backend(build):
        yield


def rows(tmp_path: Path, count: int = 6) -> list[str]:
    """The input and template flags of a ``distill`` over ``count`` questions."""
    table = tmp_path / "rows.csv"
    table.write_text("q\n" + "".join(f"question {i}\n" for i in range(count)))
    template = tmp_path / "t.txt"
    template.write_text("Question: {q}")
    return [str(table), "--user-template", str(template)]


def distill(server: FaultServer, tmp_path: Path, out: str, *flags: str) -> list[dict]:
    """Run ``distill`` against ``server``; its records."""
    result = invoke("distill", *rows(tmp_path), "-o", str(tmp_path / out),
                    *backend_flags(server), *flags)
    assert result.exit_code == 0, result.output
    return read_records(tmp_path / out / "distilled.jsonl")


def test_streamed_answers_are_kept_exactly_as_whole_ones(tmp_path):
    """Two servers that write the same answers, one asked to stream: the same records,
    reasoning and token counts included."""
    whole, pieces = FaultServer(seed=11).start(), FaultServer(seed=11).start()
    try:
        kept_whole = distill(whole, tmp_path, "whole", "--stream", "off")
        kept_pieces = distill(pieces, tmp_path, "pieces", "--stream", "on")
    finally:
        whole.stop()
        pieces.stop()
    assert [s.stream for s in whole.served] == [False] * 6
    assert [s.stream for s in pieces.served] == [True] * 6
    assert kept_pieces == kept_whole
    assert all(r["reasoning"].startswith("Let me think about ") for r in kept_pieces)
    assert {r["usage"]["completion_tokens"] for r in kept_pieces} == {40}


def test_a_server_that_streams_thinking_only_keeps_every_trace(server: FaultServer, tmp_path):
    """DashScope refuses enable_thinking on a non-streamed request: the first request is
    sent again streamed, with one note, and every request after it streams."""
    server.demands_streaming = True
    server.chunk_interval = 0.002
    result = invoke("distill", *rows(tmp_path), "-o", str(tmp_path / "out"),
                    *backend_flags(server), "--thinking", "on",
                    "--thinking-style", "top-level")
    assert result.exit_code == 0, result.output
    records = read_records(tmp_path / "out" / "distilled.jsonl")
    assert len(records) == 6
    assert all(r["reasoning"].startswith("Let me think about ") for r in records)
    assert all(r["response"].startswith("The answer is ") for r in records)
    assert [(s.behaviour, s.stream) for s in server.served] == (
        [("needs-stream", False)] + [("ok", True)] * 6)
    assert flat(result.output).count("answers only streamed requests") == 1
    assert read_records(tmp_path / "out" / "failures.jsonl") == []


def test_a_streamed_run_saves_its_setting_for_the_next_stages(server: FaultServer, seeds,
                                                              tmp_path):
    out = tmp_path / "run"
    assert invoke(*generate_args(server, seeds, out, 4), "--stream", "on").exit_code == 0
    server.clear()
    result = invoke("classify", str(out), *backend_flags(server))
    assert result.exit_code == 0, result.output
    assert server.served and all(s.stream for s in server.served)


def test_a_stall_between_chunks_is_an_idle_timeout_and_is_retried(server: FaultServer, seeds,
                                                                  tmp_path):
    server.push("stall")
    server.hang_seconds = 10
    out = tmp_path / "run"
    started = time.monotonic()
    with limits(idle_timeout=0.3):
        result = invoke(*generate_args(server, seeds, out, 6, retries=2), "--stream", "on")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 8  # the stall was cut off, not waited out
    assert read_records(out / "failures.jsonl") == []
    assert [s.behaviour for s in server.served[:2]] == ["stall", "ok"]
    assert len(read_records(out / "instructions.jsonl")) == 6


def test_a_stall_that_is_not_retried_is_recorded_as_one(server: FaultServer, seeds, tmp_path):
    server.push("stall")
    server.hang_seconds = 10
    out = tmp_path / "run"
    with limits(idle_timeout=0.3):
        result = invoke(*generate_args(server, seeds, out, 6), "--stream", "on")
    assert result.exit_code == 0, result.output
    [failure] = read_records(out / "failures.jsonl")
    assert ("the request timed out (the stream stalled: no new chunk within 0.3s)"
            in failure["error"])


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that takes connections and never answers a byte (a hung process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}/v1"


@pytest.mark.parametrize("stream", ["off", "on"])
def test_a_silent_server_ends_generate_in_seconds_with_one_line(monkeypatch, silent_url,
                                                                seeds, tmp_path, stream):
    """The check finds it silent and goes on; the requests then wait the silence limit
    from the check on (1s here), the probe goes unanswered, and the command stops."""
    monkeypatch.setattr(openai_backend, "CHECK_TIMEOUT", 0.3)
    monkeypatch.setattr(openai_backend, "PROBE_TIMEOUT", 0.3)
    started = time.monotonic()
    with limits(silence_timeout=1.0):
        result = invoke("generate", "--seeds", str(seeds), "-o", str(tmp_path / "run"),
                        "-n", "8", "--base-url", silent_url, "--model", MODEL,
                        "--concurrency", "4", "--stream", stream)
    took = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert took < 4, took
    assert_one_clear_error(result.output, f"Error: openai:{MODEL}: {silent_url} has sent "
                           "nothing for 1s while requests waited on it, and did not answer "
                           "GET /models either")


def test_by_default_a_silent_server_is_given_up_on_within_90_seconds():
    """The default limit, the probe's longest wait (connect and read) and the command's
    start-up fit in the promise, whether the check found the server silent or not."""
    start_up = 5
    spec = BackendSpec()
    assert spec.silence_timeout + 2 * openai_backend.PROBE_TIMEOUT + start_up \
        <= SILENT_SERVER_SECONDS
    # A slow answer is not silence: the limit is far below a whole answer's timeout.
    assert spec.silence_timeout < spec.timeout


def test_a_slow_server_that_answers_get_models_is_not_cut_off(server: FaultServer, seeds,
                                                              tmp_path):
    """Each answer takes 1.2s, more than twice the silence limit: the probes find it
    there."""
    server.latency = (1.2, 1.2)
    out = tmp_path / "run"
    with limits(silence_timeout=0.5):
        result = invoke(*generate_args(server, seeds, out, 6, timeout=10))
    assert result.exit_code == 0, result.output
    assert read_records(out / "failures.jsonl") == []
    assert server.listings >= 2  # the check, then at least one probe


def test_a_slow_stream_is_not_cut_off_though_get_models_is_silent(server: FaultServer,
                                                                 monkeypatch, seeds, tmp_path):
    """Chunks 0.02s apart for a second or so an answer, GET /models not answering in
    time: the chunks show the server is alive, so it is never probed into a verdict."""
    monkeypatch.setattr(openai_backend, "CHECK_TIMEOUT", 0.3)
    monkeypatch.setattr(openai_backend, "PROBE_TIMEOUT", 0.3)
    server.chunk_interval = 0.02
    server.models_silent = True
    server.hang_seconds = 5
    out = tmp_path / "run"
    with limits(silence_timeout=0.5):
        result = invoke(*generate_args(server, seeds, out, 6), "--stream", "on")
    assert result.exit_code == 0, result.output
    assert read_records(out / "failures.jsonl") == []
    assert server.listings == 1  # the check only
    assert len(read_records(out / "instructions.jsonl")) == 6
