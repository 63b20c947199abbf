"""selfinstruct: grow instruction-tuning data from seed tasks with an LLM.

The library is the product; the ``selfinstruct`` command is a thin client of it::

    import selfinstruct

    stats = selfinstruct.generate("runs/en", num_instructions=50,
                                  base_url="http://127.0.0.1:8000/v1", model="Qwen3-8B")
    selfinstruct.classify("runs/en")
    selfinstruct.instances("runs/en", per_task=3)
    selfinstruct.export("runs/en", "alpaca")
    selfinstruct.score("runs/en", base_url=..., model="judge")   # scores.jsonl
    selfinstruct.report("runs/en")                               # report.html

Each stage function takes keyword arguments named like its command's flags and returns
the stage's stats; the ``a``-prefixed twins are coroutines for code that already runs
an event loop.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfinstruct.api import (
        RunResult,
        aclassify,
        adialogue,
        adistill,
        agenerate,
        ainstances,
        areason,
        arun,
        ascore,
        classify,
        dedup,
        dialogue,
        distill,
        export,
        generate,
        import_review,
        instances,
        mix,
        reason,
        report,
        review,
        run,
        score,
    )
    from selfinstruct.errors import UserError
    from selfinstruct.llm import Backend, use_backend
    from selfinstruct.llm.base import BackendError, Completion, Request
    from selfinstruct.llm.fake import FakeBackend
    from selfinstruct.stages.export import ExportResult
    from selfinstruct.stages.generate import GenerateSettings, GenerateStats
    from selfinstruct.stages.per_record import StageStats

#: Where each name of the library lives: imported on first use, so that the command
#: line, which imports this package, does not load every stage (start-up time).
_WHERE = {
    "Backend": "selfinstruct.llm",
    "BackendError": "selfinstruct.llm.base",
    "Completion": "selfinstruct.llm.base",
    "ExportResult": "selfinstruct.stages.export",
    "FakeBackend": "selfinstruct.llm.fake",
    "GenerateSettings": "selfinstruct.stages.generate",
    "GenerateStats": "selfinstruct.stages.generate",
    "Request": "selfinstruct.llm.base",
    "RunResult": "selfinstruct.api",
    "StageStats": "selfinstruct.stages.per_record",
    "UserError": "selfinstruct.errors",
    "aclassify": "selfinstruct.api",
    "adialogue": "selfinstruct.api",
    "adistill": "selfinstruct.api",
    "agenerate": "selfinstruct.api",
    "ainstances": "selfinstruct.api",
    "areason": "selfinstruct.api",
    "arun": "selfinstruct.api",
    "ascore": "selfinstruct.api",
    "classify": "selfinstruct.api",
    "dedup": "selfinstruct.api",
    "dialogue": "selfinstruct.api",
    "distill": "selfinstruct.api",
    "export": "selfinstruct.api",
    "generate": "selfinstruct.api",
    "import_review": "selfinstruct.api",
    "instances": "selfinstruct.api",
    "mix": "selfinstruct.api",
    "reason": "selfinstruct.api",
    "report": "selfinstruct.api",
    "review": "selfinstruct.api",
    "run": "selfinstruct.api",
    "score": "selfinstruct.api",
    "use_backend": "selfinstruct.llm",
}


__all__ = [
    "Backend",
    "BackendError",
    "Completion",
    "ExportResult",
    "FakeBackend",
    "GenerateSettings",
    "GenerateStats",
    "Request",
    "RunResult",
    "StageStats",
    "UserError",
    "__version__",
    "aclassify",
    "adialogue",
    "adistill",
    "agenerate",
    "ainstances",
    "areason",
    "arun",
    "ascore",
    "classify",
    "dedup",
    "dialogue",
    "distill",
    "export",
    "generate",
    "import_review",
    "instances",
    "mix",
    "reason",
    "report",
    "review",
    "run",
    "score",
    "use_backend",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The library's names, imported when first used (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'selfinstruct' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
