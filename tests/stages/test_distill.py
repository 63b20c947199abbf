"""distill end to end on the fake backend: what is sent for each row (and how each backend
sends it), what is kept and rejected, resume, and the export LLaMA-Factory loads."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import httpx2
import openpyxl
import pytest
from typer.testing import CliRunner

from selfinstruct.cli import commands as cli
from selfinstruct.llm import use_backend
from selfinstruct.llm.base import BackendError, Completion, Request
from selfinstruct.llm.fake import FakeBackend, completion
from selfinstruct.llm.local import LocalBackend
from selfinstruct.llm.openai import OpenAIBackend
from selfinstruct.stages.export import TrainingExample, dataset_info_entry, to_records

SYSTEM = "你是铁路客服，只根据给定的车次信息回答。"
TEMPLATE = "根据给定的车次信息回答用户的问题\n# 车次信息\n{row}\n# 问题列表\n{questions}\n"
QUESTIONS = "{车次}号车次应该从哪个检票口检票?\n\n{车次}号车次几点到?\n"


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def timetable(tmp_path):
    """An XLSX of three trains (an empty cell, times as Excel times), the template, the
    question lines and the system prompt, as the article's user had them."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["车次", "始发站", "到点", "检票口"])
    sheet.append(["G101", "北京南", dt.time(8, 15), None])
    sheet.append(["G103", "上海虹桥", dt.time(9, 30), "A3"])
    sheet.append(["G105", None, dt.time(10, 0), "B1"])
    book.save(tmp_path / "rows.xlsx")
    (tmp_path / "t.txt").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "q.txt").write_text(QUESTIONS, encoding="utf-8")
    (tmp_path / "s.txt").write_text(SYSTEM + "\n", encoding="utf-8")
    return tmp_path


def answer(request: Request, number: int) -> Completion:
    """G101: a fenced list after a trace; G103: prose; G105: one item lacks its answer."""
    if '"G101"' in request.prompt:
        return completion('<think>看信息。</think>\n```json\n'
                          '[{"q": "G101号车次应该从哪个检票口检票?", "a": "无数据"}, '
                          '{"q": "G101号车次几点到?", "a": "08:15"}]\n```')
    if '"G103"' in request.prompt:
        return completion("抱歉，我无法回答这些问题。")
    return completion('[{"q": "G105号车次应该从哪个检票口检票?", "a": "B1"}, {"q": "几点到?"}]')


def distill_args(d: Path, *extra: str) -> list[str]:
    return ["distill", str(d / "rows.xlsx"), "--user-template", str(d / "t.txt"),
            "--questions", str(d / "q.txt"), "--system-file", str(d / "s.txt"),
            "--fill-na", "无数据", "--parse", "json", "--map", "instruction=q",
            "--map", "output=a", "-o", str(d / "out"), "--base-url", "http://127.0.0.1:9/v1",
            "--model", "teacher", "--concurrency", "4", *extra]


def invoke(backend, *args: str):
    with use_backend(backend):
        return CliRunner().invoke(cli.app, list(args))


def test_the_timetable_job_from_the_issue(timetable):
    fake = FakeBackend(answer)
    result = invoke(fake, *distill_args(timetable))
    assert result.exit_code == 0, result.output
    out = timetable / "out"
    # each row sent once, with the system prompt and the filled template
    assert len(fake.requests) == 3
    first = next(r for r in fake.requests if '"G101"' in r.prompt)
    assert first.system == SYSTEM
    assert first.prompt == (
        "根据给定的车次信息回答用户的问题\n# 车次信息\n"
        '{"车次": "G101", "始发站": "北京南", "到点": "08:15", "检票口": "无数据"}\n'
        "# 问题列表\n1. G101号车次应该从哪个检票口检票?\n2. G101号车次几点到?\n")
    assert (first.max_tokens, first.temperature, first.top_p, first.stop) == (2048, None,
                                                                              None, ())
    # every parseable answer: one record per list item, with the row's columns
    kept = read(out / "distilled.jsonl")
    assert [(r["id"], r["item"], r["sample"], r["instruction"], r["output"]) for r in kept] == [
        ("row0", 0, 0, "G101号车次应该从哪个检票口检票?", "无数据"),
        ("row0", 1, 0, "G101号车次几点到?", "08:15"),
        ("row2", 0, 0, "G105号车次应该从哪个检票口检票?", "B1"),
    ]
    record = kept[0]
    assert {k: record[k] for k in ("车次", "始发站", "到点", "检票口")} == {
        "车次": "G101", "始发站": "北京南", "到点": "08:15", "检票口": "无数据"}
    assert record["prompt"] == first.prompt and record["reasoning"] == "看信息。"
    assert record["response"].startswith("<think>看信息。</think>")
    assert (record["model"], record["finish_reason"]) == ("fake-model", "stop")
    assert record["usage"]["prompt_tokens"] == 100
    # each unparseable answer, with its raw text
    rejected = read(out / "rejected.jsonl")
    assert [(r["id"], r["filter"], r.get("item")) for r in rejected] == [
        ("row1", "unparseable", None), ("row2", "missing_key", 1)]
    assert rejected[0]["response"] == "抱歉，我无法回答这些问题。"
    stats = json.loads((out / "stats.json").read_text())["distill"]
    assert (stats["total"], stats["done"], stats["seen"]["records"]) == (3, 3, 3)
    assert stats["rejected"] == {"unparseable": 1, "missing_key": 1}
    config = json.loads((out / "config.json").read_text())["distill"]
    assert config["system"] == SYSTEM and config["renames"] == {"instruction": "q",
                                                                "output": "a"}
    flat = " ".join(result.output.split())
    assert "distill: 3 records written to" in flat and "unparseable 1" in flat
    # resuming asks for nothing: every row has its answer recorded, kept or rejected
    again = FakeBackend(answer)
    assert invoke(again, *distill_args(timetable)).exit_code == 0
    assert again.requests == [] and len(read(out / "distilled.jsonl")) == 3
    # export: instruction/output from q/a, the system prompt as LLaMA-Factory's column
    exported = CliRunner().invoke(cli.app, ["export", str(out), "--format", "alpaca"])
    assert exported.exit_code == 0, exported.output
    records = json.loads((out / "export" / "alpaca.json").read_text(encoding="utf-8"))
    assert records[1] == {"instruction": "G101号车次几点到?", "input": "", "output": "08:15",
                          "system": SYSTEM}
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert info["out_alpaca"]["columns"] == {"prompt": "instruction", "query": "input",
                                             "response": "output", "system": "system"}


