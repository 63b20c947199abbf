"""``dialogue``: scripts and self-chat on fake models, resuming, the CLI, and what export,
score and report make of the conversations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import selfinstruct
from selfinstruct.errors import UserError
from selfinstruct.llm import use_backend
from selfinstruct.llm.base import BackendError, Request
from selfinstruct.llm.fake import FakeBackend
from selfinstruct.llm.registry import BackendSpec
from selfinstruct.stages.dialogue import OPENING
from tests.helpers import flat, invoke, read

URL = "http://127.0.0.1:9/v1"
SYSTEM = "Be concise."
EN = {
    "user": ["Where do I start with {topic}?", "What mistakes do beginners make?",
             "How much time per week does it take?", "Which book would you recommend?"],
    "assistant": ["Start with the basics of {topic} and practise a little every day.",
                  "They rush and skip feedback; slow down and check each step.",
                  "About three hours a week is enough to see steady progress.",
                  "A classic introduction with exercises; read one chapter a week."],
}
ZH = {
    "user": ["我应该从哪里开始学习{topic}？", "初学者常犯哪些错误呢？", "每周需要花多少时间练习？",
             "你能推荐一本入门的书吗？"],
    "assistant": ["先从{topic}的基础开始，每天坚持练习一点点。",
                  "他们太急于求成，忽略了反馈，应该放慢速度。",
                  "每周大约三个小时，就能看到稳定的进步。",
                  "一本带练习题的经典入门书，每周读一章就好。"],
}


def lines(prompt: str) -> tuple[dict[str, list[str]], str]:
    """The fake conversation's lines in the prompt's language, and its topic."""
    match = re.search(r"(?:Topic: |话题：|What you want to talk about: |你想聊的话题：)(.*)",
                      prompt)
    topic = match[1].strip() if match else "it"
    return (ZH if "话题" in prompt else EN), topic


def conversation(prompt: str, exchanges: int = 4) -> list[dict[str, str]]:
    words, topic = lines(prompt)
    messages = []
    for number in range(exchanges):
        for role in ("user", "assistant"):
            messages.append({"role": role,
                             "content": words[role][number].format(topic=topic)})
    return messages


def script(request: Request, number: int) -> str:
    """A whole conversation as the JSON the schema asks for."""
    return json.dumps({"messages": conversation(request.prompt)}, ensure_ascii=False)


def simulated_user(ends_after: int | None = None):
    """The simulated user: its n-th message from the conversation so far, or the stop
    phrase once ``ends_after`` exchanges have been had."""
    def answer(request: Request, number: int) -> str:
        words, topic = lines(request.system or "")
        turn = len(request.history) // 2
        if ends_after is not None and turn >= ends_after:
            return "Thanks, that is all I needed. [END]"
        return words["user"][turn].format(topic=topic)
    return answer


def assistant(request: Request, number: int) -> str:
    """The assistant: its n-th answer, in the language of the user's message."""
    words = ZH if any("\u4e00" <= c <= "\u9fff" for c in request.prompt) else EN
    return words["assistant"][len(request.history) // 2].format(topic="it")


def both(request: Request, number: int) -> str:
    """One model playing both sides (the simulated user's prompt says it role-plays)."""
    system = request.system or ""
    speaker = simulated_user() if "role-playing" in system or "扮演" in system else assistant
    return speaker(request, number)


@pytest.fixture
def topics(tmp_path: Path) -> Path:
    path = tmp_path / "topics.txt"
    path.write_text("brewing green tea at home\n\n如何练习毛笔字\n", encoding="utf-8")
    return path


def roles(record: dict) -> list[str]:
    return [m["role"] for m in record["messages"]]


# --- script ---------------------------------------------------------------------------


def test_script_mode_one_request_per_topic_in_each_language(topics, tmp_path):
    fake = FakeBackend(script)
    out = tmp_path / "d"
    stats = selfinstruct.dialogue(topics, out, turns=4, system=SYSTEM, backend=fake)
    assert (stats.total, stats.done) == (2, 2)
    assert len(fake.requests) == 2
    english, chinese = fake.requests
    assert english.schema_name == "dialogue" and english.schema is not None
    assert "Topic: brewing green tea at home" in english.prompt and SYSTEM in english.prompt
    assert "话题：如何练习毛笔字" in chinese.prompt and "全部用中文书写" in chinese.prompt
    assert english.max_tokens == 4096 and english.temperature == 0.8
    records = read(out / "dialogues.jsonl")
    assert [r["id"] for r in records] == ["t0/0", "t1/0"]
    for record in records:
        assert roles(record) == ["user", "assistant"] * 4
        assert (record["system"], record["mode"], record["model"]) == (SYSTEM, "script",
                                                                       "fake-model")
        assert record["persona"] and record["usage"]["prompt_tokens"] == 100
    assert records[1]["messages"][0]["content"] == "我应该从哪里开始学习如何练习毛笔字？"
    assert [r["language"] for r in records] == ["en", "zh"]
    # a second run has nothing left to ask
    again = FakeBackend(script)
    selfinstruct.dialogue(topics, out, turns=4, system=SYSTEM, backend=again)
    assert again.requests == [] and len(read(out / "dialogues.jsonl")) == 2


def test_script_answers_in_text_are_read_when_structured_output_is_off(topics, tmp_path):
    def text(request: Request, number: int) -> str:
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}"
                           for m in conversation(request.prompt, 3))

    fake = FakeBackend(text)
    with use_backend(fake):
        selfinstruct.dialogue(topics, tmp_path / "d", turns=3, base_url=URL, model="m",
                              structured="off")
    assert all(r.schema is None for r in fake.requests)
    assert "User:" in fake.requests[0].prompt
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert [len(r["messages"]) for r in records] == [6, 6]
    stats = json.loads((tmp_path / "d" / "stats.json").read_text())["dialogue"]
    assert stats["parsed"] == {"json": 0, "text": 2}


