"""Crashes: ``kill -9`` at random moments, Ctrl-C / SIGTERM, a full disk, a read-only run.

Real ``python -m selfinstruct`` processes and real signals. After any of them, running
the same command again must finish the job with exactly the requested records: no
duplicate, no torn line, nothing kept twice or lost, and (for the pool) every kept
instruction still novel against everything before it.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import (
    PLANTED_KEY,
    assert_one_clear_error,
    assert_pool_is_novel,
    backend_flags,
    flat,
    generate_args,
    invoke,
    read_records,
    run_cli,
    run_files,
    start,
)

from .faultserver import FaultServer

RUN_FILES = ("instructions.jsonl", "rejected.jsonl", "failures.jsonl",
             "classification.jsonl", "instances.jsonl", "reasoning.jsonl", "distilled.jsonl")


def assert_at_most_the_last_line_torn(out: Path) -> None:
    """What a killed run leaves: every line complete, except perhaps the very last."""
    for name in RUN_FILES:
        path = out / name
        if not path.exists():
            continue
        lines = path.read_bytes().split(b"\n")
        for line in lines[:-1]:
            assert isinstance(json.loads(line), dict), (name, line)


def kill_repeatedly(server: FaultServer, args: list[str], out: Path, *, kills: int,
                    seed: int) -> int:
    """Start ``args`` again and again, each time killing it with SIGKILL at a varied
    moment (sometimes during start-up, mostly after a few answers); return how many
    processes were really killed mid-run."""
    rng = random.Random(seed)
    killed = 0
    for _ in range(kills):
        before = server.count()
        process = start(*args)
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.3, 1.6))
        else:
            wanted = before + rng.randint(1, 5)
            deadline = time.monotonic() + 30
            while server.count() < wanted and process.poll() is None:
                assert time.monotonic() < deadline, "the run never got going"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.12))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
        if process.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert process.returncode == 0, stderr
        assert_at_most_the_last_line_torn(out)
    return killed


def test_generate_survives_kill_9(server: FaultServer, seeds, tmp_path):
    server.latency = (0.03, 0.12)
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 120, concurrency=4)
    killed = kill_repeatedly(server, args, out, kills=8, seed=11)
    assert killed >= 5
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert len(read_records(out / "instructions.jsonl")) == 120
    assert_pool_is_novel(out)
    texts = [r["instruction"] for r in read_records(out / "instructions.jsonl")]
    assert len(set(texts)) == 120
    for name in ("rejected.jsonl", "failures.jsonl"):
        read_records(out / name)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["generate"]["kept"] == 120 and not stats["generate"]["interrupted"]


STAGE_OUTPUT = {"classify": "classification.jsonl", "instances": "instances.jsonl",
                "reason": "reasoning.jsonl"}


def test_distill_survives_kill_9_without_a_duplicate(server: FaultServer, tmp_path):
    """Rows answered with JSON lists of three items, the process killed again and again:
    every (id, item, sample) is written exactly once, and every row ends with its items."""
    rows = tmp_path / "rows.csv"
    rows.write_text("q\n" + "".join(f"question {i}\n" for i in range(30)))
    template = tmp_path / "t.txt"
    template.write_text("Answer as a JSON list of q/a pairs: {q}")
    out = tmp_path / "out"
    args = ["distill", str(rows), "--user-template", str(template), "-o", str(out),
            "--system", "You write Q&A pairs.", "--parse", "json", "--map", "instruction=q",
            "--map", "output=a", "--samples", "2", *backend_flags(server, concurrency=3)]
    server.latency = (0.03, 0.1)
    killed = kill_repeatedly(server, args, out, kills=6, seed=31)
    assert killed >= 3
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    records = read_records(out / "distilled.jsonl")
    keys = [(r["id"], r["item"], r["sample"]) for r in records]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted((f"row{i}", item, sample) for i in range(30)
                                  for item in range(3) for sample in range(2))
    assert read_records(out / "rejected.jsonl") == []


def test_later_stages_survive_kill_9(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    assert invoke(*generate_args(server, seeds, out, 40)).exit_code == 0
    expected = [f"gen_{i:06d}" for i in range(40)]
    server.latency = (0.04, 0.12)
    for number, stage in enumerate(STAGE_OUTPUT):
        # reason reads the pool's instructions (in a run directory it would take the
        # instances) and writes beside them in a directory of its own.
        where = out / "reason" if stage == "reason" else out
        source = [str(out / "instructions.jsonl"), "-o", str(where)] if stage == "reason" else [
            str(out)]
        args = [stage, *source, *backend_flags(server, concurrency=3)]
        killed = kill_repeatedly(server, args, where, kills=6, seed=20 + number)
        assert killed >= 3, stage
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        records = read_records(where / STAGE_OUTPUT[stage])
        assert sorted(r["id"] for r in records) == expected, stage
        assert f"{stage}: 40/40 done" in flat(result.stderr)
    instances = read_records(out / "instances.jsonl")
    assert all(record["instances"] for record in instances)
    for name in ("rejected.jsonl", "failures.jsonl"):
        read_records(out / name)


@pytest.mark.parametrize(("stage", "signum", "code"),
                         [("generate", signal.SIGINT, 130), ("classify", signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_cleanly_and_resume(server: FaultServer, seeds, tmp_path,
                                                    stage, signum, code):
    out = tmp_path / "run"
    n = 30
    if stage == "generate":
        args = generate_args(server, seeds, out, n, concurrency=2)
        output = out / "instructions.jsonl"
    else:
        assert invoke(*generate_args(server, seeds, out, n)).exit_code == 0
        server.clear()
        args = ["classify", str(out), *backend_flags(server, concurrency=2)]
        output = out / "classification.jsonl"
    args += ["--api-key", PLANTED_KEY]
    server.latency = (0.3, 0.4)
    process = start(*args)
    deadline = time.monotonic() + 30
    while server.count() < 3:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signum)
    signalled = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert PLANTED_KEY not in stderr
    # Sending stopped (at most the requests already on their way arrive after the
    # signal); what had arrived was written and counted.
    assert sum(s.time > signalled for s in server.served) <= 2
    kept = len(read_records(output))
    assert 0 < kept < n
    if stage == "generate":
        assert f"kept {kept} new instructions ({kept}/{n}" in flat(stderr)
    else:
        assert f"classify: {kept}/{n} done" in flat(stderr)
    assert json.loads((out / "stats.json").read_text())[stage]["interrupted"] is True
    resume = flat(stderr).split("resume with: ", 1)[1]
    command, hint, _ = resume.partition(" (with the API key in OPENAI_API_KEY)")
    assert command.startswith(f"selfinstruct {stage} ") and hint
    assert "--api-key" not in command
    server.latency = (0.0, 0.0)
    result = run_cli(*shlex.split(command)[1:], env={"OPENAI_API_KEY": PLANTED_KEY})
    assert result.returncode == 0, result.stderr
    records = read_records(output)
    assert len(records) == n and len({r["id"] for r in records}) == n
    if stage == "generate":
        assert_pool_is_novel(out)


def test_a_full_disk_is_a_clear_error_and_damages_nothing(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 6)
    assert run_cli(*args).returncode == 0
    before = (out / "instructions.jsonl").read_bytes()
    # Every write to the rejections file now fails as on a full disk.
    (out / "rejected.jsonl").rename(tmp_path / "rejected.jsonl")
    (out / "rejected.jsonl").symlink_to("/dev/full")
    args[args.index("6")] = "30"
    server.push("duds")  # the first answer of the next run is rejected, so it is written
    result = run_cli(*args)
    assert result.returncode == 2
    assert_one_clear_error(result.stderr, "rejected.jsonl: cannot write (No space left on device)",
                           "Free some disk space")
    after = (out / "instructions.jsonl").read_bytes()
    assert after.startswith(before)
    assert_pool_is_novel(out)
    # Space again: the same command finishes the job.
    (out / "rejected.jsonl").unlink()
    (tmp_path / "rejected.jsonl").rename(out / "rejected.jsonl")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert len(read_records(out / "instructions.jsonl")) == 30
    assert_pool_is_novel(out)


def test_a_full_disk_in_a_later_stage(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    assert invoke(*generate_args(server, seeds, out, 6)).exit_code == 0
    before = run_files(out)
    # The first failure to record hits a full disk. (Not the results file: reading
    # /dev/full never ends.)
    (out / "failures.jsonl").rename(tmp_path / "failures.jsonl")
    (out / "failures.jsonl").symlink_to("/dev/full")
    server.push("ok", "500")
    args = ["classify", str(out), *backend_flags(server)]
    result = run_cli(*args)
    assert result.returncode == 2
    assert_one_clear_error(result.stderr, "failures.jsonl: cannot write (No space left on device)")
    assert "classify: 1/6 done" in flat(result.stderr)  # the summary, above the error
    for name, data in before.items():
        if name.endswith(".jsonl") and name != "failures.jsonl":
            assert (out / name).read_bytes().startswith(data), name  # only appended to
    assert (out / "config.json").read_bytes() == before["config.json"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["generate"] == json.loads(before["stats.json"])["generate"]
    assert stats["classify"]["interrupted"] is True
    assert [r["id"] for r in read_records(out / "classification.jsonl")] == ["gen_000000"]
    (out / "failures.jsonl").unlink()
    (tmp_path / "failures.jsonl").rename(out / "failures.jsonl")
    assert run_cli(*args).returncode == 0
    assert len(read_records(out / "classification.jsonl")) == 6


def read_only_prefix(directory: Path) -> tuple[str, ...]:
    """A command prefix that runs the CLI with ``directory`` read-only. chmod does not
    stop root, so as root the directory is bind-mounted read-only in a private mount
    namespace of the CLI process instead."""
    if os.geteuid() != 0:
        for path in [directory, *directory.rglob("*")]:
            path.chmod(0o500 if path.is_dir() else 0o400)
        return ()
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ("unshare", "--mount", "sh", "-c", script, str(directory))


def test_a_read_only_run_directory_is_a_clear_error(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 4)
    assert invoke(*args).exit_code == 0
    before = run_files(out)
    prefix = read_only_prefix(out)
    try:
        args[args.index("4")] = "10"
        result = run_cli(*args, prefix=prefix)
        assert result.returncode == 2, result.stderr
        assert_one_clear_error(result.stderr, str(out))
        assert "writable" in result.stderr or "Read-only" in result.stderr
        result = run_cli("classify", str(out), *backend_flags(server), prefix=prefix)
        assert result.returncode == 2, result.stderr
        assert_one_clear_error(result.stderr, str(out), "cannot write")
        assert run_files(out) == before
    finally:
        for path in [out, *out.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)


def test_an_output_path_under_a_file_is_a_clear_error(server: FaultServer, seeds, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    result = invoke(*generate_args(server, seeds, blocker / "run", 4))
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "cannot create the run directory")
    assert blocker.read_text() == "not a directory\n"
    assert server.count() == 0

