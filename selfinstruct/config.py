"""Typed settings: what a generate run is asked for, what it resolved to, and the rest.

:class:`GenerateOptions` is what a caller asks for (the CLI from its flags, the library
from keyword arguments named like them); ``None`` there means "decide from the seeds,
the prompt style or the language". :class:`GenerateConfig` is the run fully resolved,
validated once and saved as ``config.json``, which is how a run directory remembers
what it is. Resuming with settings that
would make the existing pool inconsistent (another threshold, tokenizer, language, seed
set or filter) is refused with the setting named, unless ``--force`` is given. The API
key is never part of the config.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.llm import BackendKind
from selfinstruct.llm.base import Api, StructuredMode
from selfinstruct.runs.templates import PromptStyle

TokenizerName = Literal["multilingual", "rouge"]
DedupMethod = Literal["rouge", "minhash"]

#: Sampling defaults per prompt style. Alpaca's are its own; Self-Instruct used 0.7 / 0.5
#: with GPT-3, but chat models at top_p 0.5 tend to copy the example list back, so we
#: sample wider (pass --temperature 0.7 --top-p 0.5 for the paper's setting).
STYLE_DEFAULTS: dict[str, dict[str, float | int]] = {
    "self-instruct": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 1024},
    "alpaca": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 3072},
}

#: Settings that change what "a valid pool" means; a resume must not change them silently.
POOL_DEFINING = (
    "language",
    "prompt_style",
    "seeds_sha256",
    "similarity_threshold",
    "tokenizer",
    "blacklist",
    "min_length",
    "max_length",
)

LanguageChoice = Literal["auto", "en", "zh"]


@dataclass(frozen=True)
class GenerateOptions:
    """What a ``generate`` run is asked for (its backend comes separately, as
    :class:`~selfinstruct.stages.pipeline.BackendFlags`). ``None`` leaves the value to
    the prompt style (sampling, examples per prompt) or the language (length limits);
    the defaults here are the CLI's and the library's."""

    num_instructions: int = 100
    seeds: Path | None = None
    language: LanguageChoice = "auto"
    prompt_style: PromptStyle = "self-instruct"
    similarity_threshold: float = 0.7
    tokenizer: TokenizerName = "multilingual"
    most_similar: int = 0
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed_examples: int | None = None
    machine_examples: int = 2
    tasks_per_request: int = 20
    seed: int | None = None
    blacklist: tuple[str, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    prompt_dir: Path | None = None


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that decides what a ``generate`` run sends and keeps, resolved: no
    defaults here, :func:`~selfinstruct.stages.generate_setup.resolve_config` decides
    every field from the options and the backend settings."""

    out: Path
    num_instructions: int
    seeds: str
    seeds_sha256: str
    language: str
    prompt_style: PromptStyle
    backend: BackendKind
    model: str
    base_urls: tuple[str, ...]
    api: Api
    concurrency: int
    similarity_threshold: float
    tokenizer: TokenizerName
    most_similar: int
    temperature: float
    top_p: float
    max_tokens: int
    num_seed_examples: int
    num_machine_examples: int
    tasks_per_request: int
    seed: int | None
    blacklist: tuple[str, ...]
    min_length: int
    max_length: int
    timeout: float
    max_retries: int
    max_consecutive_failures: int
    prompt_dir: str | None
    tensor_parallel_size: int
    dtype: str
    max_model_len: int | None
    gpu_memory_utilization: float
    structured: StructuredMode

    def __post_init__(self) -> None:
        _check(self.num_instructions >= 1, "-n must be at least 1")
        _check(self.concurrency >= 1, "--concurrency must be at least 1")
        _check(
            0.0 <= self.similarity_threshold <= 1.0,
            "--similarity-threshold must be between 0 and 1",
        )
        _check(self.most_similar >= 0, "--most-similar must not be negative")
        _check(self.max_tokens >= 16, "--max-tokens must be at least 16")
        _check(0.0 <= self.temperature <= 2.0, "--temperature must be between 0 and 2")
        _check(0.0 < self.top_p <= 1.0, "--top-p must be in (0, 1]")
        _check(self.num_seed_examples >= 1, "--seed-examples must be at least 1")
        _check(self.num_machine_examples >= 0, "--machine-examples must not be negative")
        _check(self.max_consecutive_failures >= 1, "--max-failures must be at least 1")
        _check(self.max_retries >= 0, "--max-retries must not be negative")
        _check(self.timeout > 0, "--timeout must be positive")
        # Otherwise every candidate is rejected and the run asks for more forever.
        _check(self.min_length <= self.max_length,
               "--min-length must not be greater than --max-length")

    @property
    def asks_for_json(self) -> bool:
        """Whether generate asks for its answers as JSON (structured output).

        Always with ``--structured json``, never with ``off``. With ``auto`` only for the
        alpaca style: a self-instruct answer is a plain list, which the text parser reads
        from any model (every answer of the embedded 135M model), while a schema made that
        model repeat itself and decode several times slower (BENCHMARKS.md, "Structured
        output"), so ``auto`` keeps the list as text.
        """
        if self.structured == "auto":
            return self.prompt_style == "alpaca"
        return self.structured == "json"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings); holds no secret by construction."""
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["blacklist"] = list(self.blacklist)
        data["base_urls"] = list(self.base_urls)
        return data


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def file_sha256(path: Path) -> str:
    """Fingerprint of a seed file, so a resume notices the seeds were edited."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_resume(saved: dict[str, Any], new: GenerateConfig, *, force: bool) -> None:
    """Refuse to resume with a pool-defining setting changed, unless forced."""
    if force:
        return
    current = new.to_json()
    for key in POOL_DEFINING:
        if key in saved and saved[key] != current[key]:
            raise UserError(
                f"{new.out}: this run was started with {key}={saved[key]!r}, now {key}="
                f"{current[key]!r}; resuming would mix two settings in one pool. Use the "
                "same settings, a new --out directory, or --force to resume anyway"
            )


@dataclass(frozen=True)
class MinHashDedupSettings:
    """What ``dedup --method minhash`` reads, how it compares, and where it writes.

    ``field`` is the one text field every step uses (hashing, banding, the summary's
    token counts): a pipeline that hashes one field and filters on another finds "no
    duplicates", so there is deliberately no way to set it per step.
    """

    input: Path
    output: Path
    removed: Path | None = None
    field: str = "instruction"
    id_field: str = "id"
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    num_perm: int | None = None
    seed: int = 1
    tokenizer: TokenizerName = "multilingual"

    def __post_init__(self) -> None:
        _check(self.ngram >= 1, f"--ngram must be at least 1, got {self.ngram}")
        _check(self.bands >= 1, f"--bands must be at least 1, got {self.bands}")
        _check(self.rows >= 1, f"--rows must be at least 1, got {self.rows}")
        _check(self.num_perm is None or self.num_perm == self.bands * self.rows,
               f"--num-perm {self.num_perm} is not --bands x --rows = {self.bands} x "
               f"{self.rows} = {self.bands * self.rows}; each band takes --rows of the "
               "signature's values, so change one of them or leave --num-perm out")
        _check(self.seed >= 0, f"--seed must not be negative, got {self.seed}")
        _check(self.tokenizer in ("multilingual", "rouge"),
               f"unknown tokenizer {self.tokenizer!r}; use one of: multilingual, rouge")
        _check(bool(self.field), "--field must not be empty")