def test_dry_run_shows_the_first_prompt_and_the_count_and_sends_nothing(timetable):
    fake = FakeBackend(answer)
    result = invoke(fake, *distill_args(timetable, "--dry-run", "--stop", "####",
                                        "--extra-body", '{"top_k": 20}', "--samples", "2"))
    assert result.exit_code == 0, result.output
    assert fake.requests == [] and not (timetable / "out").exists()
    assert "distill: 6 requests" in result.output
    assert SYSTEM in result.output and "1. G101号车次应该从哪个检票口检票?" in result.output
    assert "stop ['####'], extra body {'top_k': 20}" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("t.txt", "车次 {车号}\n",
      "{file}:1: {车号} is not a column of {rows} (columns: 车次, 始发站, 到点, 检票口)"),
     ("q.txt", "{车次}?\n{检票}?\n", "{file}:2: {检票} is not a column of {rows} (columns: ")],
)
def test_a_placeholder_that_is_not_a_column_stops_before_any_request(timetable, name, text,
                                                                      message):
    (timetable / name).write_text(text, encoding="utf-8")
    fake = FakeBackend(answer)
    result = invoke(fake, *distill_args(timetable))
    assert result.exit_code == 2
    expected = message.replace("{file}", str(timetable / name)).replace(
        "{rows}", str(timetable / "rows.xlsx"))
    assert f"Error: {expected}" in result.output
    assert "Traceback" not in result.output and fake.requests == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--system", "x"], "give the system prompt with --system or --system-file, not both"),
     (["--extra-body", "{oops"], "--extra-body is not valid JSON"),
     (["--extra-body", "[1]"], "--extra-body must be a JSON object"),
     (["--parse", "text"], "--map renames JSON keys; it needs --parse json"),
     (["--thinking-budget", "100"], "--thinking-budget is sent as DashScope's top-level"),
     (["--id-field", "train"], "--id-field 'train' is not a column"),
     (["--samples", "0"], "--samples must be at least 1")],
)
def test_flag_errors_are_one_line(timetable, extra, message):
    result = invoke(FakeBackend(answer), *distill_args(timetable, *extra))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_resume_with_another_template_is_refused(timetable):
    assert invoke(FakeBackend(answer), *distill_args(timetable, "--limit", "1")).exit_code == 0
    (timetable / "t.txt").write_text(TEMPLATE + "请用JSON回答。\n{questions}", encoding="utf-8")
    result = invoke(FakeBackend(answer), *distill_args(timetable))
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "is not the file this run was started with: line 6 is new: '请用JSON回答。'" in flat
    forced = FakeBackend(answer)
    assert invoke(forced, *distill_args(timetable, "--force")).exit_code == 0
    assert len(forced.requests) == 2


