"""A stand-in for the small part of vLLM's offline API that selfinstruct uses.

No GPU here, so tests put this folder first on ``sys.path``. It keeps vLLM's shapes
(``LLM``, ``SamplingParams``, ``RequestOutput.outputs[0].text`` …) and records every
call so tests can check that a round went to the engine as one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vllm.sampling_params import SamplingParams

__all__ = ["LLM", "CompletionOutput", "RequestOutput", "SamplingParams"]


def default_responder(prompt: str, params: SamplingParams) -> tuple[str, str]:
    """A thinking-style answer; tests replace ``responder`` for other shapes."""
    return "<think>stand-in</think>ok", "stop"


#: ``responder(prompt_text, params) -> (text, finish_reason)``.
responder: Callable[[str, SamplingParams], tuple[str, str]] = default_responder
#: Every LLM built, so tests can inspect calls.
instances: list[LLM] = []


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class RequestOutput:
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


@dataclass
class LLM:
    model: str
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    seed: int | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        instances.append(self)

    def generate(self, prompts: list[str], sampling_params: list[SamplingParams],
                 use_tqdm: bool = True) -> list[RequestOutput]:
        self.calls.append({"method": "generate", "prompts": list(prompts),
                           "sampling_params": list(sampling_params)})
        return [_output(p, s) for p, s in zip(prompts, sampling_params, strict=True)]

    def chat(self, messages: list[list[dict[str, str]]], sampling_params: list[SamplingParams],
             use_tqdm: bool = True, chat_template_kwargs: dict[str, Any] | None = None,
             ) -> list[RequestOutput]:
        prompts = [conversation[-1]["content"] for conversation in messages]
        self.calls.append({"method": "chat", "prompts": prompts,
                           "sampling_params": list(sampling_params),
                           "chat_template_kwargs": chat_template_kwargs})
        return [_output(p, s) for p, s in zip(prompts, sampling_params, strict=True)]


def _output(prompt: str, params: SamplingParams) -> RequestOutput:
    text, finish = responder(prompt, params)
    return RequestOutput(prompt, list(range(len(prompt.split()))),
                         [CompletionOutput(0, text, list(range(len(text.split()))), finish)])
