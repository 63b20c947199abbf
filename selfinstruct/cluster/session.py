"""Join a Ray cluster, or start a local Ray, for the length of one stage.

With ``--ray-address`` the stage joins that cluster; without it Ray's own rule holds:
``RAY_ADDRESS`` or a cluster ``ray start`` began on this machine, else a local Ray for
this command alone (``--ray-address local`` always starts one). A Ray that the caller
already started (a notebook, a test) is used as it is and left running. The workers of
a Ray started here import the same ``selfinstruct`` as this process (a checkout or an
editable install included); on a cluster, install it on every node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import selfinstruct
from selfinstruct.errors import UserError


def import_ray() -> Any:
    """Ray with Ray Data, or one line on how to install it."""
    try:
        import ray
        import ray.data  # Ray Data is what the stages run on
    except ImportError:
        raise UserError("--executor ray needs Ray Data: pip install 'selfinstruct[ray]'") \
            from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, initialised for this block: joined or started here (and shut down after), or
    the one already running in this process."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        _start(ray, address)
    _quiet(ray)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _start(ray: Any, address: str | None) -> None:
    where = check_address(address)
    try:
        with _backend_log_level("fatal"), _stderr_silenced():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, runtime_env=worker_env())
    except (ConnectionError, RuntimeError, ValueError, SystemExit) as err:
        raise UserError(f"{where}: cannot start or join Ray ({err or 'it gave up'}); check "
                        "the address (ray status on the head node shows it)") from None


def check_address(address: str | None, timeout: float = 5.0) -> str:
    """The cluster's address as the user gave it (for messages), once something answers
    there: an address nothing answers on is one error in seconds, where Ray itself keeps
    trying for minutes, then ends the process without a word."""
    given = address or os.environ.get("RAY_ADDRESS")
    where = f"--ray-address {address}" if address else "RAY_ADDRESS" if given else "Ray"
    if given and given not in ("auto", "local"):
        _check_reachable(given, where, timeout)
    return where


def _check_reachable(address: str, where: str, timeout: float) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"{where}: expected HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise UserError(f"{where}: nothing answers at {host}:{port} "
                        f"({err.strerror or err}); is the head node up? (ray start --head "
                        "there; ray status shows the address)") from None


@contextlib.contextmanager
def _backend_log_level(level: str) -> Iterator[None]:
    """Ray's C++ core prints on this process's stderr (an ``E`` line for every Ray Data
    actor, whose constructor arguments sit in the object store, as they always do);
    its level is read when Ray starts (and said there, on stderr, which
    :func:`_stderr_silenced` drops). A level the user set is left alone."""
    if "RAY_BACKEND_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["RAY_BACKEND_LOG_LEVEL"] = level
    try:
        yield
    finally:
        del os.environ["RAY_BACKEND_LOG_LEVEL"]


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 goes nowhere while Ray starts: its C++ core and its start-up
    notes (a generated token, the local instance) write there directly, and the stage's
    own lines are the ones a user should see. Errors still arrive as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def worker_env() -> dict[str, Any]:
    """The runtime environment of the workers: this process's ``selfinstruct`` first on
    their path, unless it is installed in site-packages, where they find it anyway."""
    root = Path(selfinstruct.__file__).resolve().parent.parent
    if root.name in ("site-packages", "dist-packages"):
        return {}
    paths = [str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def _quiet(ray: Any) -> None:
    """No progress bars, execution banners or tracebacks from Ray Data on the console:
    the stage has its own progress bar and reports a failure as one line (Ray Data's
    own log files, in the Ray session's directory, keep everything)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