def rows_csv(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("question,answer\n" + "".join(f"What is {i} plus {i}?,{2 * i}\n"
                                                  for i in range(n)))
    (tmp_path / "t.txt").write_text("{question}")
    return path


def simple_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["distill", str(tmp_path / "rows.csv"), "--user-template", str(tmp_path / "t.txt"),
            "-o", str(tmp_path / "out"), "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
            *extra]


@pytest.mark.parametrize(
    ("extra", "ids"),
    [(["--limit", "2"], ["row0", "row1"]),
     (["--sample", "2", "--seed", "3"], None),
     (["--shard", "1/2"], ["row1", "row3"]),
     (["--limit", "4", "--shard", "0/2"], ["row0", "row2"])],
)
def test_row_selection_keeps_file_positions_as_ids(tmp_path, extra, ids):
    rows_csv(tmp_path)
    fake = FakeBackend(lambda r, n: completion("fine"))
    assert invoke(fake, *simple_args(tmp_path, *extra)).exit_code == 0
    got = sorted(r["id"] for r in read(tmp_path / "out" / "distilled.jsonl"))
    if ids is None:  # a sample: the same two rows again with the same seed
        again = tmp_path / "again"
        again.mkdir()
        rows_csv(again)
        invoke(FakeBackend(lambda r, n: completion("fine")), *simple_args(again, *extra))
        assert len(got) == 2 and got == sorted(
            r["id"] for r in read(again / "out" / "distilled.jsonl"))
    else:
        assert got == ids


def test_samples_separator_and_columns_that_clash_with_our_fields(tmp_path):
    rows_csv(tmp_path, 2)
    fake = FakeBackend(lambda r, n: completion(f"label{n} #### because"))
    result = invoke(fake, *simple_args(tmp_path, "--samples", "2", "--parse", "separator",
                                       "--temperature", "0.3"))
    assert result.exit_code == 0, result.output
    kept = read(tmp_path / "out" / "distilled.jsonl")
    assert sorted((r["id"], r["sample"]) for r in kept) == [
        ("row0", 0), ("row0", 1), ("row1", 0), ("row1", 1)]
    # the input's own "answer" column is kept beside the parsed answer
    assert {r["row_answer"] for r in kept if r["id"] == "row1"} == {"2"}
    assert all(r["answer"].startswith("label") and r["rationale"] == "because" for r in kept)
    assert {r.temperature for r in fake.requests} == {0.3}


def test_a_resume_with_samples_asks_exactly_the_missing_row_samples(tmp_path):
    rows_csv(tmp_path, 3)
    out = tmp_path / "out"
    assert invoke(FakeBackend(lambda r, n: completion("fine")),
                  *simple_args(tmp_path, "--samples", "2")).exit_code == 0
    # As a run cut short leaves it: row0 has only sample 1, row1 only a rejected sample 1
    # (an answer recorded either way is done), row2 both; a rejection by another stage
    # in the same file does not make row0's sample 0 done.
    done = {("row0", 1), ("row2", 0), ("row2", 1)}
    kept = [r for r in read(out / "distilled.jsonl") if (r["id"], r["sample"]) in done]
    (out / "distilled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (out / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"stage": "distill", "filter": "empty", "id": "row1", "sample": 1},
        {"stage": "score", "filter": "unparseable_verdict", "id": "row0", "sample": 0}]))
    resumed = FakeBackend(lambda r, n: completion("fine"))
    assert invoke(resumed, *simple_args(tmp_path, "--samples", "2")).exit_code == 0
    assert sorted(r.prompt for r in resumed.requests) == ["What is 0 plus 0?",
                                                          "What is 1 plus 1?"]
    assert sorted((r["id"], r["sample"]) for r in read(out / "distilled.jsonl")) == [
        ("row0", 0), ("row0", 1), ("row1", 0), ("row2", 0), ("row2", 1)]


def test_resume_with_another_fill_na_is_refused(tmp_path):
    (tmp_path / "rows.csv").write_text("question,answer\nWhat is 1 plus 1?,\n")
    (tmp_path / "t.txt").write_text("{question} {answer}")
    fake = FakeBackend(lambda r, n: completion("fine"))
    assert invoke(fake, *simple_args(tmp_path, "--fill-na", "N/A")).exit_code == 0
    assert fake.requests[0].prompt == "What is 1 plus 1? N/A"
    result = invoke(FakeBackend(), *simple_args(tmp_path))
    assert result.exit_code == 2
    assert "this run was started with fill_na='N/A', now fill_na=None" in " ".join(
        result.output.split())


def test_an_id_column_is_the_id_and_must_be_unique(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"id": 7, "q": "a"}\n{"id": 7, "q": "b"}\n')
    (tmp_path / "t.txt").write_text("{q}")
    args = ["distill", str(tmp_path / "rows.jsonl"), "--user-template", str(tmp_path / "t.txt"),
            "-o", str(tmp_path / "out")]
    result = invoke(FakeBackend(), *args)
    assert result.exit_code == 2
    assert "rows.jsonl:2: duplicate id '7' (also at" in " ".join(result.output.split())
    (tmp_path / "rows.jsonl").write_text('{"id": 7, "q": "a"}\n')
    fake = FakeBackend()
    fake.enqueue("ok")
    assert invoke(fake, *args).exit_code == 0
    [record] = read(tmp_path / "out" / "distilled.jsonl")
    assert (record["id"], record["q"], record["answer"]) == ("7", "a", "ok")


