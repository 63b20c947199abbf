"""``dialogue --mode self-chat`` killed with SIGKILL mid-conversation, then run again: the
conversations finish, and no answered turn is asked for a second time."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.helpers import backend_flags, read_records, run_cli, start

from .faultserver import FaultServer

TURNS = 3


def test_self_chat_with_a_user_model_resumes_after_kill_9(server: FaultServer,
                                                          tmp_path: Path) -> None:
    users = FaultServer(seed=11, model="user-model", latency=(0.02, 0.05)).start()
    try:
        server.latency = (0.02, 0.05)
        topics = tmp_path / "topics.txt"
        topics.write_text("".join(f"topic number {n}\n" for n in range(6)))
        out = tmp_path / "d"
        args = ["dialogue", str(topics), "-o", str(out), "--mode", "self-chat", "--turns",
                str(TURNS), "--min-turns", "1", "--max-turn-similarity", "1",
                "--system", "Be brief.", "--user-base-url", users.base_url,
                "--user-model", "user-model", *backend_flags(server, concurrency=3)]
        process = start(*args)
        deadline = time.monotonic() + 60
        while server.count() + users.count() < 8:
            assert process.poll() is None and time.monotonic() < deadline, "never got going"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        journal = out / "turns.jsonl"
        lines = journal.read_bytes().split(b"\n")
        answered = [json.loads(line) for line in lines[:-1]]  # the last may be torn
        assert 0 < len(answered) < 6 * 2 * TURNS

        before = server.count() + users.count()
        finished = run_cli(*args)
        assert finished.returncode == 0, finished.stderr
        asked_again = server.count() + users.count() - before
        assert asked_again == 6 * 2 * TURNS - len(answered)

        steps = [(e["id"], e["step"]) for e in read_records(journal)]
        assert len(steps) == len(set(steps)) == 6 * 2 * TURNS
        records = read_records(out / "dialogues.jsonl")
        assert len(records) == 6
        for record in records:
            assert [m["role"] for m in record["messages"]] == ["user", "assistant"] * TURNS
            assert record["system"] == "Be brief." and record["user_model"] == "user-model"
        # the simulated user's turns went to its own server, the assistant's to the other
        assert users.count() and {s.model for s in users.served} == {"user-model"}
        assert {s.model for s in server.served} == {"fault-model"}
    finally:
        users.stop()