def test_script_rejections_carry_the_answer_and_the_filter(topics, tmp_path):
    answers = iter(["I would rather not.",
                    json.dumps({"messages": conversation("Topic: x", 1)})])
    fake = FakeBackend(lambda request, number: next(answers))
    selfinstruct.dialogue(topics, tmp_path / "d", turns=4, backend=fake)
    rejected = read(tmp_path / "d" / "rejected.jsonl")
    assert [(r["stage"], r["filter"], r["id"]) for r in rejected] == [
        ("dialogue", "unparseable", "t0/0"), ("dialogue", "too_few_turns", "t1/0")]
    assert rejected[0]["answer"] == "I would rather not."
    assert rejected[1]["detail"] == "1 exchanges, fewer than --min-turns 2"
    assert not (tmp_path / "d" / "dialogues.jsonl").read_text()


def test_a_script_past_the_asked_exchanges_is_cut_to_them(topics, tmp_path):
    fake = FakeBackend(script)  # always writes 4 exchanges
    stats = selfinstruct.dialogue(topics, tmp_path / "d", turns=3, backend=fake)
    assert [len(r["messages"]) for r in read(tmp_path / "d" / "dialogues.jsonl")] == [6, 6]
    assert stats.seen["trimmed_turns"] == 4


def test_outline_first_then_the_conversation_and_the_outline_is_never_asked_twice(
        topics, tmp_path):
    out = tmp_path / "d"

    def failing(request: Request, number: int) -> str | BackendError:
        if "outline" in request.prompt.lower() or "提纲" in request.prompt:
            if "Follow this outline" in request.prompt or "按照下面的提纲" in request.prompt:
                return BackendError("the server is gone for good", retryable=False)
            return f"1. plan {number}\n2. more"
        return script(request, number)

    first = FakeBackend(failing)
    with pytest.raises(UserError, match="gone for good"):
        selfinstruct.dialogue(topics, out, outline=True, backend=first)
    journal = read(out / "turns.jsonl")
    assert [(e["id"], e["kind"]) for e in journal] == [("t0/0", "outline")]

    def planner(request: Request, number: int) -> str:
        if "Plan a conversation" in request.prompt or "拟一个提纲" in request.prompt:
            return f"1. plan b{number}"
        return script(request, number)

    second = FakeBackend(planner)
    selfinstruct.dialogue(topics, out, outline=True, backend=second)
    prompts = [r.prompt for r in second.requests]
    assert len(prompts) == 3  # t0's script (its outline was paid for), t1's outline, script
    assert "Follow this outline" in prompts[0] and "1. plan 1\n2. more" in prompts[0]
    assert "请按照下面的提纲写" in prompts[2] and "1. plan b2" in prompts[2]
    records = read(out / "dialogues.jsonl")
    assert [(r["id"], r["outline"]) for r in records] == [("t0/0", "1. plan 1\n2. more"),
                                                          ("t1/0", "1. plan b2")]


# --- self-chat ------------------------------------------------------------------------


