"""The API key never appears in a file the run writes, in its output, or in an error,
not even when a server echoes it back."""

from __future__ import annotations

from tests.helpers import PLANTED_KEY, backend_flags, generate_args, read_records, run_cli

from .faultserver import FaultServer


def test_a_planted_key_is_never_written_or_printed(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    printed: list[str] = []

    def run(*args: str, key_in_env: bool = True):
        result = run_cli(*args, env={"OPENAI_API_KEY": PLANTED_KEY} if key_in_env else None)
        printed.append(result.stdout + result.stderr)
        return result

    server.push("500", "ok", "bad-json", "ok", "reset")
    assert run(*generate_args(server, seeds, out, 10)).returncode == 0
    server.push("503", "ok", "not-json")
    assert run("classify", str(out), *backend_flags(server), "--api-key", PLANTED_KEY,
               key_in_env=False).returncode == 0
    server.push("keepalive")
    assert run("instances", str(out), *backend_flags(server)).returncode == 0
    server.push("bad-json")
    assert run("reason", str(out), *backend_flags(server), f"--api-key={PLANTED_KEY}",
               key_in_env=False).returncode == 0
    assert run("export", str(out), "--format", "sharegpt").returncode == 0
    # The key really went to the server, every time.
    assert {s.authorization for s in server.served} == {f"Bearer {PLANTED_KEY}"}

    # A server that refuses the key and echoes it back in its error body. (More than the
    # at most 4 candidates the first run can have set aside past -n 10 are missing, so
    # the resume must send a request.)
    server.api_key = "sk-the-servers-own-key-0042"
    refused = run(*generate_args(server, seeds, out, 30))
    assert refused.returncode == 2
    assert "Incorrect API key provided: <API key>" in refused.stderr

    assert len(read_records(out / "failures.jsonl")) >= 7
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {path.name for path in written} >= {
        "config.json", "stats.json", "instructions.jsonl", "rejected.jsonl", "failures.jsonl",
        "classification.jsonl", "instances.jsonl", "reasoning.jsonl", "sharegpt.json",
        "dataset_info.json",
    }
    for path in written:
        assert PLANTED_KEY.encode() not in path.read_bytes(), path
    for text in printed:
        assert PLANTED_KEY not in text
