"""``--executor ray``: the row stages sent from Ray Data actors write what the local path
writes. A small local Ray (2 CPUs, one declared GPU for the vLLM stand-in, a 200 MB
object store) serves the module and is shut down after it; the answers come from a
server on 127.0.0.1 whose every answer depends only on the prompt."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from selfinstruct.cli import commands as cli
from selfinstruct.cluster.executor import RayExecutor, RayOptions, RemoteModel
from selfinstruct.cluster.plan import plan_actors
from selfinstruct.cluster.runner import RayRunner
from selfinstruct.cluster.wire import (
    decode_outcome,
    decode_request,
    encode_outcome,
    encode_request,
)
from selfinstruct.errors import UserError
from selfinstruct.filters.traces import TraceSettings
from selfinstruct.llm import BackendSpec, use_backend
from selfinstruct.llm.base import BackendError, Completion, Request, Usage
from selfinstruct.runs.inputs import PromptRecord
from selfinstruct.stages.per_record import StageSettings
from selfinstruct.stages.reason import ReasonSettings, reason_run
from tests.helpers import ROOT, STAND_INS
from tests.ray_fakes import broken_factory, instance_backend
from tests.ray_server import MODEL, PromptServer

PLANTED_KEY = "sk-planted-ray-3f9a1c7e"

# --- without Ray: the layout of the pool, the wire, the flags ------------------------------


def test_http_actors_share_the_concurrency():
    plan = plan_actors("openai", 64, None, cluster_cpus=2, cluster_gpus=0)
    assert (plan.actors, plan.slots, plan.batch_size, plan.calls_per_actor) == (1, 64, 32, 4)
    plan = plan_actors("openai", 300, None, cluster_cpus=16, cluster_gpus=0)
    assert (plan.actors, plan.slots) == (3, 100)
    assert plan_actors("openai", 64, 4, cluster_cpus=2, cluster_gpus=0).slots == 16
    assert plan_actors("openai", 2, 8, cluster_cpus=2, cluster_gpus=0).actors == 2


def test_a_vllm_actor_per_gpu_each_with_a_full_round():
    plan = plan_actors("vllm", 256, None, cluster_cpus=32, cluster_gpus=8, gpus_per_engine=2)
    assert (plan.actors, plan.slots, plan.num_gpus) == (4, 256, 2.0)
    assert plan.describe() == "4 Ray actors (256 requests in flight each, 2 GPU each)"


@pytest.mark.parametrize(("kind", "actors", "gpus", "message"), [
    ("vllm", None, 0, "needs 1 GPU per actor"),
    ("vllm", 3, 2, "room for 2 engines"),
    ("openai", 9, 2, "room for 8 actors"),
    ("local", None, 0, "the embedded model runs in this process"),
])
def test_a_pool_that_does_not_fit_is_refused(kind, actors, gpus, message):
    with pytest.raises(UserError, match=message):
        plan_actors(kind, 8, actors, cluster_cpus=2, cluster_gpus=gpus)


def test_requests_and_outcomes_survive_the_trip():
    request = Request(prompt="问题", max_tokens=99, stop=("####",), system="s",
                      extra_body={"top_k": 20}, enable_thinking=False, seed=7)
    assert decode_request(encode_request(request)) == request
    answer = Completion("text", "stop", "trace", Usage(3, 4), "m")
    assert decode_outcome(encode_outcome(answer)) == answer
    failure = decode_outcome(encode_outcome(BackendError("HTTP 503", retryable=True)))
    assert isinstance(failure, BackendError)
    assert (failure.message, failure.retryable) == ("HTTP 503", True)


BUSY = BackendError("HTTP 503: busy", retryable=True)


def coordinator(limit: int, handled: list[int], done_at: int | None = None
                ) -> Callable[[list[Completion | BackendError]], bool]:
    """The coordinator's side of a Ray run, without Ray: each call hands it one batch's
    outcomes (job = position in the batch) as an actor sends them back."""
    runner: RayRunner[int] = RayRunner(None, "fake", concurrency=4,  # type: ignore[arg-type]
                                       max_consecutive_failures=limit,
                                       on_failure=lambda job, error: None)

    def handle(job: int, answer: Completion) -> bool:
        handled.append(job)
        return job == done_at

    def batch(outcomes: list[Completion | BackendError]) -> bool:
        block = {"key": list(range(len(outcomes))),
                 "outcome": [encode_outcome(outcome) for outcome in outcomes]}
        return runner._settle(block, list(range(len(outcomes))), handle)

    return batch


def test_a_batch_s_failures_count_once_once_the_server_has_answered():
    handled: list[int] = []
    batch = coordinator(2, handled)
    assert not batch([BUSY, Completion("an answer"), BUSY, BUSY])  # one failure in a row
    with pytest.raises(UserError, match="fake: 2 requests in a row failed"):
        batch([BUSY])
    assert handled == [1]


def test_before_any_answer_every_failure_of_a_batch_counts():
    batch = coordinator(3, [])
    with pytest.raises(UserError, match="fake: 3 requests in a row failed"):
        batch([BUSY, BUSY, BUSY])


def test_a_batch_s_answers_are_handled_before_its_failure_stops_the_run():
    handled: list[int] = []
    batch = coordinator(1, handled)
    with pytest.raises(UserError, match="fake: 1 requests in a row failed"):
        batch([BUSY, Completion("paid for"), Completion("paid for too")])
    assert handled == [1, 2]


def test_failures_after_the_stage_is_done_are_dropped():
    handled: list[int] = []
    assert coordinator(1, handled, done_at=0)([Completion("the last one"), BUSY])
    assert handled == [0]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    environ = {"OPENAI_API_KEY": None, **(env or {})}
    return CliRunner().invoke(cli.app, list(args), env=environ)  # type: ignore[arg-type]


def test_ray_flags_need_the_ray_executor(tmp_path):
    prompts = write_prompts(tmp_path, 3)
    result = invoke("reason", str(prompts), "-o", str(tmp_path / "o"), "--ray-actors", "2",
                    "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert result.exit_code == 2
    assert "--ray-address and --ray-actors need --executor ray" in result.output


def test_the_embedded_model_is_not_sent_to_actors(tmp_path):
    prompts = write_prompts(tmp_path, 3)
    result = invoke("reason", str(prompts), "-o", str(tmp_path / "o"), "--executor", "ray")
    assert result.exit_code == 2, result.output
    assert "the embedded model runs in this process" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_cluster_address_nothing_answers_on_is_one_line_in_seconds(tmp_path):
    """Ray itself would try for minutes and then end the process without a word."""
    prompts = write_prompts(tmp_path, 3)
    for address, message in (("127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
                             ("head-node", "expected HOST:PORT or ray://HOST:PORT")):
        with use_backend(instance_backend()):
            result = invoke("reason", str(prompts), "-o", str(tmp_path / "o"), "--base-url",
                            "http://127.0.0.1:9/v1", "--model", "m", "--executor", "ray",
                            "--ray-address", address)
        assert result.exit_code == 2, result.output
        assert f"Error: --ray-address {address}: {message}" in " ".join(result.output.split())


# --- on a local Ray -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, num_gpus=1, object_store_memory=200 * 1024**2,
             include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT),
                                                                     str(STAND_INS)])}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def _server() -> Iterator[PromptServer]:
    server = PromptServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(_server: PromptServer) -> PromptServer:
    _server.reset()
    _server.api_key = None
    return _server


def write_prompts(directory: Path, count: int) -> Path:
    path = directory / "prompts.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Explain item {i} of the list."}) + "\n"
                            for i in range(count)))
    return path


def backend_args(server: PromptServer, concurrency: int = 8) -> list[str]:
    return ["--base-url", server.base_url, "--model", MODEL, "--max-retries", "0",
            "--concurrency", str(concurrency)]


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_key(records: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: tuple(str(r.get(k)) for k in keys))


def failures(path: Path) -> Counter[tuple[Any, ...]]:
    return Counter((r["stage"], r["id"], r["error"], r["retryable"]) for r in read(path))


def stage_counts(out: Path, stage: str) -> dict[str, Any]:
    section = json.loads((out / "stats.json").read_text())[stage]
    return {key: section[key] for key in ("total", "done", "gave_up", "rejected", "requests")}


def both_ways(server: PromptServer, tmp_path: Path, *args: str) -> tuple[Path, Path]:
    """Run the same command locally and with --executor ray (fresh server memory each
    time, so the same first attempts fail); the two output directories."""
    outs = []
    for executor in ("local", "ray"):
        server.reset()
        out = tmp_path / executor
        result = invoke(*[a.replace("{out}", str(out)) for a in args], "--executor", executor)
        assert result.exit_code == 0, result.output
        outs.append(out)
    return outs[0], outs[1]


def test_reason_on_ray_writes_what_the_local_path_writes(local_ray, server, tmp_path):
    prompts = write_prompts(tmp_path, 60)
    local, ray = both_ways(server, tmp_path, "reason", str(prompts), "-o", "{out}",
                           "--samples", "2", "--seed", "5", *backend_args(server))
    kept = read(local / "reasoning.jsonl")
    assert 80 < len(kept) < 120  # some truncated traces were rejected
    assert by_key(read(ray / "reasoning.jsonl"), "id", "sample") == by_key(kept, "id", "sample")
    assert by_key(read(ray / "rejected.jsonl"), "id", "sample") == \
        by_key(read(local / "rejected.jsonl"), "id", "sample")
    assert failures(ray / "failures.jsonl") == failures(local / "failures.jsonl")
    assert sum(failures(local / "failures.jsonl").values()) > 0
    assert stage_counts(ray, "reason") == stage_counts(local, "reason")


def test_distill_on_ray_writes_what_the_local_path_writes(local_ray, server, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("q\n" + "".join(f"topic {i}\n" for i in range(40)))
    template = tmp_path / "t.txt"
    template.write_text("Write questions and answers as a JSON list of q/a pairs about {q}.")
    local, ray = both_ways(server, tmp_path, "distill", str(rows), "--user-template",
                           str(template), "-o", "{out}", "--parse", "json", "--map",
                           "instruction=q", "--map", "output=a", "--samples", "2",
                           *backend_args(server))
    kept = read(local / "distilled.jsonl")
    assert len(kept) > 100
    keys = ("id", "item", "sample")
    assert by_key(read(ray / "distilled.jsonl"), *keys) == by_key(kept, *keys)
    assert by_key(read(ray / "rejected.jsonl"), *keys) == \
        by_key(read(local / "rejected.jsonl"), *keys)
    assert failures(ray / "failures.jsonl") == failures(local / "failures.jsonl")
    assert stage_counts(ray, "distill") == stage_counts(local, "distill")


def test_score_on_ray_asks_unreadable_verdicts_again_like_the_local_path(local_ray, server,
                                                                         tmp_path):
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps([{"instruction": f"Name {i} colours.", "input": "",
                                 "output": f"Red and {i} more."} for i in range(40)]))
    local, ray = both_ways(server, tmp_path, "score", str(data), "-o", "{out}",
                           *backend_args(server))
    scores = read(local / "scores.jsonl")
    assert len(scores) == 40
    assert by_key(read(ray / "scores.jsonl"), "id", "sample") == by_key(scores, "id", "sample")
    rejected = read(local / "rejected.jsonl")
    assert rejected and not any(r["final"] for r in rejected)  # each was asked again
    assert by_key(read(ray / "rejected.jsonl"), "id", "attempt") == \
        by_key(rejected, "id", "attempt")
    assert stage_counts(ray, "score") == stage_counts(local, "score")


def write_run(directory: Path, server_url: str, count: int) -> Path:
    """A run directory with classified instructions, as generate and classify leave it."""
    run = directory / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "language": "en", "backend": "openai", "base_urls": [server_url], "model": MODEL,
        "seed": 3}))
    (run / "instructions.jsonl").write_text("".join(
        json.dumps({"id": f"gen_{i:06d}", "instruction": f"Describe thing {i} briefly."}) + "\n"
        for i in range(count)))
    (run / "classification.jsonl").write_text("".join(
        json.dumps({"id": f"gen_{i:06d}", "is_classification": i % 4 == 0}) + "\n"
        for i in range(count)))
    return run


def test_instances_on_ray_writes_what_the_local_path_writes(local_ray, server, tmp_path):
    runs = []
    for executor in ("local", "ray"):
        server.reset()
        run = write_run(tmp_path / executor, server.base_url, 30)
        result = invoke("instances", str(run), "--per-task", "2", "--executor", executor,
                        "--max-retries", "0")
        assert result.exit_code == 0, result.output
        runs.append(run)
    local, ray = runs
    records = read(local / "instances.jsonl")
    assert len(records) == 30 and any(r["is_classification"] for r in records)
    assert by_key(read(ray / "instances.jsonl"), "id") == by_key(records, "id")
    assert stage_counts(ray, "instances") == stage_counts(local, "instances")


def test_a_backend_given_in_the_library_goes_to_the_actors(local_ray, tmp_path):
    """``use_backend`` is the test seam on either executor: the fake travels pickled."""
    outs = []
    for executor in ("local", "ray"):
        run = write_run(tmp_path / executor, "http://127.0.0.1:9/v1", 12)
        with use_backend(instance_backend()):
            result = invoke("instances", str(run), "--executor", executor)
        assert result.exit_code == 0, result.output
        outs.append(by_key(read(run / "instances.jsonl"), "id"))
    assert outs[0] == outs[1] and len(outs[0]) == 12


def test_vllm_on_ray_builds_an_engine_per_gpu_actor(local_ray, tmp_path):
    """The wiring only: the stand-in of vLLM's offline API plays the engine in the actor,
    which asked for the one GPU this Ray declares."""
    prompts = write_prompts(tmp_path, 10)
    result = invoke("reason", str(prompts), "-o", str(tmp_path / "out"), "--backend", "vllm",
                    "--model", "stand-in/model", "--concurrency", "16", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert "1 Ray actor (16 requests in flight each, 1 GPU each)" in result.output
    kept = read(tmp_path / "out" / "reasoning.jsonl")
    assert len(kept) == 10
    assert {(r["answer"], r["reasoning"], r["model"]) for r in kept} == \
        {("ok", "stand-in", "vllm:stand-in/model")}


def test_vllm_on_ray_wants_the_gpus_it_asks_for(local_ray, tmp_path):
    prompts = write_prompts(tmp_path, 3)
    result = invoke("reason", str(prompts), "-o", str(tmp_path / "out"), "--backend", "vllm",
                    "--model", "m", "--executor", "ray", "--ray-actors", "2")
    assert result.exit_code == 2
    assert "room for 1 engines of 1 GPU" in " ".join(result.output.split())


def test_a_refused_key_stops_the_actors_with_one_line_and_is_never_written(local_ray, server,
                                                                        tmp_path):
    server.api_key = "sk-the-right-one"
    prompts = write_prompts(tmp_path, 20)
    out = tmp_path / "out"
    result = invoke("reason", str(prompts), "-o", str(out), *backend_args(server),
                    "--executor", "ray", env={"OPENAI_API_KEY": PLANTED_KEY})
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "401" in errors[0], result.output
    assert PLANTED_KEY not in result.output
    logs = Path(local_ray._private.worker._global_node.get_session_dir_path())
    for path in [*out.rglob("*"), *logs.rglob("*")]:
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert PLANTED_KEY.encode() not in path.read_bytes(), path


def test_an_actor_that_cannot_start_is_one_clear_error(local_ray, tmp_path):
    """The error an actor raised while building its backend (vLLM missing on a node) is
    the run's one line, not Ray's traceback."""
    spec = BackendSpec(kind="openai", model="m", base_urls=("http://127.0.0.1:9/v1",))
    executor = RayExecutor(spec, None, RayOptions(), broken_factory)
    prompts = [PromptRecord(f"p{i}", f"Question {i}?") for i in range(6)]
    with pytest.raises(UserError, match=r"^--backend vllm needs vLLM and a GPU"):
        asyncio.run(reason_run(prompts, tmp_path, RemoteModel("m"), ReasonSettings(),
                               TraceSettings(), StageSettings(concurrency=4, executor=executor),
                               asyncio.Event()))


def test_the_library_sends_from_ray_actors_too(local_ray, server, tmp_path):
    """``executor="ray"`` (or an ExecutorFlags with an address) on the library's stages."""
    import selfinstruct

    prompts = write_prompts(tmp_path, 12)
    stats = selfinstruct.reason(prompts, tmp_path / "out", base_url=server.base_url,
                                model=MODEL, max_retries=0, executor="ray")
    assert stats.done == 12 and stats.requests.succeeded == 12
    assert len(read(tmp_path / "out" / "reasoning.jsonl")) + \
        len(read(tmp_path / "out" / "rejected.jsonl")) == 12