def test_self_chat_with_a_separate_user_model(topics, tmp_path):
    user = FakeBackend(simulated_user(), name="user-fake")
    helper = FakeBackend(assistant)
    selfinstruct.dialogue(topics, tmp_path / "d", mode="self-chat", turns=3, system=SYSTEM,
                          backend=helper, user_backend=user)
    # the simulated user: its own prompt with persona and topic, the roles turned round
    assert len(user.requests) == 6 and len(helper.requests) == 6
    opening = user.requests[0]
    assert opening.prompt == OPENING["en"] and opening.history == ()
    assert "brewing green tea at home" in (opening.system or "")
    assert "[END]" in (opening.system or "")
    later = next(r for r in user.requests if len(r.history) == 4)
    assert [role for role, _ in later.history] == ["user", "assistant", "user", "assistant"]
    # the assistant: the system prompt and the conversation so far
    assert {r.system for r in helper.requests} == {SYSTEM}
    assert sorted(len(r.history) for r in helper.requests) == [0, 0, 2, 2, 4, 4]
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert [roles(r) for r in records] == [["user", "assistant"] * 3] * 2
    english = records[0]
    assert english["messages"][0]["content"] == "Where do I start with brewing green tea at home?"
    assert english["messages"][2]["content"] == "What mistakes do beginners make?"
    assert (english["mode"], english["system"], english["usage"]["prompt_tokens"]) == (
        "self-chat", SYSTEM, 600)
    journal = read(tmp_path / "d" / "turns.jsonl")
    assert len(journal) == 12 and {e["kind"] for e in journal} == {"user", "assistant"}


def test_self_chat_turns_of_many_conversations_are_in_flight_together(topics, tmp_path):
    fakes = {"m": FakeBackend(assistant, delay=0.01),
             "sim": FakeBackend(simulated_user(), delay=0.01)}

    def backend_for(spec: BackendSpec) -> FakeBackend:
        return fakes[spec.model]

    with use_backend(backend_for):
        selfinstruct.dialogue(topics, tmp_path / "d", mode="self-chat", turns=2,
                              num_dialogues=6, base_url=URL, model="m", concurrency=6,
                              user_model="sim")
    assert fakes["sim"].max_in_flight == 6
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert len(records) == 6 and all(len(r["messages"]) == 4 for r in records)
    config = json.loads((tmp_path / "d" / "config.json").read_text())["dialogue"]
    assert (config["model"], config["user_model"]) == ("m", "sim")


def test_the_simulated_user_ends_early_with_the_stop_phrase(topics, tmp_path):
    user = FakeBackend(simulated_user(ends_after=2))
    selfinstruct.dialogue(topics, tmp_path / "d", mode="self-chat", turns=4,
                          backend=FakeBackend(assistant), user_backend=user)
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert [(len(r["messages"]), r["ended_by"]) for r in records] == [(4, "user"), (4, "user")]
    assert len(user.requests) == 6  # two messages and the stop phrase, per conversation
    shorter = FakeBackend(simulated_user(ends_after=1))
    selfinstruct.dialogue(topics, tmp_path / "e", mode="self-chat", turns=4,
                          backend=FakeBackend(assistant), user_backend=shorter)
    rejected = read(tmp_path / "e" / "rejected.jsonl")
    assert {(r["filter"], len(r["messages"])) for r in rejected} == {("too_few_turns", 2)}


def test_self_chat_resumes_after_a_crash_without_paying_a_turn_twice(topics, tmp_path):
    out = tmp_path / "d"
    turns = 3
    sent: list[Request] = []

    def crashing(request: Request, number: int) -> str | BackendError:
        sent.append(request)
        if len(sent) > 5:
            return BackendError("killed", retryable=False)
        return both(request, number)

    with pytest.raises(UserError, match="killed"):
        selfinstruct.dialogue(topics, out, mode="self-chat", turns=turns, system=SYSTEM,
                              backend=FakeBackend(crashing))
    answered_before = len(read(out / "turns.jsonl"))
    assert answered_before == 5 and not (out / "dialogues.jsonl").read_text()

    again = FakeBackend(both)
    selfinstruct.dialogue(topics, out, mode="self-chat", turns=turns, system=SYSTEM,
                          backend=again)
    assert len(again.requests) == 2 * 2 * turns - answered_before
    journal = read(out / "turns.jsonl")
    steps = [(e["id"], e["step"]) for e in journal]
    assert len(steps) == len(set(steps)) == 2 * 2 * turns
    records = read(out / "dialogues.jsonl")
    assert [roles(r) for r in records] == [["user", "assistant"] * turns] * 2
    assert records[0]["messages"][4]["content"] == "How much time per week does it take?"


