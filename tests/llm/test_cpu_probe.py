"""The CPU probe that keeps llama.cpp from dying of SIGILL in-process."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from selfinstruct.errors import UserError
from selfinstruct.llm import cpu_probe


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def scripted_probes(monkeypatch: pytest.MonkeyPatch, statuses: list[int | None]) -> list[bool]:
    """Make each probe child "exit" with the next status; returns the extra_bufts asked."""
    asked: list[bool] = []

    def run(model_path: Path, *, extra_bufts: bool) -> int | None:
        asked.append(extra_bufts)
        return statuses.pop(0)

    monkeypatch.setattr(cpu_probe, "_run_probe", run)
    return asked


@pytest.mark.parametrize(
    ("statuses", "verdict", "asked"),
    [
        ([0], "default", [True]),
        ([-signal.SIGILL, 0], "no_extra_bufts", [True, False]),
        ([-signal.SIGSEGV, 0], "no_extra_bufts", [True, False]),
        ([-signal.SIGILL, -signal.SIGILL], "broken", [True, False]),
        ([-signal.SIGILL, -signal.SIGSEGV], "broken", [True, False]),
    ],
)
def test_the_probe_falls_back_only_after_an_illegal_instruction(
    monkeypatch, tmp_path, statuses, verdict, asked
):
    calls = scripted_probes(monkeypatch, list(statuses))
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf") == verdict
    assert calls == asked


def test_a_probe_that_fails_otherwise_changes_nothing_and_is_not_cached(monkeypatch, tmp_path):
    calls = scripted_probes(monkeypatch, [1, 0])
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf") == "default"
    assert not cpu_probe.cache_file().exists()
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf") == "default"
    assert calls == [True, True]


def test_the_verdict_is_probed_once_then_read_from_the_cache(monkeypatch, tmp_path):
    notes: list[str] = []
    calls = scripted_probes(monkeypatch, [-signal.SIGILL, 0])
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf", notes.append) == "no_extra_bufts"
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf", notes.append) == "no_extra_bufts"
    assert calls == [True, False]
    assert len(notes) == 1 and "AMX" in notes[0] and "crash" in notes[0]


def test_a_broken_library_is_one_error_with_the_command_that_fixes_it(monkeypatch, tmp_path):
    scripted_probes(monkeypatch, [-signal.SIGILL, -signal.SIGILL])
    with pytest.raises(UserError) as caught:
        cpu_probe.check_llama(tmp_path / "m.gguf")
    assert "crashes on this CPU" in str(caught.value)
    assert cpu_probe.REBUILD_COMMAND in str(caught.value)


def test_an_unwritable_cache_only_means_probing_again(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    calls = scripted_probes(monkeypatch, [0, 0])
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf") == "default"
    assert cpu_probe.llama_verdict(tmp_path / "m.gguf") == "default"
    assert calls == [True, True]


def test_a_child_killed_by_sigill_is_seen_as_such(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_probe, "_PROBE_CODE",
                        "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    monkeypatch.setattr(cpu_probe, "probe_model", lambda path: path)
    assert cpu_probe._run_probe(tmp_path / "m.gguf", extra_bufts=True) == -signal.SIGILL


def test_the_load_parameters_are_changed_only_while_a_model_loads():
    native = pytest.importorskip("llama_cpp.llama_cpp")
    original = native.llama_model_default_params
    assert original().use_extra_bufts
    with cpu_probe.llama_params("no_extra_bufts"):
        assert not native.llama_model_default_params().use_extra_bufts
    assert native.llama_model_default_params is original
    with cpu_probe.llama_params("default"):
        assert native.llama_model_default_params is original


@pytest.mark.e2e
def test_the_embedded_model_answers_a_long_prompt_on_this_machine(tmp_path):
    """The crash this module exists for: a multi-token prompt through the AMX path."""
    pytest.importorskip("llama_cpp")
    from selfinstruct.llm.local import default_model_path

    verdict = cpu_probe.llama_verdict(default_model_path())
    assert verdict in ("default", "no_extra_bufts")
    code = (
        "import sys; from pathlib import Path; from selfinstruct.llm import cpu_probe;"
        "from llama_cpp import Llama;"
        f"ctx = cpu_probe.llama_params({verdict!r}); ctx.__enter__();"
        "llm = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False);"
        "print(llm.create_completion('one two three four five six seven eight nine ten '"
        " * 4, max_tokens=3, temperature=0)['choices'][0]['text'])"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code, str(default_model_path())],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-500:]
