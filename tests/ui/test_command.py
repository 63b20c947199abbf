"""The distill command line a save prints."""

from __future__ import annotations

import shlex
from pathlib import Path

from selfinstruct.llm.settings import BackendSettings
from selfinstruct.stages.distill import DistillSettings
from selfinstruct.stages.teacher import Teacher
from selfinstruct.ui.command import distill_command


def command(settings: DistillSettings, teacher: Teacher | None = None,
            backend: BackendSettings | None = None) -> list[str]:
    line = distill_command(Path("my rows.jsonl"), Path("out"), Path("t.txt"), Path("s.txt"),
                           settings, teacher or Teacher(), backend or BackendSettings())
    assert line.startswith("selfinstruct ")
    return shlex.split(line)[1:]


def test_defaults_give_only_the_files():
    assert command(DistillSettings(user_template=Path("x"))) == [
        "distill", "my rows.jsonl", "--out", "out", "--user-template", "t.txt",
        "--system-file", "s.txt"]


def test_every_flag_that_differs_from_distills_default():
    settings = DistillSettings(user_template=Path("x"), parse="json",
                               renames={"instruction": "q", "output": "a"}, max_tokens=512,
                               temperature=0.2, fill_na="无", strict=True, id_field="key")
    teacher = Teacher(stop=("####", "<END>"), extra_body={"top_k": 20}, thinking=False,
                      thinking_style="top-level", thinking_budget=100)
    backend = BackendSettings(backend="openai", base_url=("http://127.0.0.1:1/v1",
                                                          "http://127.0.0.1:2/v1"),
                              model="qwen", api_key="sk-secret", concurrency=8, timeout=30.0)
    args = command(settings, teacher, backend)[8:]
    assert args == [
        "--fill-na", "无", "--strict", "--id-field", "key", "--temperature", "0.2",
        "--max-tokens", "512", "--parse", "json", "--map", "instruction=q", "--map", "output=a",
        "--stop", "####", "--stop", "<END>", "--extra-body", '{"top_k": 20}', "--thinking",
        "off", "--thinking-style", "top-level", "--thinking-budget", "100",
        "--base-url", "http://127.0.0.1:1/v1", "--base-url", "http://127.0.0.1:2/v1",
        "--model", "qwen", "--backend", "openai", "--concurrency", "8", "--timeout", "30"]
    assert "sk-secret" not in " ".join(args)


def test_several_teachers_are_repeated_models_or_the_teachers_file():
    settings = DistillSettings(user_template=Path("x"), samples=2)
    several = BackendSettings(base_url=("http://127.0.0.1:1/v1",), model="a", models=("a", "b"))
    args = command(settings, Teacher(), several)
    assert args[args.index("--model"):args.index("--model") + 4] == ["--model", "a", "--model", "b"]
    assert "--models" not in args
    listed = BackendSettings(teachers_file=Path("teachers.txt"))
    assert "--teachers teachers.txt" in " ".join(command(settings, Teacher(), listed))