def test_a_conversation_answered_in_full_before_a_kill_is_written_without_a_request(
        topics, tmp_path):
    out = tmp_path / "d"
    selfinstruct.dialogue(topics, out, mode="self-chat", turns=1, backend=FakeBackend(both))
    (out / "dialogues.jsonl").write_text("")  # as if killed between the journal and the record
    again = FakeBackend(both)
    selfinstruct.dialogue(topics, out, mode="self-chat", turns=1, backend=again)
    assert again.requests == []
    assert [r["id"] for r in read(out / "dialogues.jsonl")] == ["t0/0", "t1/0"]


# --- topics and personas ----------------------------------------------------------------


def test_more_dialogues_than_topics_reuse_them_with_other_personas_and_seeds(topics, tmp_path):
    fake = FakeBackend(script)
    selfinstruct.dialogue(topics, tmp_path / "d", num_dialogues=5, backend=fake)
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert [r["id"] for r in records] == ["t0/0", "t1/0", "t0/1", "t1/1", "t0/2"]
    english = [r["persona"] for r in records if r["id"].startswith("t0/")]
    assert len(set(english)) == 3
    assert len({r.seed for r in fake.requests}) == 5


def test_jsonl_topics_bring_their_own_persona_and_system(tmp_path):
    path = tmp_path / "topics.jsonl"
    path.write_text(json.dumps({"topic": "fixing a bike chain", "persona": "A cyclist.",
                                "system": "Answer as a mechanic."}) + "\n"
                    + json.dumps({"topic": "baking sourdough"}) + "\n")
    fake = FakeBackend(script)
    selfinstruct.dialogue(path, tmp_path / "d", system=SYSTEM, backend=fake)
    records = read(tmp_path / "d" / "dialogues.jsonl")
    assert (records[0]["persona"], records[0]["system"]) == ("A cyclist.",
                                                             "Answer as a mechanic.")
    assert records[1]["system"] == SYSTEM and records[1]["persona"] != "A cyclist."
    assert "The user: A cyclist." in fake.requests[0].prompt


def test_a_datasets_instructions_are_the_topics(tmp_path):
    data = tmp_path / "alpaca.json"
    data.write_text(json.dumps([{"instruction": "Plan a trip to Kyoto.", "output": "…"}]))
    fake = FakeBackend(script)
    selfinstruct.dialogue(data, tmp_path / "d", backend=fake)
    assert "Topic: Plan a trip to Kyoto." in fake.requests[0].prompt


# --- checks -------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "message"), [
    ({"turns": 0}, "--turns must be at least 1"),
    ({"min_turns": 5}, "--min-turns must be between 1 and --turns"),
    ({"mode": "self-chat", "outline": True}, "--outline plans a script"),
    ({"user_model": "other"}, "a script has no simulated user"),
    ({"mode": "self-chat", "executor": "ray"}, "self-chat runs in this process"),
])
def test_settings_that_cannot_work_are_refused_before_anything_is_sent(
        topics, tmp_path, settings, message):
    fake = FakeBackend(script)
    with pytest.raises(UserError, match=re.escape(message)):
        selfinstruct.dialogue(topics, tmp_path / "d", backend=fake, **settings)
    assert fake.requests == []


def test_resuming_with_another_mode_is_refused(topics, tmp_path):
    selfinstruct.dialogue(topics, tmp_path / "d", backend=FakeBackend(script))
    with pytest.raises(UserError, match="mode='script', now mode='self-chat'"):
        selfinstruct.dialogue(topics, tmp_path / "d", mode="self-chat",
                              backend=FakeBackend(script))


# --- the command line, export, score, report ----------------------------------------------


def judge(request: Request, number: int) -> str:
    return json.dumps({"coherence": 5, "helpfulness": 4, "on_topic": 5, "harmlessness": 5,
                       "overall": 4 + number % 2, "reason": "stays on topic"})


