"""Backend selection, several servers behind one balancer, and the vLLM offline engine
(through a stand-in module: no GPU here)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.errors import UserError
from selfinstruct.llm import BackendSpec, EngineOptions, create_backend
from selfinstruct.llm.balance import BalancedBackend
from selfinstruct.llm.base import BackendError, Completion, Request, ServerSilent, preflight
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.stages.base import Connection, connect
from selfinstruct.stages.pacing import SLOW_START
from tests.helpers import distinct_texts


def test_resolve_backend_defaults_and_saved_settings():
    spec = resolve_backend({}, BackendSettings())
    assert (spec.kind, spec.concurrency) == ("local", 1)
    spec = resolve_backend({}, BackendSettings(base_url=("http://a/v1", "http://b/v1"),
                                               model="m"))
    assert (spec.kind, spec.base_urls, spec.concurrency) == (
        "openai", ("http://a/v1", "http://b/v1"), 8)
    saved = {"backend": "openai", "base_urls": ["http://a/v1"], "model": "m", "api": "completions",
             "concurrency": 64, "max_consecutive_failures": 7}
    spec = resolve_backend(saved, BackendSettings())
    assert (spec.model, spec.api, spec.concurrency, spec.max_failures) == (
        "m", "completions", 64, 7)
    spec = resolve_backend(saved, BackendSettings(backend="vllm", model="Qwen/Qwen3-8B",
                                                  tensor_parallel_size=4))
    assert (spec.kind, spec.base_urls, spec.engine.tensor_parallel_size, spec.concurrency) == (
        "vllm", (), 4, 256)


def test_base_url_file(tmp_path):
    urls = tmp_path / "servers.txt"
    urls.write_text("# my nodes\nhttp://10.0.0.1:8000/v1\n\nhttp://10.0.0.2:8000/v1  # second\n")
    flags = BackendSettings(base_url=("http://x/v1",), base_url_file=urls, model="m")
    assert resolve_backend({}, flags).base_urls == (
        "http://x/v1", "http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1")
    with pytest.raises(UserError, match="cannot read"):
        BackendSettings(base_url_file=tmp_path / "missing.txt").urls()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (BackendSettings(base_url=("http://a/v1",)), "--base-url needs --model NAME"),
        (BackendSettings(backend="vllm"), "--backend vllm needs --model"),
        (BackendSettings(backend="openai", model="m"), "--backend openai needs --base-url"),
        (BackendSettings(base_url=("http://a/v1",), model="m", concurrency=0),
         "--concurrency must be at least 1"),
    ],
)
def test_resolve_backend_errors(flags, message):
    with pytest.raises(UserError, match=message):
        resolve_backend({}, flags)


def test_several_urls_make_a_balanced_backend():
    backend = create_backend(BackendSpec(kind="openai", model="m",
                                         base_urls=("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")))
    assert isinstance(backend, BalancedBackend)
    assert [name for name, _, _ in backend.load()] == ["openai:m", "openai:m"]
    asyncio.run(backend.aclose())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ok(request: Request, number: int) -> Completion:
    return Completion(text="fine")


def down(request: Request, number: int) -> BackendError:
    return BackendError("cannot reach the server", retryable=True)


def test_balancer_prefers_the_least_loaded_server():
    servers = [FakeBackend(ok, delay=0.01) for _ in range(3)]
    balanced = BalancedBackend(servers)

    async def burst() -> None:
        await asyncio.gather(*(balanced.complete(Request("p")) for _ in range(30)))

    asyncio.run(burst())
    assert [len(s.requests) for s in servers] == [10, 10, 10]
    assert all(s.max_in_flight <= 10 for s in servers)


def test_a_failing_server_is_taken_out_and_tried_again_later():
    clock = Clock()
    broken = FakeBackend(down)
    healthy = FakeBackend(ok)
    balanced = BalancedBackend([broken, healthy], cooldown=10.0, clock=clock)

    async def send(n: int) -> list[str]:
        return [(await balanced.complete(Request("p"))).text for _ in range(n)]

    assert asyncio.run(send(5)) == ["fine"] * 5
    assert len(broken.requests) == 1  # failed once, then left alone
    assert [healthy for _, _, healthy in balanced.load()] == [False, True]
    clock.now = 11.0
    asyncio.run(send(2))
    assert len(broken.requests) == 2  # tried again after the cool-down, failed again
    clock.now = 25.0  # second failure doubled the cool-down to 20 s
    assert [healthy for _, _, healthy in balanced.load()] == [False, True]
    clock.now = 32.0
    assert [healthy for _, _, healthy in balanced.load()] == [True, True]


def test_balancer_gives_up_when_every_server_fails_and_never_retries_fatal_errors():
    balanced = BalancedBackend([FakeBackend(down), FakeBackend(down)])
    with pytest.raises(BackendError, match="cannot reach"):
        asyncio.run(balanced.complete(Request("p")))
    fatal = FakeBackend(lambda r, n: BackendError("HTTP 401: bad key", retryable=False))
    spare = FakeBackend(ok)
    balanced = BalancedBackend([fatal, spare])
    with pytest.raises(BackendError, match="401"):
        asyncio.run(balanced.complete(Request("p")))
    assert spare.requests == []


def test_a_silent_server_is_left_for_the_others_and_stops_the_run_when_alone():
    silent = FakeBackend(lambda r, n: ServerSilent("http://a/v1", 60))
    healthy = FakeBackend(ok)
    balanced = BalancedBackend([silent, healthy])

    async def send(n: int) -> list[str]:
        return [(await balanced.complete(Request("p"))).text for _ in range(n)]

    assert asyncio.run(send(3)) == ["fine"] * 3
    assert len(silent.requests) == 1
    assert [healthy for _, _, healthy in balanced.load()] == [False, True]
    alone = BalancedBackend([FakeBackend(lambda r, n: ServerSilent("http://a/v1", 60)),
                             FakeBackend(lambda r, n: ServerSilent("http://b/v1", 60))])
    with pytest.raises(ServerSilent, match="has sent nothing for 60s"):
        asyncio.run(alone.complete(Request("p")))


def test_stream_is_resolved_like_the_other_backend_settings():
    flags = {"base_url": ("http://a/v1",), "model": "m"}
    assert resolve_backend({}, BackendSettings(**flags)).stream == "auto"
    assert resolve_backend({"stream": "on"}, BackendSettings(**flags)).stream == "on"
    assert resolve_backend({"stream": "on"}, BackendSettings(**flags, stream="off")).stream \
        == "off"
    with pytest.raises(UserError, match="--stream sometimes: expected auto, on or off"):
        resolve_backend({}, BackendSettings(**flags, stream="sometimes"))


def test_generate_over_three_servers_one_failing(tmp_path, seed_file, serve):
    texts = iter(distinct_texts(300, seed=21))

    def answer(request: Request, number: int) -> Completion:
        return Completion(text="\n".join(f"Task {9 + i}: {next(texts)}" for i in range(3)),
                          finish_reason="stop")

    servers = [FakeBackend(answer, delay=0.005), FakeBackend(down),
               FakeBackend(answer, delay=0.005)]
    serve(lambda spec: BalancedBackend(servers))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli.app, [
        "generate", "--seeds", str(seed_file), "-o", str(out), "-n", "30",
        "--base-url", "http://a/v1", "--base-url", "http://b/v1", "--base-url", "http://c/v1",
        "--model", "m", "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    assert len((out / "instructions.jsonl").read_text().splitlines()) == 30
    assert len(servers[1].requests) == 1
    assert len(servers[0].requests) > 3 and len(servers[2].requests) > 3
    config = json.loads((out / "config.json").read_text())
    assert config["base_urls"] == ["http://a/v1", "http://b/v1", "http://c/v1"]


def served_by(url: str, handler) -> OpenAIBackend:
    """An OpenAI backend for ``url`` whose HTTP goes to ``handler``."""
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(base_url=url, model="m", api_key=None, max_retries=0,
                         http_client=client)


def listing(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/models"):
        return httpx2.Response(200, json={"data": [{"id": "m"}]})
    return httpx2.Response(200, json={"choices": [{"message": {"content": "fine"}}]})


def refusing(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused")


def test_balanced_check_goes_on_without_the_servers_that_are_down(caplog):
    clock = Clock()
    balanced = BalancedBackend([served_by("http://127.0.0.1:1/v1", refusing),
                                served_by("http://127.0.0.1:2/v1", listing)], clock=clock)
    with caplog.at_level(logging.WARNING, logger="selfinstruct"):
        asyncio.run(preflight(balanced))
    assert [record.getMessage() for record in caplog.records] == [
        "1 of 2 servers cannot be reached and sit out a cool-down before they are tried: "
        "http://127.0.0.1:1/v1 (connection refused); going on with the other 1"]
    assert [healthy for _, _, healthy in balanced.load()] == [False, True]
    assert asyncio.run(balanced.complete(Request("p"))).text == "fine"
    assert [sent for _, sent, _ in balanced.load()] == [0, 1]
    clock.now = 11.0  # after the cool-down it is tried again, like a server that failed
    assert [healthy for _, _, healthy in balanced.load()] == [True, True]


def test_balanced_check_stops_when_no_server_can_be_reached():
    balanced = BalancedBackend([served_by(f"http://127.0.0.1:{port}/v1", refusing)
                                for port in (1, 2)])
    with pytest.raises(BackendError) as err:
        asyncio.run(balanced.check())
    assert err.value.message == (
        "cannot reach any of the 2 servers: http://127.0.0.1:1/v1 (connection refused), "
        "http://127.0.0.1:2/v1 (connection refused) (check that they are running and that "
        "--base-url / --base-url-file are right)")


def test_balanced_check_stops_on_an_error_no_other_server_can_fix():
    def other_model(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"data": [{"id": "other"}]})

    balanced = BalancedBackend([served_by("http://127.0.0.1:1/v1", refusing),
                                served_by("http://127.0.0.1:2/v1", listing),
                                served_by("http://127.0.0.1:3/v1", other_model)])
    with pytest.raises(BackendError, match=r"127.0.0.1:3/v1 does not serve model 'm'"):
        asyncio.run(balanced.check())


def test_backends_without_a_server_are_not_checked():
    backend = FakeBackend(ok)
    asyncio.run(preflight(backend))
    asyncio.run(preflight(BalancedBackend([backend, FakeBackend(ok)])))
    assert backend.requests == []


def test_a_stage_backend_is_checked_unless_told_not_to(serve):
    """One place for every stage: the failed check closes the backend and is one line."""
    class Unreachable(FakeBackend):
        checks = 0

        async def check(self) -> None:
            Unreachable.checks += 1
            raise BackendError("cannot reach http://127.0.0.1:1/v1: refused", retryable=True)

    backends: list[Unreachable] = []
    serve(lambda *args: backends.append(Unreachable(ok)) or backends[-1])
    spec = BackendSpec(kind="openai", model="m", base_urls=("http://127.0.0.1:1/v1",))
    with pytest.raises(UserError, match=r"^fake: cannot reach http://127.0.0.1:1/v1: refused$"):
        asyncio.run(connect(spec, Connection()))
    assert backends[0].closed
    unchecked = asyncio.run(connect(spec, Connection(check=False)))
    assert unchecked.backend is backends[1]
    assert Unreachable.checks == 1


def test_vllm_backend_batches_concurrent_requests_into_rounds(stand_in_vllm):
    backend = create_backend(BackendSpec(kind="vllm", model="Qwen/Qwen3-8B", engine=EngineOptions(
        tensor_parallel_size=2, dtype="bfloat16", max_model_len=8192,
        gpu_memory_utilization=0.8)))
    engine = stand_in_vllm.instances[0]
    assert (engine.model, engine.tensor_parallel_size, engine.dtype, engine.max_model_len,
            engine.gpu_memory_utilization) == ("Qwen/Qwen3-8B", 2, "bfloat16", 8192, 0.8)

    async def burst() -> list[Completion]:
        first = await asyncio.gather(*(backend.complete(Request(f"p{i}", enable_thinking=True))
                                       for i in range(40)))
        second = await backend.complete(Request("alone", max_tokens=9))
        await backend.aclose()
        return [*first, second]

    results = asyncio.run(burst())
    assert backend.rounds == [40, 1]
    assert engine.calls[0]["chat_template_kwargs"] == {"enable_thinking": True}
    assert engine.calls[1]["chat_template_kwargs"] is None
    assert results[0].text == "<think>stand-in</think>ok"
    assert results[0].finish_reason == "stop" and results[0].usage.completion_tokens == 1


def test_a_vllm_round_mixing_thinking_flags(stand_in_vllm):
    """One round of requests with enable_thinking True, False and unset: each flag's
    requests go to the engine in a chat call of their own, with their own
    chat_template_kwargs and sampling params, and every answer goes back to its request."""
    stand_in_vllm.responder = lambda prompt, params: (f"answer to {prompt}", "stop")
    backend = create_backend(BackendSpec(kind="vllm", model="Qwen/Qwen3-8B"))
    engine = stand_in_vllm.instances[0]
    flags = [True, None, False, True, False, None, None, True]
    requests = [Request(f"p{i}", max_tokens=100 + i, enable_thinking=flag)
                for i, flag in enumerate(flags)]

    async def round_of_all() -> list[Completion]:
        results = await asyncio.gather(*(backend.complete(r) for r in requests))
        await backend.aclose()
        return results

    results = asyncio.run(round_of_all())
    assert backend.rounds == [len(requests)]
    assert [r.text for r in results] == [f"answer to p{i}" for i in range(len(requests))]
    assert len(engine.calls) == 3
    sent = {}
    for call in engine.calls:
        assert call["method"] == "chat"
        kwargs = call["chat_template_kwargs"]
        flag = None if kwargs is None else kwargs["enable_thinking"]
        assert kwargs is None or kwargs == {"enable_thinking": flag}
        assert flag not in sent
        sent[flag] = (call["prompts"], [p.max_tokens for p in call["sampling_params"]])
    for flag in (True, False, None):
        numbers = [i for i, f in enumerate(flags) if f is flag]
        assert sent[flag] == ([f"p{i}" for i in numbers], [100 + i for i in numbers])


def test_reason_on_vllm_parses_traces_from_text(tmp_path, stand_in_vllm):
    stand_in_vllm.responder = lambda prompt, params: (
        "Let me count: two plus two.\n</think>\n\n4", "stop")
    source = tmp_path / "q.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"What is 2+2? ({i})", "output": "4"})
                              + "\n" for i in range(12)))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.app, [
        "reason", str(source), "-o", str(out), "--backend", "vllm", "--model", "r1-distill",
        "--reference-field", "output", "--api", "completions"])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (out / "reasoning.jsonl").read_text().splitlines()]
    assert len(records) == 12
    assert records[0]["reasoning"] == "Let me count: two plus two." and records[0]["answer"] == "4"
    engine = stand_in_vllm.instances[0]
    assert [call["method"] for call in engine.calls] == ["generate"]
    assert len(engine.calls[0]["prompts"]) == 12


def test_one_engine_serves_every_stage_of_a_run(tmp_path, seed_file, stand_in_vllm):
    texts = iter(distinct_texts(400, seed=5))

    def respond(prompt: str, params) -> tuple[str, str]:
        if prompt.endswith("Is it classification?"):
            return "No", "stop"
        if prompt.startswith("You are writing worked examples"):
            return "Example 1\nInput: 2, 3\nOutput: 5\n", "stop"
        return "\n".join(f"Task {9 + i}: {next(texts)}" for i in range(4)), "stop"

    stand_in_vllm.responder = respond
    out = tmp_path / "run"
    result = CliRunner().invoke(cli.app, [
        "run", "--seeds", str(seed_file), "-o", str(out), "-n", "8", "--backend", "vllm",
        "--model", "Qwen/Qwen2.5-7B-Instruct", "--concurrency", "16"])
    assert result.exit_code == 0, result.output
    assert len(stand_in_vllm.instances) == 1
    assert len((out / "instances.jsonl").read_text().splitlines()) == 8
    methods = [call["method"] for call in stand_in_vllm.instances[0].calls]
    assert set(methods) == {"chat"}
    sizes = [len(call["prompts"]) for call in stand_in_vllm.instances[0].calls]
    # generate: its slow start, whose 4 answers of 4 tasks cover -n 8, so no round of
    # --concurrency prompts follows
    assert sizes[0] == SLOW_START
    assert sizes[-2:] == [8, 8]  # classify, then instances: every task in one round


def test_vllm_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)
    message = r"needs vLLM and a GPU: pip install 'selfinstruct\[vllm\]'"
    with pytest.raises(UserError, match=message):
        create_backend(BackendSpec(kind="vllm", model="m"))


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["Yes", "No"]}},
          "required": ["answer"], "additionalProperties": False}


def vllm_params(stand_in, request: Request) -> object:
    """The SamplingParams the stand-in engine got for ``request``."""
    seen = []

    def respond(prompt: str, params) -> tuple[str, str]:
        seen.append(params)
        return '{"answer": "No"}', "stop"

    stand_in.responder = respond
    backend = create_backend(BackendSpec(kind="vllm", model="m"))

    async def once() -> Completion:
        try:
            return await backend.complete(request)
        finally:
            await backend.aclose()

    assert asyncio.run(once()).text == '{"answer": "No"}'
    return seen[0]


def test_vllm_asks_for_the_schema_with_structured_outputs(stand_in_vllm):
    params = vllm_params(stand_in_vllm, Request("p", schema=SCHEMA))
    assert params.structured_outputs.json == SCHEMA
    assert params.guided_decoding is None
    plain = vllm_params(stand_in_vllm, Request("p"))
    assert plain.structured_outputs is None and plain.guided_decoding is None


def test_vllm_before_0_10_2_gets_guided_decoding(stand_in_vllm, monkeypatch):
    monkeypatch.delattr(stand_in_vllm.sampling_params, "StructuredOutputsParams")
    params = vllm_params(stand_in_vllm, Request("p", schema=SCHEMA))
    assert params.guided_decoding.json == SCHEMA
    assert params.structured_outputs is None


def test_vllm_without_structured_output_fails_with_what_to_do(stand_in_vllm, monkeypatch):
    monkeypatch.delattr(stand_in_vllm.sampling_params, "StructuredOutputsParams")
    monkeypatch.delattr(stand_in_vllm.sampling_params, "GuidedDecodingParams")
    backend = create_backend(BackendSpec(kind="vllm", model="m"))
    with pytest.raises(BackendError, match=r"no structured output .* --structured off"):
        asyncio.run(backend.complete(Request("p", schema=SCHEMA)))


class FakeLlama:
    """What LocalBackend uses of ``llama_cpp.Llama``; records each call's arguments."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls: list[dict] = []

    def create_chat_completion(self, messages, **kwargs):
        self.calls.append({"messages": messages, **kwargs})
        yield {"choices": [{"delta": {"content": self.answer}, "finish_reason": "stop"}]}

    def create_completion(self, prompt, **kwargs):
        self.calls.append({"prompt": prompt, **kwargs})
        yield {"choices": [{"text": self.answer, "finish_reason": "stop"}]}

    def tokenize(self, data: bytes) -> list[int]:
        return list(range(len(data.split())))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_local_backend_constrains_with_a_grammar_from_the_schema(api, monkeypatch):
    llama_cpp = pytest.importorskip("llama_cpp", reason="needs the local extra")
    from selfinstruct.llm import local

    fake = FakeLlama('{"answer": "Yes"}')
    monkeypatch.setattr(local, "_load_llama", lambda path, n_ctx, seed: fake)
    backend = local.LocalBackend(Path("model.gguf"), api=api)

    async def three() -> list[Completion]:
        return [await backend.complete(request) for request in
                (Request("p", schema=SCHEMA), Request("q", schema=SCHEMA), Request("r"))]

    assert [c.text for c in asyncio.run(three())] == ['{"answer": "Yes"}'] * 3
    grammar = fake.calls[0]["grammar"]
    assert isinstance(grammar, llama_cpp.LlamaGrammar)
    assert '"\\"Yes\\""' in grammar._grammar and "answer" in grammar._grammar
    assert fake.calls[1]["grammar"] is grammar  # converted once per schema
    assert "grammar" not in fake.calls[2]
