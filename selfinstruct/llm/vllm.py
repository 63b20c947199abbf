"""The vLLM offline engine in this process (``pip install 'selfinstruct[vllm]'``, a GPU).

vLLM is fastest when it sees many prompts at once, so requests are not sent one by
one: everything the pipeline has in flight when the engine is free goes into one
``LLM.generate`` / ``LLM.chat`` call (a round), and the prompts that arrive while a
round runs form the next one. With ``--concurrency`` set to the batch you want, a
round is "as many prompts as fit, then filter, then the next round". There is no
server-side reasoning parser here; traces are split from the text like any other.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfinstruct.errors import UserError
from selfinstruct.llm.base import (
    Api,
    BackendError,
    Completion,
    Request,
    Usage,
    chat_messages,
    raw_prompt,
    sampling_fields,
    template_kwargs,
)


@dataclass(frozen=True)
class EngineOptions:
    """What ``vllm.LLM`` is built with."""

    tensor_parallel_size: int = 1
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    seed: int | None = None


#: Engines already built in this process, by model and options: ``selfinstruct run`` goes
#: through several stages, and loading a large model once per stage would cost minutes.
_ENGINES: dict[tuple[str, EngineOptions], Any] = {}


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise UserError(
            "--backend vllm needs vLLM and a GPU: pip install 'selfinstruct[vllm]' "
            "(or point --base-url at a running vLLM server instead)"
        ) from None
    return vllm


class VLLMBackend:
    """Batches concurrent requests into rounds on one in-process vLLM engine."""

    def __init__(
        self, model: str, *, api: Api = "chat", engine: EngineOptions | None = None
    ) -> None:
        if not model:
            raise UserError("--backend vllm needs --model (a Hugging Face id or a local path)")
        self._vllm = _import_vllm()
        self._llm: Any = self._engine(model, engine or EngineOptions())
        self.name = f"vllm:{model}"
        self.api = api
        self.rounds: list[int] = []
        self._waiting: list[tuple[Request, asyncio.Future[Completion]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def complete(self, request: Request) -> Completion:
        """Queue the request for the next round and wait for its answer."""
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run_rounds())
        return await future

    async def aclose(self) -> None:
        """Let a running round finish. The engine stays loaded for the next stage of this
        process; its GPU memory is freed when the process ends."""
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)

    def _engine(self, model: str, options: EngineOptions) -> Any:
        key = (model, options)
        if key not in _ENGINES:
            kwargs: dict[str, Any] = {
                "model": model,
                "tensor_parallel_size": options.tensor_parallel_size,
                "dtype": options.dtype,
                "gpu_memory_utilization": options.gpu_memory_utilization,
            }
            if options.max_model_len is not None:
                kwargs["max_model_len"] = options.max_model_len
            if options.seed is not None:
                kwargs["seed"] = options.seed
            _ENGINES[key] = self._vllm.LLM(**kwargs)
        return _ENGINES[key]

    async def _run_rounds(self) -> None:
        while self._waiting:
            # One loop turn lets every request the runner is sending right now join.
            await asyncio.sleep(0)
            batch = [(r, f) for r, f in self._waiting if not f.cancelled()]
            self._waiting = []
            if not batch:
                continue
            self.rounds.append(len(batch))
            try:
                completions = await asyncio.to_thread(self._generate, [r for r, _ in batch])
            except Exception as err:  # the engine's errors have no common type
                failure = err if isinstance(err, BackendError) else BackendError(
                    f"vLLM failed: {err}", retryable=False)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for (_, future), completion in zip(batch, completions, strict=True):
                if not future.done():
                    future.set_result(completion)

    def _generate(self, requests: Sequence[Request]) -> list[Completion]:
        params = [self._sampling_params(r) for r in requests]
        if self.api == "completions":
            outputs = self._llm.generate([raw_prompt(r) for r in requests], params,
                                         use_tqdm=False)
            return [self._completion(output) for output in outputs]
        # LLM.chat takes one set of template arguments per call: one call per distinct set.
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            key = json.dumps(template_kwargs(request), sort_keys=True)
            groups.setdefault(key, []).append(i)
        results: dict[int, Completion] = {}
        for key, group in groups.items():
            kwargs: dict[str, Any] = {"use_tqdm": False}
            if key != "{}":
                kwargs["chat_template_kwargs"] = json.loads(key)
            outputs = self._llm.chat(
                [chat_messages(requests[i]) for i in group],
                [params[i] for i in group],
                **kwargs,
            )
            for i, output in zip(group, outputs, strict=True):
                results[i] = self._completion(output)
        return [results[i] for i in range(len(requests))]

    def _sampling_params(self, request: Request) -> Any:
        """``SamplingParams`` of the request; its extra body's fields (``top_k``,
        ``repetition_penalty`` …) are ``SamplingParams`` fields too, except the chat
        template's arguments, which go to ``LLM.chat``."""
        extra = {k: v for k, v in request.extra_body.items() if k != "chat_template_kwargs"}
        fields: dict[str, Any] = {
            **sampling_fields(request),
            "max_tokens": request.max_tokens,
            "stop": list(request.stop) or None,
            "seed": request.seed,
            **extra,
        }
        if request.schema is not None:
            fields.update(self._structured(request.schema))
        try:
            return self._vllm.SamplingParams(**fields)
        except TypeError as err:
            raise BackendError(f"vLLM's SamplingParams refused the extra body "
                               f"{sorted(extra)}: {err}", retryable=False) from None

    def _structured(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The sampling parameter that makes the answer JSON of ``schema``.

        vLLM renamed it: ``structured_outputs=StructuredOutputsParams(json=…)`` since
        0.10.2 (the old name was removed in 0.12), ``guided_decoding=
        GuidedDecodingParams(json=…)`` before; whichever the installed vLLM has is used.
        """
        module = importlib.import_module(f"{self._vllm.__name__}.sampling_params")
        if hasattr(module, "StructuredOutputsParams"):
            return {"structured_outputs": module.StructuredOutputsParams(json=dict(schema))}
        if hasattr(module, "GuidedDecodingParams"):
            return {"guided_decoding": module.GuidedDecodingParams(json=dict(schema))}
        raise UserError(
            "this vLLM has no structured output (StructuredOutputsParams or "
            "GuidedDecodingParams); upgrade vLLM or pass --structured off"
        )

    def _completion(self, output: Any) -> Completion:
        choice = output.outputs[0]
        return Completion(
            text=choice.text,
            finish_reason=choice.finish_reason,
            usage=Usage(len(output.prompt_token_ids or ()), len(choice.token_ids or ())),
            model=self.name,
        )
