"""The stand-in's ``vllm.sampling_params``: sampling and structured-output parameters.

Recent vLLM (0.10.2 on) calls the structured-output parameter ``structured_outputs``
with :class:`StructuredOutputsParams`; older releases ``guided_decoding`` with
:class:`GuidedDecodingParams`. Both are here; a test deletes one to play the other
release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StructuredOutputsParams:
    json: Any = None


@dataclass
class GuidedDecodingParams:
    json: Any = None


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list[str] | None = None
    seed: int | None = None
    structured_outputs: StructuredOutputsParams | None = None
    guided_decoding: GuidedDecodingParams | None = None
