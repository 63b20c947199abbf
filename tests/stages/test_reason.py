"""Reasoning distillation: response shapes through the real openai client, trace
filters, reference answers, pass rates, resume, and export of traces."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.filters.traces import Trace, TraceSettings, check_trace
from selfinstruct.llm.base import Completion, Request
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.runs.inputs import PromptRecord
from selfinstruct.stages.export import TrainingExample, export_run, to_records
from selfinstruct.stages.per_record import StageSettings
from selfinstruct.stages.reason import ReasonSettings, reason_run
from selfinstruct.text.answers import as_number, last_boxed, matches_reference
from selfinstruct.text.thinking import Thought, split_thinking

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reasoning"
PROMPT = PromptRecord("q1", "What is 6 times 7?", "")


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def served(fixture: str, seen: list[dict], api: str = "chat") -> OpenAIBackend:
    body = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=body)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key="k", api=api,
                         max_retries=0, http_client=client)


def reason(backend, out: Path, prompts=(PROMPT,), options=None, traces=None):
    return asyncio.run(reason_run(list(prompts), out, backend, options or ReasonSettings(),
                                  traces or TraceSettings(), StageSettings(concurrency=2),
                                  asyncio.Event()))


@pytest.mark.parametrize(
    ("fixture", "api", "reasoning", "answer"),
    [
        ("vllm_deepseek_r1_reasoning_content.json", "chat", "We need 6 times 7. 6*7 = 42.",
         "The answer is \\boxed{42}."),
        ("vllm_qwen3_reasoning.json", "chat", "Six sevens: 7+7+7+7+7+7 = 42.", "42"),
        ("deepseek_api.json", "chat", "6 × 7 = 42, double-check: 42 / 7 = 6.", "42"),
        ("raw_think_content.json", "chat", "6*7 is 42.", "The product is 42."),
        ("missing_opening_tag.json", "chat", "Multiply: 6*7 = 42.", "42"),
        ("completions_think.json", "completions", "6 and 7 multiply to 42.", "\\boxed{42}"),
    ],
)
def test_every_response_shape_yields_the_trace(tmp_path, fixture, api, reasoning, answer):
    seen: list[dict] = []
    stats = reason(served(fixture, seen, api), tmp_path)
    records = read(tmp_path / "reasoning.jsonl")
    assert stats.done == 1 and not stats.rejected
    assert [(r["reasoning"], r["answer"]) for r in records] == [(reasoning, answer)]
    record = records[0]
    assert record["id"] == "q1" and record["sample"] == 0
    assert record["instruction"] == PROMPT.instruction
    assert record["model"] and record["finish_reason"] == "stop"
    assert record["usage"]["completion_tokens"] > 0
    assert "chat_template_kwargs" not in seen[0]


@pytest.mark.parametrize(
    ("fixture", "filter_name"),
    [("truncated.json", "truncated"), ("no_reasoning.json", "no_reasoning"),
     # cut while still thinking: content null, the trace so far in reasoning_content
     ("truncated_in_reasoning.json", "truncated")],
)
def test_bad_shapes_are_rejected_with_the_filter(tmp_path, fixture, filter_name):
    stats = reason(served(fixture, []), tmp_path)
    assert read(tmp_path / "reasoning.jsonl") == []
    rejected = read(tmp_path / "rejected.jsonl")
    assert [(r["stage"], r["filter"], r["id"]) for r in rejected] == [
        ("reason", filter_name, "q1")]
    assert stats.rejected == {filter_name: 1}
    # an answer the server gave, judged by the filters: not a failed request
    assert read(tmp_path / "failures.jsonl") == []
    assert stats.requests.failed == 0 and stats.requests.succeeded == 1


def test_a_trace_cut_while_thinking_keeps_what_the_model_wrote(tmp_path):
    reason(served("truncated_in_reasoning.json", []), tmp_path)
    [record] = read(tmp_path / "rejected.jsonl")
    assert record["reasoning"].startswith("Let me think about 6*7.")
    assert (record["answer"], record["finish_reason"]) == ("", "length")
    assert record["usage"]["completion_tokens"] == 180


@pytest.mark.parametrize("switch", [True, False])
def test_enable_thinking_is_sent_as_chat_template_kwargs(tmp_path, switch):
    seen: list[dict] = []
    reason(served("vllm_qwen3_reasoning.json", seen), tmp_path,
           options=ReasonSettings(enable_thinking=switch, max_tokens=777))
    assert seen[0]["chat_template_kwargs"] == {"enable_thinking": switch}
    assert seen[0]["max_tokens"] == 777


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("<think>a</think>b", None, Thought("a", "b")),
        ("  <think>\na\n</think>\n\nb ", None, Thought("a", "b")),
        ("a</think>b", None, Thought("a", "b")),
        ("<think>still thinking", None, Thought("still thinking", "", unclosed=True)),
        ("plain", None, Thought(None, "plain")),
        ("answer", "trace", Thought("trace", "answer")),
        ("<think></think>answer", "trace", Thought("trace", "answer")),
        ("<think>x</think>", None, Thought("x", "")),
    ],
)
def test_split_thinking(text, field, expected):
    assert split_thinking(text, field) == expected


@pytest.mark.parametrize(
    ("answer", "reference", "match"),
    [
        ("42", "42", True),
        ("The answer is 42.", "42", True),
        ("Answer: 1,000", "1000", True),
        ("1000.0", "1e3", True),
        ("so \\boxed{\\frac{1}{2}} it is", "0.5", True),
        ("\\boxed{3/4}", "\\boxed{0.75}", True),
        ("答案是：7", "7", True),
        ("Paris", "paris", True),
        ("43", "42", False),
        ("\\boxed{41} then 42", "42", False),
        ("", "42", False),
    ],
)
def test_matches_reference(answer, reference, match):
    assert matches_reference(answer, reference) is match


def test_boxed_and_numbers():
    assert last_boxed("\\boxed{1} and \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("\\boxed{unclosed") is None
    assert as_number("12,345.5") == as_number("12345.5")
    assert as_number("12,34") is None
    assert as_number("abc") is None


def trace(reasoning, answer="ok", finish="stop", unclosed=False):
    return Trace(Thought(reasoning, answer, unclosed), finish)


@pytest.mark.parametrize(
    ("item", "settings", "expected"),
    [
        (trace("r", finish="length"), TraceSettings(), "truncated"),
        (trace("r", "", unclosed=True), TraceSettings(), "unclosed_think"),
        (trace(None), TraceSettings(), "no_reasoning"),
        (trace("fine reasoning", "  "), TraceSettings(), "empty_answer"),
        (trace("we add one and one to get two " * 12), TraceSettings(), "degenerate_repetition"),
        (trace("First, compute the sum of the numbers."), TraceSettings(language="zh"),
         "wrong_language"),
        (trace("先计算两个数的和，然后再检查结果是否正确。"), TraceSettings(language="zh"), None),
        (trace("x" * 50), TraceSettings(max_reasoning_chars=40), "too_long"),
        (trace("A short and varied chain of thought that ends well."), TraceSettings(), None),
    ],
)
def test_trace_filters(item, settings, expected):
    verdict = check_trace(item, settings)
    assert (verdict[0] if verdict else None) == expected


GRAM = "one two three four five six seven eight nine ten"


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        # 8 repeats of a 10-gram, padded to the 90 tokens a 9th repeat would need
        (" ".join([GRAM] * 8 + ["a b c d e f g h i j"]), None),
        # 9 repeats, exactly 90 tokens
        (" ".join([GRAM] * 9),
         ("degenerate_repetition", f"the 10-gram {GRAM!r} repeats 9 times")),
    ],
)
def test_degenerate_repetition_boundary(reasoning, expected):
    """max_ngram_repeats (8) repeats are kept, one more is a loop."""
    assert check_trace(trace(reasoning), TraceSettings()) == expected


def test_samples_reference_pass_rates_and_resume(tmp_path):
    answers = {"q1": ["<think>t</think>42", "<think>t</think>41", "<think>t</think>\\boxed{42}"],
               "q2": ["<think>u</think>no idea"] * 3}
    calls: dict[str, int] = {}

    def script(request: Request, number: int) -> Completion:
        key = "q1" if "6 times 7" in request.prompt else "q2"
        calls[key] = calls.get(key, 0) + 1
        return Completion(text=answers[key][(calls[key] - 1) % 3], finish_reason="stop")

    prompts = [PromptRecord("q1", "What is 6 times 7?", "", "42"),
               PromptRecord("q2", "What is 5 plus 5?", "", "10")]
    options = ReasonSettings(samples=3)
    reason(FakeBackend(script), tmp_path, prompts, options)
    kept = read(tmp_path / "reasoning.jsonl")
    assert sorted((r["id"], r["answer"]) for r in kept) == [("q1", "42"), ("q1", "\\boxed{42}")]
    assert all(r["correct"] and r["reference"] == "42" for r in kept)
    rates = {r["id"]: r for r in read(tmp_path / "pass_rates.jsonl")}
    assert rates["q1"] == {"id": "q1", "samples": 3, "correct": 2, "pass_rate": 0.6667}
    assert rates["q2"]["pass_rate"] == 0.0
    wrong = [r for r in read(tmp_path / "rejected.jsonl") if r["filter"] == "wrong_answer"]
    assert len(wrong) == 4
    again = FakeBackend(script)
    reason(again, tmp_path, prompts, ReasonSettings(samples=4))
    assert len(again.requests) == 2
    assert {r["id"]: r["samples"] for r in read(tmp_path / "pass_rates.jsonl")} == {
        "q1": 4, "q2": 4}


def test_export_reasoning_inline_and_field(tmp_path):
    examples = [TrainingExample("Q?", "", "42", "think hard")]
    inline = to_records(examples, "messages")[0]["messages"][1]
    assert inline == {"role": "assistant", "content": "<think>\nthink hard\n</think>\n\n42"}
    field = to_records(examples, "messages", "field")[0]["messages"][1]
    assert field == {"role": "assistant", "content": "42", "reasoning_content": "think hard"}
    assert to_records(examples, "alpaca", "field")[0] == {
        "instruction": "Q?", "input": "", "output": "42", "reasoning": "think hard"}
    reason(served("deepseek_api.json", []), tmp_path)
    result = export_run(tmp_path, "sharegpt")
    record = json.loads(result.path.read_text(encoding="utf-8"))[0]
    assert record["conversations"][1]["value"].startswith("<think>\n6 × 7 = 42")
    assert record["conversations"][1]["value"].endswith("</think>\n\n42")


def test_reason_cli_on_an_alpaca_file(tmp_path, serve):
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps([
        {"instruction": "What is 6 times 7?", "input": "", "output": "42"},
        {"instruction": "Translate to French", "input": "cat", "output": "chat"},
    ]))
    backend = FakeBackend(lambda r, n: Completion(text="<think>ok so</think>fine",
                                                  finish_reason="stop"))
    serve(backend)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.app, ["reason", str(source), "-o", str(out),
                                          "--samples", "2", "--base-url", "http://x/v1",
                                          "--model", "r1", "--api-key", "sk-secret-xyz"])
    assert result.exit_code == 0, result.output
    assert "reason: 4 traces in" in " ".join(result.output.split())
    assert backend.requests[0].max_tokens == 8192
    assert {r.prompt for r in backend.requests} == {"What is 6 times 7?",
                                                    "Translate to French\n\ncat"}
    config = json.loads((out / "config.json").read_text())["reason"]
    assert config["samples"] == 2 and "sk-secret-xyz" not in json.dumps(config)


def test_reason_cli_errors(tmp_path):
    result = CliRunner().invoke(cli.app, ["reason", str(tmp_path / "x.jsonl"), "-o",
                                          str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "x.jsonl: no such file" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "hi"}\n')
    result = CliRunner().invoke(cli.app, ["reason", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.jsonl:1: no text in field 'instruction'" in " ".join(result.output.split())
    result = CliRunner().invoke(cli.app, ["reason", str(bad)])
    assert "-o OUT_DIR is needed when INPUT is a file" in result.output


@pytest.mark.parametrize(
    ("spec", "ids"),
    [("0/2", ["row0", "row2", "row4"]), ("1/2", ["row1", "row3"]),
     (None, ["row0", "row1", "row2", "row3", "row4"])],
)
def test_reason_shards_split_the_prompts(tmp_path, serve, spec, ids):
    source = tmp_path / "q.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"Question {i}?"}) + "\n"
                              for i in range(5)))
    backend = FakeBackend(lambda r, n: Completion(text="<think>t</think>a", finish_reason="stop"))
    serve(backend)
    out = tmp_path / "out"
    args = ["reason", str(source), "-o", str(out), "--base-url", "http://x/v1", "--model", "m"]
    result = CliRunner().invoke(cli.app, [*args, *(["--shard", spec] if spec else [])])
    assert result.exit_code == 0, result.output
    assert sorted(r["id"] for r in read(out / "reasoning.jsonl")) == ids


@pytest.mark.parametrize("spec", ["2/2", "1", "a/b", "-1/3"])
def test_bad_shard(tmp_path, spec):
    source = tmp_path / "q.jsonl"
    source.write_text(json.dumps({"instruction": "Q?"}) + "\n")
    result = CliRunner().invoke(cli.app, ["reason", str(source), "-o", str(tmp_path / "o"),
                                          "--shard", spec])
    assert result.exit_code == 2
    assert "write i/n with 0 <= i < n" in result.output


def test_export_cli_think_field_and_data_choice(tmp_path):
    reason(served("deepseek_api.json", []), tmp_path)
    result = CliRunner().invoke(cli.app, ["export", str(tmp_path), "-f", "messages",
                                          "--think", "field"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "export" / "messages.jsonl").read_text().splitlines()[0])
    assert record["messages"][1] == {"role": "assistant", "content": "42",
                                     "reasoning_content": "6 × 7 = 42, double-check: 42 / 7 = 6."}
    result = CliRunner().invoke(cli.app, ["export", str(tmp_path), "--data", "instances"])
    assert result.exit_code == 2
    assert "not a run directory" in result.output


def test_decide_trace_is_a_pure_decision_on_one_answer():
    """answer in → record and rejection out, no files, no backend."""
    from selfinstruct.filters.traces import TraceSettings
    from selfinstruct.llm.base import Usage
    from selfinstruct.runs.inputs import PromptRecord
    from selfinstruct.stages.reason import decide_trace

    prompt = PromptRecord(id="q1", instruction="What is 6 times 7?", input="", reference="42")
    right = Completion(text="<think>six sevens are 42</think>42", finish_reason="stop",
                       usage=Usage(10, 5))
    kept = decide_trace(prompt, 1, right, TraceSettings(), "m")
    assert kept.rejection is None and not kept.without_reasoning
    assert (kept.record["reasoning"], kept.record["answer"]) == ("six sevens are 42", "42")
    assert kept.record["correct"] is True and kept.record["sample"] == 1
    wrong = decide_trace(prompt, 0, Completion(text="<think>hm</think>41", finish_reason="stop"),
                         TraceSettings(), "m")
    assert wrong.rejection is not None and wrong.rejection[0] == "wrong_answer"
    bare = decide_trace(prompt, 0, Completion(text="42", finish_reason="stop"),
                        TraceSettings(), "m")
    assert bare.without_reasoning and bare.rejection is not None
    assert bare.rejection[0] == "no_reasoning"


def test_reason_takes_every_teacher_flag_distill_has(tmp_path):
    """One definition of the teacher's flags: reason sends the system prompt, the stop
    strings, the body fields and DashScope's top-level switch as distill does."""
    from selfinstruct.llm import use_backend

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"instruction": "What is 2 + 2?"}) + "\n", encoding="utf-8")
    system = tmp_path / "system.txt"
    system.write_text("Think step by step.\n", encoding="utf-8")
    fake = FakeBackend(lambda request, number: "<think>two and two</think>4")
    with use_backend(fake):
        result = CliRunner().invoke(cli.app, [
            "reason", str(prompts), "-o", str(tmp_path / "out"),
            "--base-url", "https://dashscope.aliyuncs.com/compatible-mode/v1", "--model", "qwen",
            "--system-file", str(system), "--stop", "####", "--extra-body", '{"top_k": 20}',
            "--thinking", "on", "--thinking-budget", "256"])
    assert result.exit_code == 0, result.output
    [request] = fake.requests
    assert (request.system, request.stop) == ("Think step by step.", ("####",))
    assert request.extra_body == {"enable_thinking": True, "thinking_budget": 256, "top_k": 20}
    [record] = read(tmp_path / "out" / "reasoning.jsonl")
    assert (record["reasoning"], record["answer"]) == ("two and two", "4")
    saved = json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))
    assert saved["reason"]["system"] == "Think step by step."
