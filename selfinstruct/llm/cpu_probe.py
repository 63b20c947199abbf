"""Make sure llama.cpp's native code can run on this CPU before it runs in-process.

llama-cpp-python compiles llama.cpp for the machine it is installed on
(``GGML_NATIVE``). Some virtual machines advertise Intel AMX (``amx_tile``, ``amx_int8``)
yet fault in llama.cpp's AMX matmul, which it uses for the weights it repacked at load
time: the whole process dies with a bare ``Illegal instruction`` (or ``Segmentation
fault``, depending on the hypervisor) on the first prompt longer than one token. Python
cannot recover from either signal, so the question is asked in a child process first:

1. a tiny model (the embedded one when installed) answers one short prompt with
   llama.cpp's defaults: it works → nothing changes, AMX machines keep their fast path;
2. it died of such a signal → the same with the extra buffer types off (no AMX / repacked
   weights, the plain CPU kernels): it works → every model in this process is loaded
   that way, and one line says why;
3. that died too → the library was built for another processor, and the error says
   the command that rebuilds it here.

The verdict is cached per llama.cpp build and CPU (``~/.cache/selfinstruct``), so the
probe costs a second or two once, not on every command.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError

Verdict = Literal["default", "no_extra_bufts", "broken"]

#: How a child dies when the CPU cannot run the code it was given.
CRASH_SIGNALS = frozenset({-signal.SIGILL, -signal.SIGSEGV, -signal.SIGBUS})

REBUILD_COMMAND = "pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python"

#: What the child runs: load the model, answer a prompt long enough to go through the
#: batched matmul (a one-token prompt takes another path and does not fault).
_PROBE_CODE = """
import os, sys
import llama_cpp.llama_cpp as native
if sys.argv[2] == "0":
    default = native.llama_model_default_params
    def params():
        value = default()
        value.use_extra_bufts = False
        return value
    native.llama_model_default_params = params
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=os.cpu_count() or 1, verbose=False)
llm.create_completion(" ".join(["the quick brown fox jumps over the lazy dog"] * 6),
                      max_tokens=2, temperature=0.0)
"""

#: Seconds a probe may take (loading a small model and two tokens take about one).
PROBE_TIMEOUT = 120.0


def llama_verdict(model_path: Path, say: Callable[[str], None] | None = None) -> Verdict:
    """How llama.cpp must be loaded on this machine; probes once, then reads the cache."""
    key = _build_key()
    cached = _read_cache(key)
    if cached is not None:
        return cached
    verdict = _probe(model_path)
    if verdict is None:
        return "default"  # the probe failed for another reason; the real load will say why
    _write_cache(key, verdict)
    if verdict == "no_extra_bufts" and say is not None:
        say("note: llama.cpp's AMX / repacked-weight kernels crash on this CPU, so models "
            "are loaded without them (checked once, cached)")
    return verdict


def check_llama(model_path: Path, say: Callable[[str], None] | None = None) -> Verdict:
    """:func:`llama_verdict`, raising the fix as a :class:`UserError` when nothing runs."""
    verdict = llama_verdict(model_path, say)
    if verdict == "broken":
        raise UserError(
            "llama.cpp's native library crashes on this CPU (illegal instruction or "
            "segmentation fault: it was built for another processor); rebuild it for this "
            f"machine: {REBUILD_COMMAND}"
        )
    return verdict


@contextlib.contextmanager
def llama_params(verdict: Verdict) -> Iterator[None]:
    """While a ``Llama`` is built, load its weights as ``verdict`` says."""
    restore = use_verdict_for_process(verdict)
    try:
        yield
    finally:
        restore()


def use_verdict_for_process(verdict: Verdict) -> Callable[[], None]:
    """Load every model of this process as ``verdict`` says, until the returned function
    is called (a server started in this process keeps it for good).

    llama-cpp-python has no argument for llama.cpp's ``use_extra_bufts``; the model
    parameters come from ``llama_model_default_params()``, so that is what is wrapped.
    """
    if verdict == "default":
        return lambda: None
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params

    def params() -> Any:
        value = default()
        value.use_extra_bufts = False
        return value

    native.llama_model_default_params = params

    def restore() -> None:
        native.llama_model_default_params = default

    return restore


#: What :func:`llama_server_command` runs: the probe's verdict for the model, then
#: llama-cpp-python's server in the same process (``--model`` is among its arguments).
_SERVE_CODE = (
    "import runpy, sys; from pathlib import Path; from selfinstruct.llm import cpu_probe; "
    "model = Path(sys.argv[sys.argv.index('--model') + 1]); "
    "cpu_probe.use_verdict_for_process(cpu_probe.check_llama(model)); "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def llama_server_command(model_path: Path, *server_args: str) -> list[str]:
    """The command that starts llama-cpp-python's OpenAI-compatible server on
    ``model_path`` (``server_args``: its own flags, e.g. ``--port``), loading the model
    the way this CPU can run it: a plain ``python -m llama_cpp.server`` dies on the first
    completion where the AMX kernels fault. The e2e tests and the benchmarks start it."""
    return [sys.executable, "-c", _SERVE_CODE, "--model", str(model_path), *server_args]


def _probe(model_path: Path) -> Verdict | None:
    first = _run_probe(model_path, extra_bufts=True)
    if first == 0:
        return "default"
    if first not in CRASH_SIGNALS:
        return None
    second = _run_probe(model_path, extra_bufts=False)
    if second == 0:
        return "no_extra_bufts"
    return "broken" if second in CRASH_SIGNALS else None


def _run_probe(model_path: Path, *, extra_bufts: bool) -> int | None:
    """The child's exit status (negative: the signal that killed it); None on timeout."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE, str(probe_model(model_path)),
             "1" if extra_bufts else "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return done.returncode


def probe_model(model_path: Path) -> Path:
    """The smallest model at hand: the embedded one when it is installed, else the user's."""
    from selfinstruct.llm.local import default_model_path

    try:
        return default_model_path()
    except UserError:
        return model_path


def _build_key() -> str:
    """What the verdict depends on: the compiled library files and the CPU's flags."""
    parts: list[str] = [sys.executable]
    try:
        import llama_cpp

        library = Path(llama_cpp.__file__).parent / "lib"
        for path in sorted(library.glob("*")):
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    except (ImportError, OSError):
        pass
    parts.append(_cpu_flags())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return next((line for line in text.splitlines() if line.startswith("flags")), "")


def cache_file() -> Path:
    """Where verdicts are kept (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "selfinstruct" / "llama-cpu-probe.json"


def _read_cache(key: str) -> Verdict | None:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if value in ("default", "no_extra_bufts", "broken") else None


def _write_cache(key: str, verdict: Verdict) -> None:
    """Remember the verdict; a cache that cannot be written only means probing again."""
    path = cache_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[key] = verdict
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        temporary.replace(path)