def test_a_gbk_csv_from_excel_is_read_as_the_sheet_showed_it(tmp_path):
    (tmp_path / "rows.csv").write_bytes("车次,到点\nG101,08:15\n".encode("gbk"))
    (tmp_path / "t.txt").write_text("{车次}几点到? {到点}", encoding="utf-8")
    fake = FakeBackend(lambda r, n: completion("好"))
    result = invoke(fake, *simple_args(tmp_path))
    assert result.exit_code == 0, result.output
    assert [r.prompt for r in fake.requests] == ["G101几点到? 08:15"]
    assert "read as gb18030 (it is not UTF-8)" in " ".join(result.output.split())
    named = FakeBackend(lambda r, n: completion("好"))
    assert invoke(named, *simple_args(tmp_path, "-o", str(tmp_path / "named"),
                                      "--encoding", "gbk")).exit_code == 0
    assert [r.prompt for r in named.requests] == ["G101几点到? 08:15"]
    # a named encoding wins, even a wrong one: the columns are not what the template names
    wrong = invoke(FakeBackend(), *simple_args(tmp_path, "--encoding", "big5"))
    assert wrong.exit_code == 2 and "{车次} is not a column of" in wrong.output
    # the encoding decides the text: a resume with another one is refused
    again = invoke(FakeBackend(), *simple_args(tmp_path, "-o", str(tmp_path / "named"),
                                               "--encoding", "gb18030"))
    assert again.exit_code == 2
    assert "started with encoding='gbk', now encoding='gb18030'" in " ".join(
        again.output.split())


def test_error_cells_and_uncalculated_formulas_warn_or_stop_with_strict(timetable):
    book = openpyxl.load_workbook(timetable / "rows.xlsx")
    sheet = book.active
    sheet["C2"].number_format = "hh:mm"
    sheet["C2"].value = dt.datetime(2024, 5, 1, 8, 15)
    sheet["D3"] = "#DIV/0!"
    sheet["D4"] = "=B4&C4"
    book.save(timetable / "rows.xlsx")
    strict = FakeBackend(answer)
    stopped = invoke(strict, *distill_args(timetable, "--strict"))
    assert stopped.exit_code == 2
    flat = " ".join(stopped.output.split())
    assert "(sheet Sheet): 2 cells with an error or a formula without a saved value: D3 " \
           "#DIV/0!, D4 =B4&C4 (a formula never calculated)" in flat
    assert strict.requests == [] and "Traceback" not in stopped.output
    fake = FakeBackend(answer)
    result = invoke(fake, *distill_args(timetable))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "Warning: " in flat and "D3 #DIV/0!, D4 =B4&C4 (a formula never calculated)" in flat
    first = next(r for r in fake.requests if '"G101"' in r.prompt)
    assert '"到点": "08:15"' in first.prompt  # the time the cell shows, not its date
    assert '"检票口": "#DIV/0!"' in next(r.prompt for r in fake.requests if '"G103"' in r.prompt)


# ---- what each backend sends ------------------------------------------------------------

def served(seen: list[dict], base_url: str = "http://127.0.0.1:9/v1") -> OpenAIBackend:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":  # the server check before the first request
            return httpx2.Response(404)
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json={
            "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": "ok"}}]})

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIBackend(base_url=base_url, model="m", api_key="k", max_retries=0,
                         http_client=client)


@pytest.mark.parametrize(
    ("url", "extra", "fields", "suffix"),
    [("http://127.0.0.1:8000/v1", ["--thinking", "off"],
      {"chat_template_kwargs": {"enable_thinking": False}}, ""),
     ("https://dashscope.aliyuncs.com/compatible-mode/v1",
      ["--thinking", "on", "--thinking-budget", "512"],
      {"enable_thinking": True, "thinking_budget": 512}, ""),
     ("https://api.siliconflow.cn/v1", ["--thinking", "off"], {"enable_thinking": False}, ""),
     ("http://127.0.0.1:8000/v1", ["--thinking", "off", "--thinking-style", "prompt"], {},
      " /no_think"),
     ("http://127.0.0.1:8000/v1", [], {}, "")],
)
def test_the_openai_backend_sends_system_stop_extra_body_and_the_thinking_switch(
        tmp_path, url, extra, fields, suffix):
    rows_csv(tmp_path, 1)
    seen: list[dict] = []
    args = [*simple_args(tmp_path, "--system", "Be brief.", "--stop", "####", "--stop", "\n\n",
                         "--extra-body", '{"repetition_penalty": 1.05, "top_k": 20}',
                         "--max-tokens", "64", *extra)]
    args[args.index("--base-url") + 1] = url
    result = invoke(served(seen, url), *args)
    assert result.exit_code == 0, result.output
    [body] = seen
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is 0 plus 0?" + suffix}]
    assert body["stop"] == ["####", "\n\n"] and body["max_tokens"] == 64
    assert (body["repetition_penalty"], body["top_k"]) == (1.05, 20)
    assert "temperature" not in body and "top_p" not in body
    thinking = {k: body[k] for k in ("chat_template_kwargs", "enable_thinking",
                                     "thinking_budget") if k in body}
    assert thinking == fields
    # the record keeps the filled template; a /no_think switch is not part of it
    [record] = read(tmp_path / "out" / "distilled.jsonl")
    assert record["prompt"] == "What is 0 plus 0?"


