"""``--executor ray`` under ``kill -9`` and Ctrl-C: real processes, a real local Ray.

The coordinator is killed while Ray's actors are sending; the Ray it started goes with
it (its GCS and raylet at once, its agents within a minute or two, or ended here by pid),
and the same command resumes to exactly the records a local run writes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import read_records, start
from tests.ray_server import MODEL, PromptServer

pytest.importorskip("ray")

#: A small object store for the Ray each command starts (the machine is shared).
RAY_ENV = {"RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES": str(200 * 1024**2)}


@pytest.fixture
def server() -> Iterator[PromptServer]:
    served = PromptServer(latency=0.05).start()
    yield served
    served.stop()


def descendants(root: int) -> set[int]:
    """Every live process below ``root``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def args(prompts: Path, out: Path, server: PromptServer) -> list[str]:
    return ["reason", str(prompts), "-o", str(out), "--base-url", server.base_url,
            "--model", MODEL, "--concurrency", "4", "--max-retries", "0",
            "--executor", "ray", "--ray-address", "local"]


def wait_for_lines(path: Path, count: int, process: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_bytes().count(b"\n") >= count):
        assert process.poll() is None, process.communicate()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)


def end_leftovers(pids: set[int], ray_core: set[int]) -> None:
    """The GCS and raylet die with the coordinator; the rest of its Ray (agents that
    notice within a minute or two) is given a few seconds, then ended here, by pid: they
    are this test's processes."""
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in ray_core):
        assert time.monotonic() < deadline, [name(pid) for pid in ray_core if alive(pid)]
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_reason_on_ray_survives_kill_9_and_ctrl_c_and_resumes(server, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"instruction": "Explain item {i} of the list."}}\n'
                               for i in range(400)))
    out = tmp_path / "ray"
    command = args(prompts, out, server)

    # kill -9 while the actors are sending
    process = start(*command, env=RAY_ENV)
    wait_for_lines(out / "reasoning.jsonl", 30, process)
    tree = descendants(process.pid)
    core = {pid for pid in tree if name(pid) in ("gcs_server", "raylet")}
    assert core, [name(pid) for pid in tree]
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    end_leftovers(tree, core)
    data = (out / "reasoning.jsonl").read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    assert complete.count(b"\n") >= 30

    # Ctrl-C: stops cleanly, says how to resume, keeps what arrived
    process = start(*command, env=RAY_ENV)
    before = len(read_records(out / "reasoning.jsonl"))
    wait_for_lines(out / "reasoning.jsonl", before + 20, process)
    tree = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "stopped; resume with: selfinstruct reason" in " ".join(stderr.split())
    assert not [pid for pid in tree if alive(pid) and name(pid) in ("gcs_server", "raylet")]
    end_leftovers(tree, set())

    # the rest, then the same command on the local executor for comparison
    process = start(*command, env=RAY_ENV)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    server.reset()
    local = tmp_path / "local"
    process = start(*[a for a in args(prompts, local, server)[:-4]])
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr

    def answers(directory: Path) -> list[tuple[str, int, str]]:
        return sorted((r["id"], r["sample"], r.get("filter", "kept"))
                      for name in ("reasoning.jsonl", "rejected.jsonl")
                      for r in read_records(directory / name))

    drawn = answers(out)
    assert len(drawn) == len(set(drawn)) == 400
    assert drawn == answers(local)
    kept = {r["id"]: r for r in read_records(out / "reasoning.jsonl")}
    assert kept == {r["id"]: r for r in read_records(local / "reasoning.jsonl")}
