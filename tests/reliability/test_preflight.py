"""Before the first request, every command looks at its server once (``GET /models``):
one that is not there, a refused key or a model it does not serve stop the command in
seconds with one line; a server without ``/models`` is used as is. Only 127.0.0.1."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_one_clear_error,
    backend_flags,
    error_lines,
    flat,
    generate_args,
    invoke,
    read_records,
    run_cli,
)

from .faultserver import MODEL, FaultServer

#: The contract: a server that is not there is reported within this many seconds of the
#: command's start, its own start-up included.
NOTHING_THERE_SECONDS = 15


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nobody() -> FaultServer:
    """A server object whose ``base_url`` points at a port nothing listens on."""
    return FaultServer(port=free_port())


def generated_run(server: FaultServer, seeds: Path, out: Path, *, classified: bool) -> None:
    """A run directory of four instructions (classified), made against ``server``."""
    assert invoke(*generate_args(server, seeds, out, 4)).exit_code == 0
    if classified:
        assert invoke("classify", str(out)).exit_code == 0
    server.clear()


def test_nothing_listening_is_reported_in_seconds(tmp_path):
    """The issue's own command: it used to retry for 5 min 40 s."""
    dead = nobody()
    out = tmp_path / "run"
    started = time.monotonic()
    result = run_cli("run", "--base-url", dead.base_url, "--model", "smol", "--api-key", "x",
                     "-o", str(out), "-n", "8", timeout=NOTHING_THERE_SECONDS + 30)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert elapsed < NOTHING_THERE_SECONDS, elapsed
    line = assert_one_clear_error(result.stdout + result.stderr,
                                  f"cannot reach {dead.base_url}: ",
                                  "check that the server is running and that --base-url is right")
    assert "requests in a row failed" not in line
    assert not out.exists()  # stopped before the run directory was made


@pytest.mark.parametrize("command", ["generate", "classify", "instances", "reason"])
def test_every_command_checks_its_server(server: FaultServer, seeds, tmp_path, command):
    out = tmp_path / "run"
    if command != "generate":
        generated_run(server, seeds, out, classified=command == "instances")
    dead = nobody()
    args = (generate_args(dead, seeds, out, 8) if command == "generate"
            else [command, str(out), *backend_flags(dead)])
    started = time.monotonic()
    result = invoke(*args)
    assert time.monotonic() - started < NOTHING_THERE_SECONDS
    assert result.exit_code == 2
    assert_one_clear_error(result.output, f"Error: openai:{MODEL}: cannot reach {dead.base_url}")
    assert read_records(out / "failures.jsonl") == []  # nothing was sent, nothing failed


def test_a_model_the_server_does_not_serve(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    args = generate_args(server, seeds, out, 4, retries=3)
    args[args.index(MODEL)] = "wrong-model"
    result = invoke(*args)
    assert result.exit_code == 2
    assert_one_clear_error(
        result.output, f"{server.base_url} does not serve model 'wrong-model'; "
        f"it serves '{MODEL}' (check --model)")
    assert (server.listings, server.count()) == (1, 0)


def test_a_server_without_a_model_list_is_used_as_is(server: FaultServer, seeds, tmp_path):
    server.models_status = 404
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6))
    assert result.exit_code == 0, result.output
    assert len(read_records(out / "instructions.jsonl")) == 6
    assert server.listings == 1


def test_run_checks_once_for_all_its_stages(server: FaultServer, seeds, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *generate_args(server, seeds, out, 4)[1:], "--per-task", "2")
    assert result.exit_code == 0, result.output
    assert {s.kind for s in server.served} >= {"generate", "classify"}
    assert server.listings == 1


@pytest.mark.parametrize("command", ["generate", "run", "classify", "reason"])
def test_dry_run_does_not_contact_the_server(server: FaultServer, seeds, tmp_path, command):
    out = tmp_path / "run"
    if command in ("classify", "reason"):
        generated_run(server, seeds, out, classified=False)
        args = [command, str(out), *backend_flags(server)]
    else:
        args = [command, *generate_args(server, seeds, out, 4)[1:]]
    result = invoke(*args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert (server.listings, server.count()) == (0, 0)


def test_balanced_servers_go_on_without_the_ones_that_are_down(server: FaultServer, seeds,
                                                               tmp_path):
    dead = nobody()
    out = tmp_path / "run"
    result = invoke(*generate_args(server, seeds, out, 6), "--base-url", dead.base_url)
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert f"1 of 2 servers cannot be reached and sit out a cool-down before they are tried: " \
           f"{dead.base_url} (" in flat(warning)
    assert "going on with the other 1" in flat(result.output)
    assert error_lines(result.output) == []
    assert len(read_records(out / "instructions.jsonl")) == 6
    assert read_records(out / "failures.jsonl") == []  # no request went to the dead one


def test_balanced_servers_all_down(seeds, tmp_path):
    first, second = nobody(), nobody()
    out = tmp_path / "run"
    started = time.monotonic()
    result = invoke(*generate_args(first, seeds, out, 6), "--base-url", second.base_url)
    assert time.monotonic() - started < NOTHING_THERE_SECONDS
    assert result.exit_code == 2
    assert_one_clear_error(result.output, "cannot reach any of the 2 servers: "
                           f"{first.base_url} (", f"{second.base_url} (",
                           "check that they are running")