def test_completions_api_puts_the_system_prompt_in_front(tmp_path):
    seen: list[dict] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":  # the server check before the first request
            return httpx2.Response(404)
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json={"choices": [{"text": "ok", "finish_reason": "stop"}]})

    backend = OpenAIBackend(base_url="http://x/v1", model="m", api_key=None, api="completions",
                            max_retries=0,
                            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    asyncio.run(backend.complete(Request("Q", system="S", temperature=None,
                                         extra_body={"min_p": 0.1})))
    assert seen[0]["prompt"] == "S\n\nQ" and seen[0]["min_p"] == 0.1
    assert "temperature" not in seen[0]


def test_the_vllm_engine_gets_system_extra_body_and_template_kwargs(stand_in_vllm, monkeypatch):
    from dataclasses import dataclass

    @dataclass
    class Params(stand_in_vllm.SamplingParams):  # the fields of a real SamplingParams
        top_k: int = -1
        repetition_penalty: float = 1.0

    monkeypatch.setattr(stand_in_vllm, "SamplingParams", Params)
    from selfinstruct.llm import BackendSpec, create_backend

    backend = create_backend(BackendSpec(kind="vllm", model="Qwen/Qwen3-8B"))
    engine = stand_in_vllm.instances[0]
    conversations: list = []
    chat = engine.chat
    monkeypatch.setattr(engine, "chat", lambda messages, params, **kw: (
        conversations.extend(messages), chat(messages, params, **kw))[1])
    request = Request("Q", system="S", stop=("####",), temperature=None, top_p=None,
                      enable_thinking=False,
                      extra_body={"top_k": 20, "repetition_penalty": 1.05,
                                  "chat_template_kwargs": {"custom": 1}})

    async def send(*requests: Request) -> list[Completion | BaseException]:
        results = await asyncio.gather(*(backend.complete(r) for r in requests),
                                       return_exceptions=True)
        await backend.aclose()
        return results

    [result] = asyncio.run(send(request))
    assert result.text == "<think>stand-in</think>ok"
    assert conversations == [[{"role": "system", "content": "S"},
                              {"role": "user", "content": "Q"}]]
    [call] = engine.calls
    assert call["chat_template_kwargs"] == {"enable_thinking": False, "custom": 1}
    [params] = call["sampling_params"]
    assert (params.top_k, params.repetition_penalty, params.stop) == (20, 1.05, ["####"])
    assert (params.temperature, params.top_p) == (1.0, 1.0)  # SamplingParams' own defaults
    backend = create_backend(BackendSpec(kind="vllm", model="Qwen/Qwen3-8B"))
    [error] = asyncio.run(send(Request("Q", extra_body={"no_such_field": 1})))
    assert isinstance(error, BackendError) and not error.retryable
    assert "SamplingParams refused the extra body ['no_such_field']" in error.message


class RecordingLlama:
    """Enough of llama_cpp.Llama for LocalBackend: records each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def create_chat_completion(self, **kwargs):
        self.calls.append(kwargs)
        yield {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}

    def tokenize(self, data: bytes) -> list[int]:
        return list(range(len(data.split())))


def test_the_embedded_model_gets_system_and_extra_body_in_llama_cpp_names():
    backend = LocalBackend.__new__(LocalBackend)
    llama = RecordingLlama()
    backend.name, backend.api, backend._llama = "local:x", "chat", llama
    import threading

    async def send() -> Completion:
        backend._lock = asyncio.Lock()
        backend._abort = threading.Event()
        return await backend.complete(Request(
            "Q", system="S", temperature=None, top_p=None, stop=("####",),
            extra_body={"repetition_penalty": 1.1, "top_k": 20,
                        "chat_template_kwargs": {"enable_thinking": False}}))

    assert asyncio.run(send()).text == "ok"
    [call] = llama.calls
    assert call["messages"] == [{"role": "system", "content": "S"},
                                {"role": "user", "content": "Q"}]
    assert (call["repeat_penalty"], call["top_k"], call["stop"]) == (1.1, 20, ["####"])
    assert "temperature" not in call and "chat_template_kwargs" not in call


# ---- export -----------------------------------------------------------------------------

def lf_turns(record: dict, entry: dict) -> tuple[str, list[tuple[str, str]]]:
    """(system, [(role, content)…]) as LLaMA-Factory's dataset converters read a record
    through its dataset_info.json entry: Alpaca joins prompt and query with one newline
    and takes the system column; ShareGPT-style files take a first turn with the system
    tag as the system prompt, then alternate user and assistant tags. (Our statement of
    the rules of LLaMA-Factory's data/converter.py and data/parser.py; the real ones, of
    llamafactory 0.9.5, read our alpaca, sharegpt and messages exports of a distill run
    with the same system prompt and turns in a one-off run outside the suite.)"""
    columns = entry["columns"]
    if entry.get("formatting", "alpaca") == "alpaca":
        query = [record[columns[k]] for k in ("prompt", "query")
                 if k in columns and record[columns[k]]]
        system = record[columns["system"]] if "system" in columns else ""
        return system, [("user", "\n".join(query)), ("assistant", record[columns["response"]])]
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
            "assistant_tag": "gpt", "system_tag": "system", **entry.get("tags", {})}
    turns = record[columns["messages"]]
    system = ""
    if turns and turns[0][tags["role_tag"]] == tags["system_tag"]:
        system, turns = turns[0][tags["content_tag"]], turns[1:]
    expected = (tags["user_tag"], tags["assistant_tag"])
    assert [t[tags["role_tag"]] for t in turns] == [expected[i % 2] for i in range(len(turns))]
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant"}
    return system, [(roles[t[tags["role_tag"]]], t[tags["content_tag"]]) for t in turns]


@pytest.mark.parametrize("system", [None, "Answer briefly."])
def test_every_format_gives_llamafactory_the_same_turns(system):
    examples = [TrainingExample("Translate to French.", "Good morning", "Bonjour",
                                system=system),
                TrainingExample("Q?", "", "42", "think", system=system)]
    seen = set()
    for fmt in ("alpaca", "sharegpt", "messages"):
        entry = dataset_info_entry(fmt, "f", system=system is not None)
        read_back = tuple((lf_turns(record, entry)[0], tuple(lf_turns(record, entry)[1]))
                          for record in to_records(examples, fmt))
        seen.add(read_back)
    assert seen == {(
        (system or "", (("user", "Translate to French.\nGood morning"),
                        ("assistant", "Bonjour"))),
        (system or "", (("user", "Q?"), ("assistant", "<think>\nthink\n</think>\n\n42"))),
    )}


def test_think_field_exports_are_not_registered(tmp_path):
    rows_csv(tmp_path, 2)
    fake = FakeBackend(lambda r, n: completion("<think>add them</think>4"))
    assert invoke(fake, *simple_args(tmp_path)).exit_code == 0
    out = tmp_path / "out"
    inline = CliRunner().invoke(cli.app, ["export", str(out), "-f", "messages"])
    assert inline.exit_code == 0 and "registered in" in inline.output
    field = CliRunner().invoke(cli.app, ["export", str(out), "-f", "messages", "--think",
                                         "field"])
    assert field.exit_code == 0, field.output
    flat = " ".join(field.output.split())
    assert "not registered in dataset_info.json: LLaMA-Factory has no column for a separate " \
           "reasoning field" in flat and "--think inline" in flat
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert "out_messages" not in info  # the inline entry for the same file went too
    record = json.loads((out / "export" / "messages.jsonl").read_text().splitlines()[0])
    assert record["messages"] == [
        {"role": "user", "content": "What is 0 plus 0?"},
        {"role": "assistant", "content": "4", "reasoning_content": "add them"}]


def test_export_text_and_map_choose_the_fields(tmp_path):
    rows_csv(tmp_path, 2)
    fake = FakeBackend(lambda r, n: completion('{"label": "sum", "why": "it adds"}'))
    assert invoke(fake, *simple_args(tmp_path, "--parse", "json")).exit_code == 0
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.app, ["export", str(out)])
    assert result.exit_code == 2
    assert "--map output=FIELD" in " ".join(result.output.split())
    result = CliRunner().invoke(cli.app, ["export", str(out), "-f", "alpaca", "--map",
                                          "output=label", "--map", "input=answer"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "export" / "alpaca.json").read_text())[0] == {
        "instruction": "What is 0 plus 0?", "input": "0", "output": "sum"}
    result = CliRunner().invoke(cli.app, ["export", str(out), "-f", "text", "--map",
                                          "output=why"])
    assert result.exit_code == 0, result.output
    assert read(out / "export" / "text.jsonl") == [{"text": "it adds"}] * 2
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert info["out_text"] == {"file_name": "text.jsonl", "columns": {"prompt": "text"}}


# ---- a wrong --map stops early; --reparse reads paid-for answers again --------------------

def many_rows(d: Path, count: int) -> None:
    (d / "rows.jsonl").write_text("".join(json.dumps({"n": n}) + "\n" for n in range(count)),
                                  encoding="utf-8")
    (d / "t.txt").write_text("Write a question about {n} and its answer as JSON.",
                             encoding="utf-8")


def qa_answer(request: Request, number: int) -> Completion:
    return completion('```json\n[{"q": "what is it?", "a": "' + str(number) + '"}]\n```')


def map_args(d: Path, instruction_key: str, *extra: str) -> list[str]:
    return ["distill", str(d / "rows.jsonl"), "--user-template", str(d / "t.txt"),
            "--parse", "json", "--map", f"instruction={instruction_key}", "--map", "output=a",
            "-o", str(d / "out"), "--base-url", "http://127.0.0.1:9/v1", "--model", "teacher",
            "--concurrency", "1", *extra]


def test_a_wrong_map_stops_within_the_first_answers_naming_what_they_hold(tmp_path):
    many_rows(tmp_path, 60)
    fake = FakeBackend(qa_answer)
    result = invoke(fake, *map_args(tmp_path, "question"))
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "the first 20 answers: 20 rejected as missing_key" in flat
    assert "the answers' items have keys 'a', 'q'" in flat
    assert "--map instruction=question names 'question'" in flat
    assert "--reparse" in flat
    assert len(fake.requests) <= 21  # stopped, not 60 paid-for requests


def test_reparse_makes_the_records_from_stored_answers_without_a_request(tmp_path):
    many_rows(tmp_path, 25)
    first = invoke(FakeBackend(qa_answer), *map_args(tmp_path, "question"))
    assert first.exit_code == 2
    answered = {r["id"] for r in read(tmp_path / "out" / "rejected.jsonl")}
    assert read(tmp_path / "out" / "distilled.jsonl") == []
    again = FakeBackend(qa_answer)
    result = invoke(again, *map_args(tmp_path, "q", "--reparse"))
    assert result.exit_code == 0, result.output
    records = read(tmp_path / "out" / "distilled.jsonl")
    assert {r["id"] for r in records} == {f"row{n}" for n in range(25)}
    assert all(r["instruction"] == "what is it?" for r in records)
    # only the rows never answered were sent; none of the paid-for ones again
    assert len(again.requests) == 25 - len(answered)
    assert not any(r.get("stage") == "distill" for r in read(tmp_path / "out" / "rejected.jsonl"))
    assert f"--reparse: {len(answered)} stored answers read again" in " ".join(
        result.output.split())


def test_reparse_refuses_a_changed_template_naming_the_line(tmp_path):
    many_rows(tmp_path, 2)
    assert invoke(FakeBackend(qa_answer), *map_args(tmp_path, "q")).exit_code == 0
    (tmp_path / "t.txt").write_text("Another prompt about {n}.", encoding="utf-8")
    result = invoke(FakeBackend(qa_answer), *map_args(tmp_path, "q", "--reparse"))
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert f"--user-template {tmp_path / 't.txt'} is not the file this run was started with" \
        in flat
    assert "line 1 was 'Write a question about {n} and its answer as JSON.', now " \
           "'Another prompt about {n}.'" in flat


def test_an_empty_answer_is_settled_and_retry_rejected_asks_again(tmp_path):
    many_rows(tmp_path, 3)
    empty = FakeBackend(lambda request, number: "" if '"n": 1' in request.prompt
                        or "about 1 " in request.prompt else qa_answer(request, number))
    assert invoke(empty, *map_args(tmp_path, "q")).exit_code == 0
    rejected = [r for r in read(tmp_path / "out" / "rejected.jsonl") if r["filter"] == "empty"]
    assert [r["id"] for r in rejected] == ["row1"]
    rerun = FakeBackend(qa_answer)
    assert invoke(rerun, *map_args(tmp_path, "q")).exit_code == 0
    assert rerun.requests == []  # settled: not asked again
    retry = FakeBackend(qa_answer)
    assert invoke(retry, *map_args(tmp_path, "q", "--retry-rejected")).exit_code == 0
    assert len(retry.requests) == 1
    assert sorted(r["id"] for r in read(tmp_path / "out" / "distilled.jsonl")) == [
        "row0", "row1", "row2"]


def model_json_shapes(request: Request, number: int) -> Completion:
    """Issue 19: the JSON shapes models write for rows 0-3: a trailing comma, Python
    quoting, a fence never closed, and a list cut by the token limit in its third item."""
    n = request.prompt.split()[2]
    if n == "0":
        return completion('```json\n[{"q": "0a", "a": "1"},\n {"q": "0b", "a": "2"},\n]\n```')
    if n == "1":
        return completion("[{'q': '1a', 'a': True}, {'q': '1b', 'a': None}]")
    if n == "2":
        return completion('Here you go:\n```json\n[{"q": "2a", "a": "1"}, {"q": "2b", "a": "2"}]')
    return completion('[{"q": "3a", "a": "1"}, {"q": "3b", "a": "2"}, {"q": "3c", "a": "cut o',
                      finish_reason="length")


def test_every_json_shape_a_model_writes_is_kept_whole(tmp_path):
    rows_csv(tmp_path, 4)
    result = invoke(FakeBackend(model_json_shapes),
                    *simple_args(tmp_path, "--parse", "json", "--map", "instruction=q",
                                 "--map", "output=a", "--concurrency", "1"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    kept = sorted((r["id"], r["item"], r["instruction"], r["output"])
                  for r in read(out / "distilled.jsonl"))
    assert kept == [("row0", 0, "0a", "1"), ("row0", 1, "0b", "2"),
                    ("row1", 0, "1a", True), ("row1", 1, "1b", None),
                    ("row2", 0, "2a", "1"), ("row2", 1, "2b", "2"),
                    ("row3", 0, "3a", "1"), ("row3", 1, "3b", "2")]
    [cut] = read(out / "rejected.jsonl")
    assert (cut["filter"], cut["id"], cut["item"], cut["item_text"]) == (
        "truncated_item", "row3", 2, '{"q": "3c", "a": "cut o')
    assert cut["finish_reason"] == "length" and cut["response"].endswith("cut o")
    assert "1 answers or items rejected" in " ".join(result.output.split())


def test_labels_and_items_checks(tmp_path):
    """--labels rejects an item with another label, --items questions an answer with
    another number of items (whole, raw text kept)."""
    rows_csv(tmp_path, 3)
    (tmp_path / "q.txt").write_text("Is it big?\nIs it odd?\n")
    (tmp_path / "t.txt").write_text("{question}\n{questions}")
    answers = {"0": '[{"label": "yes"}, {"label": "no"}]',
               "1": '[{"label": "yes"}, {"label": "maybe"}]',
               "2": '[{"label": "yes"}]'}

    def script(request: Request, number: int) -> Completion:
        return completion(answers[request.prompt.split()[2]])

    def args(labels: str) -> list[str]:
        return simple_args(tmp_path, "--parse", "json", "--questions", str(tmp_path / "q.txt"),
                           "--labels", labels, "--items", "questions")

    plan = invoke(FakeBackend(script), *args("yes, no"), "--dry-run")
    assert "checks: label must be one of yes, no" in plan.output
    assert "checks: each answer must hold 2 items" in plan.output
    result = invoke(FakeBackend(script), *args("yes, no"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted((r["id"], r["item"], r["label"]) for r in read(out / "distilled.jsonl")) == [
        ("row0", 0, "yes"), ("row0", 1, "no"), ("row1", 0, "yes")]
    rejected = sorted((r["id"], r["filter"], r.get("item"), r["detail"])
                      for r in read(out / "rejected.jsonl"))
    assert rejected == [
        ("row1", "label_not_allowed", 1, "label 'maybe' is not one of --labels yes,no"),
        ("row2", "wrong_item_count", None, "the JSON list has 1 item; --items asks for 2")]
    config = json.loads((out / "config.json").read_text())["distill"]
    assert (config["labels"], config["items"]) == (["yes", "no"], "questions")
    other = invoke(FakeBackend(script), *args("yes,no,maybe"))  # keeps other records
    assert other.exit_code == 2
    assert "this run was started with labels=['yes', 'no']" in " ".join(other.output.split())


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--items", "2"], "--items counts the items of a JSON list; it needs --parse json"),
     (["--parse", "json", "--items", "questions"], "--items questions counts the lines of "
      "--questions; give --questions too"),
     (["--parse", "json", "--items", "0"], "--items must be a number of at least 1"),
     (["--parse", "json", "--items", "two"], "--items two: expected a number or questions"),
     (["--labels", "a,,b"], "--labels: a label is empty"),
     (["--labels", "a,a"], "--labels lists a label twice")],
)
def test_check_flag_errors(tmp_path, extra, message):
    rows_csv(tmp_path, 1)
    result = invoke(FakeBackend(), *simple_args(tmp_path, *extra))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(("wrong", "stops"), [(18, True), (17, False)])
def test_the_early_stop_needs_nine_in_ten_of_the_first_answers(tmp_path, wrong, stops):
    """18 of the first 20 rejected by one rule stop the run; 17 do not."""
    many_rows(tmp_path, 30)

    def answer(request: Request, number: int) -> Completion:
        if number <= wrong:
            return completion('[{"question": "what?", "a": "1"}]')
        return qa_answer(request, number)

    fake = FakeBackend(answer)
    result = invoke(fake, *map_args(tmp_path, "q"))
    assert (result.exit_code == 2) is stops, result.output
    assert len(fake.requests) == (20 if stops else 30)


def test_reparse_may_change_how_answers_are_read_not_what_was_asked(tmp_path):
    many_rows(tmp_path, 2)
    assert invoke(FakeBackend(qa_answer), *map_args(tmp_path, "q")).exit_code == 0
    result = invoke(FakeBackend(qa_answer), *map_args(tmp_path, "q", "--reparse",
                                                      "--system", "Be brief."))
    assert result.exit_code == 2
    assert "this run was started with system=None" in " ".join(result.output.split())