def test_command_line_export_score_and_report(topics, tmp_path):
    system_file = tmp_path / "s.txt"
    system_file.write_text(SYSTEM + "\n")
    out = tmp_path / "d"
    args = ["dialogue", str(topics), "-o", str(out), "--turns", "4", "--system-file",
            str(system_file), "--base-url", URL, "--model", "m"]
    dry = invoke(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dialogue: 2 requests (2 conversations of 4 exchanges)" in flat(dry.output)
    with use_backend(FakeBackend(script)):
        result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "2 conversations written to" in flat(result.output)
    assert "(4 exchanges x2)" in flat(result.output)

    # export: every turn, the system prompt first, registered as multi-turn
    for fmt in ("sharegpt", "messages", "alpaca"):
        exported = invoke("export", str(out), "--format", fmt)
        assert exported.exit_code == 0, exported.output
    sharegpt = json.loads((out / "export" / "sharegpt.json").read_text(encoding="utf-8"))
    turns = sharegpt[0]["conversations"]
    assert [t["from"] for t in turns] == ["system"] + ["human", "gpt"] * 4
    assert turns[0]["value"] == SYSTEM
    messages = [json.loads(x) for x in (out / "export" / "messages.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert [m["role"] for m in messages[1]["messages"]] == ["system"] + ["user", "assistant"] * 4
    assert messages[1]["messages"][1]["content"] == "我应该从哪里开始学习如何练习毛笔字？"
    alpaca = json.loads((out / "export" / "alpaca.json").read_text(encoding="utf-8"))
    assert alpaca[0]["instruction"] == "Which book would you recommend?"
    assert alpaca[0]["system"] == SYSTEM and len(alpaca[0]["history"]) == 3
    assert alpaca[0]["history"][0] == [
        "Where do I start with brewing green tea at home?",
        "Start with the basics of brewing green tea at home and practise a little every day."]
    info = json.loads((out / "export" / "dataset_info.json").read_text())
    assert info["d_sharegpt"]["formatting"] == "sharegpt"
    assert info["d_sharegpt"]["tags"]["system_tag"] == "system"
    assert info["d_messages"]["tags"] == {"role_tag": "role", "content_tag": "content",
                                          "user_tag": "user", "assistant_tag": "assistant",
                                          "system_tag": "system"}
    assert info["d_alpaca"]["columns"]["history"] == "history"

    # score: the dialogue judge rates each whole conversation on the dialogue rubric
    grader = FakeBackend(judge)
    with use_backend(grader):
        scored = invoke("score", str(out), "--base-url", URL, "--model", "judge",
                        "--language", "en")
    assert scored.exit_code == 0, scored.output
    assert len(grader.requests) == 2
    assert "Rate the assistant's side of the whole conversation" in grader.requests[0].prompt
    assert "Assistant: A classic introduction" in grader.requests[0].prompt
    assert "Assistant: 一本带练习题的经典入门书" in grader.requests[1].prompt
    scores = read(out / "scores.jsonl")
    assert [s["id"] for s in scores] == ["t0/0", "t1/0"]
    assert set(scores[0]["scores"]) == {"coherence", "helpfulness", "on_topic", "harmlessness"}
    kept = invoke("export", str(out), "--format", "messages", "--min-score", "5")
    assert kept.exit_code == 0, kept.output
    assert len((out / "export" / "messages.jsonl").read_text().splitlines()) == 1

    sheet = invoke("review", str(out), "--sample", "2")
    assert sheet.exit_code == 0, sheet.output
    import openpyxl

    rows = list(openpyxl.load_workbook(out / "review.xlsx").active.iter_rows(values_only=True))
    shown = {row[0]: row[3] for row in rows[1:]}
    assert shown["t0/0"].startswith("User: Where do I start with brewing green tea at home?")

    report = invoke("report", str(out))
    assert report.exit_code == 0, report.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "exchanges per conversation: 2 of 4" in page


def test_command_line_self_chat_with_a_user_model(topics, tmp_path):
    fakes = {"m": FakeBackend(assistant), "sim": FakeBackend(simulated_user())}
    with use_backend(lambda spec: fakes[spec.model]):
        result = invoke("dialogue", str(topics), "-o", str(tmp_path / "d"), "--mode",
                        "self-chat", "--turns", "2", "--base-url", URL, "--model", "m",
                        "--user-model", "sim", "--user-base-url", "http://127.0.0.1:8/v1")
    assert result.exit_code == 0, result.output
    assert len(fakes["sim"].requests) == len(fakes["m"].requests) == 4
    assert [r["user_model"] for r in read(tmp_path / "d" / "dialogues.jsonl")] == [
        "fake-model"] * 2


def test_a_requests_history_goes_between_the_system_message_and_the_prompt():
    from selfinstruct.llm.base import chat_messages, raw_prompt

    request = Request("and then?", system="S", history=(("user", "hi"), ("assistant", "hello")))
    assert chat_messages(request) == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and then?"}]
    assert raw_prompt(request) == ("S\n\nUser: hi\n\nAssistant: hello\n\nUser: and then?"
                                   "\n\nAssistant:")
