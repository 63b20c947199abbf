"""The Self-Instruct / Alpaca bootstrap loop: grow a pool of instructions from seeds.

Each request shows the model a few sampled tasks (Self-Instruct: 6 human seeds and 2
machine instructions; Alpaca: 3 seed tasks with input and output) and asks for more.
Every answer is parsed, each candidate goes through the heuristic filters and then the
ROUGE-L filter against the whole pool (seeds and everything kept so far), and survivors
join the pool at once, so the next prompt can already sample them. The loop stops at
exactly N kept instructions; a resumed run continues from what the run directory holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from selfinstruct.errors import StageAborted, UserError
from selfinstruct.filters.instructions import FilterSettings, check_instruction
from selfinstruct.language import Language, LanguageChoice, detect_language
from selfinstruct.llm import BackendKind, BackendSpec
from selfinstruct.llm.base import (
    Api,
    Backend,
    BackendError,
    Completion,
    Request,
    StreamMode,
    StructuredMode,
)
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.layout import CONFIG_FILE, INSTRUCTIONS_FILE, REJECTED_FILE, save_stats
from selfinstruct.runs.seeds import SeedTask, bundled_seed_path, load_seeds
from selfinstruct.runs.store import prepare_out_dir, read_json, read_jsonl, write_json_atomic
from selfinstruct.runs.templates import (
    PromptStyle,
    PromptTemplate,
    load_template,
    render_alpaca,
    render_self_instruct,
)
from selfinstruct.similarity import TokenizerName
from selfinstruct.stages.base import Client, Plan, check_resume
from selfinstruct.stages.executor import Sender, local_executor
from selfinstruct.stages.ledger import RequestStats
from selfinstruct.stages.over_target import over_target_record, pending_over_target
from selfinstruct.stages.pacing import Pacer
from selfinstruct.stages.per_record import (
    failure_record,
    parsed_counts,
    rejected_lines,
    requests_line,
    stage_files,
    throughput,
)
from selfinstruct.text.schemas import AnswerSchema, alpaca_schema, answer_schema, task_list_schema
from selfinstruct.text.structured import read_alpaca_tasks, read_task_list
from selfinstruct.text.tasks import Candidate, parse_alpaca_tasks, parse_numbered_list

#: Answers in a row that add nothing to the pool before the run stops. Hundreds of
#: candidates all rejected means a wrong language, template or filter, or a broken
#: model, not bad luck; asking again would only spend money, forever.
MAX_BARREN_ANSWERS = 100


@dataclass(frozen=True)
class Ask:
    """One prompt in flight: its number and which pool texts it showed the model."""

    number: int
    examples: tuple[str, ...]
    first_number: int


@dataclass
class GenerateStats:
    """Counts for the progress bar, the summary and ``stats.json``."""

    target: int
    kept_before: int
    kept: int = 0
    candidates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: Answers read as JSON (structured output) and as text.
    parsed: Counter[str] = field(default_factory=Counter)
    requests: RequestStats = field(default_factory=RequestStats)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def kept_now(self) -> int:
        """Instructions kept by this invocation (not counting a resumed run's earlier ones)."""
        return self.kept - self.kept_before

    def to_json(self) -> dict[str, Any]:
        """The ``stats.json`` document."""
        return {
            "target": self.target,
            "kept": self.kept,
            "kept_this_session": self.kept_now,
            "candidates": self.candidates,
            "rejected": dict(self.rejected.most_common()),
            "parsed": parsed_counts(self.parsed),
            "requests": vars(self.requests),
            "elapsed_seconds": round(self.elapsed, 3),
            **throughput(self.requests, self.elapsed),
            "interrupted": self.interrupted,
        }

    def progress(self) -> tuple[int, str, int | None]:
        """(kept, detail, target) for the progress bar."""
        return (self.kept, f"{self.requests.sent} req, {self.requests.failed} failed, "
                f"{sum(self.rejected.values())} rejected", self.target)

    def summary(self, out: Path) -> list[str]:
        """Human-readable summary lines of a generate run."""
        return [
            f"kept {self.kept_now} new instructions ({self.kept}/{self.target} in {out})"
            f" from {self.candidates} candidates in {self.elapsed:.1f}s",
            requests_line(self.requests, self.elapsed),
            *rejected_lines(self.rejected),
        ]


class PromptSampler:
    """Draws each prompt's examples from the pool as it is at that moment.

    Self-Instruct mixes 6 human seeds with 2 machine instructions (once the pool has
    some) so the model sees its own recent output; Alpaca shows 3 seed tasks with input
    and output. ``machine`` is the live list of kept instructions, shared with the loop.
    """

    def __init__(
        self,
        config: GenerateConfig,
        seeds: list[SeedTask],
        template: PromptTemplate,
        machine: list[str],
    ) -> None:
        self.config = config
        self.seeds = seeds
        self.template = template
        self.machine = machine
        self.demos = [seed for seed in seeds if seed.instances and seed.instances[0].output]
        # Seeded per resume point, so a resumed run does not replay the first prompts.
        seed = None if config.seed is None else f"{config.seed}/{len(machine)}"
        self._rng = random.Random(seed)
        self.count = 0

    def next(self) -> tuple[Ask, Request]:
        """The next prompt and its request."""
        self.count += 1
        if self.config.prompt_style == "alpaca":
            job, prompt = self._alpaca_prompt()
        else:
            job, prompt = self._self_instruct_prompt()
        request = Request(
            prompt=prompt,
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            seed=None if self.config.seed is None else self._rng.randrange(2**31),
            **answer_schema(self.schema()),
        )
        return job, request

    def schema(self) -> AnswerSchema | None:
        """The JSON shape each answer is asked for in, or None for free text."""
        if not self.config.asks_for_json:
            return None
        if self.config.prompt_style == "alpaca":
            return alpaca_schema(self.config.tasks_per_request)
        return task_list_schema()

    def _self_instruct_prompt(self) -> tuple[Ask, str]:
        n_machine = min(self.config.num_machine_examples, len(self.machine))
        n_total = self.config.num_seed_examples + self.config.num_machine_examples
        n_seed = min(n_total - n_machine, len(self.seeds))
        examples = [seed.instruction for seed in self._rng.sample(self.seeds, n_seed)]
        examples += self._rng.sample(self.machine, n_machine)
        self._rng.shuffle(examples)
        job = Ask(self.count, tuple(examples), first_number=len(examples) + 1)
        return job, render_self_instruct(self.template, examples)

    def _alpaca_prompt(self) -> tuple[Ask, str]:
        chosen = self._rng.sample(self.demos, min(self.config.num_seed_examples, len(self.demos)))
        job = Ask(self.count, tuple(task.id for task in chosen), first_number=len(chosen) + 1)
        return job, render_alpaca(self.template, chosen, self.config.tasks_per_request)


def _candidates(instructions: list[str] | None) -> list[Candidate] | None:
    return None if instructions is None else [Candidate(text) for text in instructions]


class GenerateLoop:
    """One ``generate`` run over one run directory."""

    def __init__(
        self,
        config: GenerateConfig,
        seeds: list[SeedTask],
        backend: Backend,
        template: PromptTemplate,
        filters: FilterSettings,
    ) -> None:
        self.config = config
        self.seeds = seeds
        self.backend = backend
        self.template = template
        self.filters = filters
        self.out = config.out
        # numpy comes with the index: imported here, by the run, not by every command.
        from selfinstruct.similarity.index import SimilarityIndex

        self.index = SimilarityIndex(tokenizer=config.tokenizer)
        for seed in seeds:
            self.index.add(seed.instruction)
        with stage_files(self.out, INSTRUCTIONS_FILE) as files:  # repairs a torn last line
            self.machine = [record["instruction"] for record in read_jsonl(files.results.path)]
        for text in self.machine:
            self.index.add(text)
        self.sampler = PromptSampler(config, seeds, template, self.machine)
        self._sessions = 0
        self._new_session()

    def _new_session(self) -> None:
        """Counts and pacing start afresh for each run(); the pool carries over."""
        self.stats = GenerateStats(target=self.config.num_instructions,
                                   kept_before=len(self.machine))
        self.stats.kept = len(self.machine)
        self.pacer = Pacer(target=self.config.num_instructions)
        self._barren = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The run files open for one session (``run`` uses it; so can a caller that
        hands answers to the loop itself); ``stats.json`` is written when it ends."""
        if self._sessions:
            self._new_session()
        self._sessions += 1
        with stage_files(self.out, INSTRUCTIONS_FILE) as self._files:
            try:
                yield
            finally:
                save_stats(self.out, "generate", self.stats.to_json())

    async def run(
        self, stop: asyncio.Event, progress: Callable[[GenerateStats], None] | None = None
    ) -> GenerateStats:
        """Send prompts until N instructions are kept, ``stop`` is set or failures abort.
        A second ``run`` goes on from the pool the first one left (a new session)."""
        with self.session():
            return await self._run(stop, progress)

    async def _run(self, stop: asyncio.Event,
                   progress: Callable[[GenerateStats], None] | None) -> GenerateStats:
        started = time.monotonic()
        runner: Sender[Ask] = local_executor().sender(
            self.backend,
            concurrency=self.config.concurrency,
            max_consecutive_failures=self.config.max_consecutive_failures,
            on_failure=self._record_failure,
        )
        self.stats.requests = runner.stats

        def handle(job: Ask, completion: Completion) -> bool:
            done = self._handle(job, completion)
            if progress is not None:
                progress(self.stats)
            return done

        from selfinstruct.similarity.index import warm_up_kernel

        warming: list[asyncio.Future[None]] = []
        try:
            self._reconsider_over_target()
            if not self._done():
                # The slow start puts the first answer's handling between the first
                # requests and the next ones: load the filter's kernel while they are out.
                warming.append(asyncio.get_running_loop().run_in_executor(None, warm_up_kernel))
                await runner.run(self._next_job, handle, stop)
            self.stats.interrupted = stop.is_set() and not self._done()
        except UserError as err:
            self.stats.interrupted = True
            raise StageAborted(err, self.stats) from None
        finally:
            self.stats.elapsed = time.monotonic() - started
            await asyncio.gather(*warming, return_exceptions=True)
        return self.stats

    def _done(self) -> bool:
        return self.stats.kept >= self.config.num_instructions

    def _next_job(self) -> tuple[Ask, Request] | None:
        """The next prompt, or None while the requests in flight are expected to bring
        the instructions still missing (the runner asks again as answers arrive)."""
        if not self.pacer.wants_more(self.stats.kept):
            return None
        self.pacer.sent()
        return self.sampler.next()

    def _parse(self, job: Ask, completion: Completion) -> list[Candidate]:
        """The answer's tasks: as JSON when they were asked for as JSON and the answer
        is JSON of that shape, as text otherwise (a model may ignore the schema)."""
        text = completion.text
        alpaca = self.config.prompt_style == "alpaca"
        if self.config.asks_for_json:
            tasks = read_alpaca_tasks(text) if alpaca else _candidates(read_task_list(text))
            if tasks is not None:
                self.stats.parsed["json"] += 1
                return tasks
        self.stats.parsed["text"] += 1
        if alpaca:
            return parse_alpaca_tasks(text, job.first_number)
        return [Candidate(task) for task in parse_numbered_list(text, job.first_number)]

    def _handle(self, job: Ask, completion: Completion) -> bool:
        self.pacer.settled()
        kept_before = self.stats.kept
        candidates = self._parse(job, completion)
        if not candidates:
            self._reject(job, completion.text[:500], "unparseable", "no task found in the answer")
        for position, candidate in enumerate(candidates):
            self.stats.candidates += 1
            if completion.finish_reason == "length" and position == len(candidates) - 1:
                self._reject(job, candidate.instruction, "truncated",
                             "last item of an answer cut by the length limit")
            elif self._done():
                self._set_aside(job, candidate, completion)
            else:
                self._consider(job, candidate, completion)
        if not self._done():
            # Only whole answers teach the pacer what an answer brings.
            self.pacer.observe(self.stats.kept - kept_before)
            self._count_barren(self.stats.kept > kept_before)
        return self._done()

    def _set_aside(self, job: Ask, candidate: Candidate, completion: Completion) -> None:
        """Record a candidate that arrived after the target: it was paid for, and a
        resume with a larger -n considers it (see ``over_target``)."""
        self.stats.rejected["over_target"] += 1
        self._files.rejected.write(over_target_record(
            candidate, request=job.number, source=completion.model or self.backend.name,
            target=self.config.num_instructions, alpaca=self.config.prompt_style == "alpaca",
        ))

    def _reconsider_over_target(self) -> None:
        """Before sending anything, filter the candidates an earlier session set aside
        when it reached a smaller -n; stop as soon as the target is reached."""
        if self._done():
            return
        for item in pending_over_target(self._files.rejected.path, self.machine):
            if self._done():
                return
            self.stats.candidates += 1
            job = Ask(item.request or 0, (), first_number=0)
            self._consider(job, item.candidate, Completion(text="", model=item.source or ""))

    def _count_barren(self, kept_any: bool) -> None:
        self._barren = 0 if kept_any else self._barren + 1
        if self._barren >= MAX_BARREN_ANSWERS:
            reasons = ", ".join(
                f"{name} {count}" for name, count in self.stats.rejected.most_common(3)
            )
            raise UserError(
                f"the last {self._barren} answers added no new instruction (rejected: "
                f"{reasons}; see rejected.jsonl); check --language, the prompt template, the "
                "filter settings and the model, then run the same command again to resume"
            )

    def _consider(self, job: Ask, candidate: Candidate, completion: Completion) -> None:
        rejection = check_instruction(candidate.instruction, self.filters)
        if rejection is not None:
            self._reject(job, candidate.instruction, rejection.filter, rejection.detail)
            return
        threshold = self.config.similarity_threshold
        similar: list[tuple[int, float]] = []
        if self.config.most_similar:
            # One top-k search gives both the filter decision and what the record shows.
            similar = self.index.most_similar_ids(candidate.instruction, self.config.most_similar)
            above = bool(similar) and similar[0][1] > threshold
            witness = (similar[0][1], similar[0][0]) if above else None
        else:
            witness = self.index.first_above(candidate.instruction, threshold)
        if witness is not None:
            score, match = witness
            self._reject(job, candidate.instruction, "similarity",
                         f"ROUGE-L {score:.3f} > {threshold} vs {self.index.text(match)!r}")
            return
        self._keep(job, candidate, completion, similar)

    def _keep(self, job: Ask, candidate: Candidate, completion: Completion,
              similar: list[tuple[int, float]]) -> None:
        record: dict[str, Any] = {
            "id": f"gen_{self.stats.kept:06d}",
            "instruction": candidate.instruction,
        }
        if self.config.prompt_style == "alpaca":
            record["input"] = candidate.input
            record["output"] = candidate.output
        record.update(source=completion.model or self.backend.name, request=job.number)
        if self.config.most_similar:
            record.update(
                max_similarity=similar[0][1] if similar else 0.0,
                most_similar={self.index.text(item): value for item, value in similar},
            )
        self._files.results.write(record)
        self.index.add(candidate.instruction)
        self.machine.append(candidate.instruction)
        self.stats.kept += 1

    def _reject(self, job: Ask, text: str, name: str, detail: str) -> None:
        self.stats.rejected[name] += 1
        self._files.rejected.write(
            {"stage": "generate", "candidate": text, "filter": name, "detail": detail,
             "request": job.number}
        )

    def _record_failure(self, job: Ask, error: BackendError) -> None:
        self.pacer.settled()
        self._files.failures.write(failure_record("generate", job.number, error))


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


@dataclass(frozen=True)
class GenerateSettings:
    """What a ``generate`` run is asked for (its backend comes separately, as
    :class:`~selfinstruct.llm.settings.BackendSettings`). ``None`` leaves the value to
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
    defaults here, :func:`resolve_config` decides
    every field from the settings and the backend's."""

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
    stream: StreamMode

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


#: How many seed examples each style shows when --seed-examples is not given.
STYLE_SEED_EXAMPLES = {"self-instruct": 6, "alpaca": 3}


def resolve_config(
    out: Path, options: GenerateSettings, backend: BackendSettings
) -> tuple[GenerateConfig, list[SeedTask], BackendSpec]:
    """Load the seeds and decide every setting the caller left open: the language from
    the seeds, sampling from the prompt style, length limits from the language, and the
    backend from its flags."""
    spec = resolve_backend({}, backend)
    seeds_path = options.seeds or bundled_seed_path(
        "en" if options.language == "auto" else options.language)
    seeds = load_seeds(seeds_path)
    language: Language = (detect_language(seed.instruction for seed in seeds)
                          if options.language == "auto" else options.language)
    filters = FilterSettings.for_language(language)
    style = STYLE_DEFAULTS[options.prompt_style]
    config = GenerateConfig(
        out=out,
        num_instructions=options.num_instructions,
        seeds=str(seeds_path),
        seeds_sha256=file_sha256(seeds_path),
        language=language,
        prompt_style=options.prompt_style,
        backend=spec.kind,
        model=spec.model,
        base_urls=spec.base_urls,
        api=spec.api,
        concurrency=spec.concurrency,
        similarity_threshold=options.similarity_threshold,
        tokenizer=options.tokenizer,
        most_similar=options.most_similar,
        temperature=_given(options.temperature, float(style["temperature"])),
        top_p=_given(options.top_p, float(style["top_p"])),
        max_tokens=_given(options.max_tokens, int(style["max_tokens"])),
        num_seed_examples=_given(options.seed_examples,
                                 STYLE_SEED_EXAMPLES[options.prompt_style]),
        num_machine_examples=options.machine_examples,
        tasks_per_request=options.tasks_per_request,
        seed=options.seed,
        blacklist=tuple(filters.blacklist) + tuple(options.blacklist),
        min_length=_given(options.min_length, filters.min_length),
        max_length=_given(options.max_length, filters.max_length),
        timeout=spec.timeout,
        max_retries=spec.max_retries,
        max_consecutive_failures=spec.max_failures,
        prompt_dir=str(options.prompt_dir) if options.prompt_dir else None,
        tensor_parallel_size=spec.engine.tensor_parallel_size,
        dtype=spec.engine.dtype,
        max_model_len=spec.engine.max_model_len,
        gpu_memory_utilization=spec.engine.gpu_memory_utilization,
        structured=spec.structured,
        stream=spec.stream,
    )
    return config, seeds, spec


T = TypeVar("T")


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def filter_settings(config: GenerateConfig) -> FilterSettings:
    """The heuristic filters' settings for this run."""
    return dataclasses.replace(
        FilterSettings.for_language(config.language),  # type: ignore[arg-type]
        min_length=config.min_length,
        max_length=config.max_length,
        blacklist=config.blacklist,
    )


def open_run(
    config: GenerateConfig, seeds: list[SeedTask], backend: Backend, *, force: bool
) -> GenerateLoop:
    """Check a resumed run, save the config and load the template."""
    prepare_out_dir(config.out)
    check_pool(config, force=force)
    template = load_template(
        config.prompt_style,
        config.language,  # type: ignore[arg-type]
        Path(config.prompt_dir) if config.prompt_dir else None,
        structured=config.asks_for_json,
    )
    if config.prompt_style == "alpaca" and not any(
        seed.instances and seed.instances[0].output for seed in seeds
    ):
        raise UserError(
            f"{config.seeds}: --prompt-style alpaca shows seed tasks with their output, and "
            "none of these seeds has one; use seeds with instances or --prompt-style "
            "self-instruct"
        )
    write_json_atomic(config.out / CONFIG_FILE, config.to_json())
    return GenerateLoop(config, seeds, backend, template, filter_settings(config))

def check_pool(config: GenerateConfig, *, force: bool) -> None:
    """Refuse to resume with a pool-defining setting changed, unless forced."""
    saved = read_json(config.out / CONFIG_FILE)
    check_resume(str(config.out), saved, config.to_json(), POOL_DEFINING, force=force,
                 consequence="resuming would mix two settings in one pool")


#: Tasks a self-instruct answer usually adds: the list runs to about 16 from 9.
SELF_INSTRUCT_TASKS_PER_ANSWER = 8


def plan_generate(config: GenerateConfig, seeds: list[SeedTask], template: PromptTemplate) -> Plan:
    """The first prompt of a generate run and a lower bound on its requests."""
    path = config.out / INSTRUCTIONS_FILE
    machine = [record["instruction"] for record in read_jsonl(path)]
    remaining = max(0, config.num_instructions - len(machine))
    if remaining == 0:
        return Plan("generate", 0, None, f"{path} already holds {len(machine)}")
    per_answer = (
        config.tasks_per_request if config.prompt_style == "alpaca"
        else SELF_INSTRUCT_TASKS_PER_ANSWER
    )
    _, request = PromptSampler(config, seeds, template, machine).next()
    note = (f" at least, for {remaining} more instructions at up to {per_answer} per answer "
            "before filtering")
    # Candidates an earlier session set aside past its -n are filtered before any
    # request goes out; each may cover one missing instruction.
    waiting = len(pending_over_target(config.out / REJECTED_FILE, machine))
    if waiting:
        note += f", after the {waiting} candidates set aside over an earlier -n"
    requests = math.ceil(max(0, remaining - waiting) / per_answer)
    return Plan("generate", requests, request, note)


@dataclass(frozen=True)
class GenerateJob:
    """A ``generate`` run resolved and checked, its seeds read, nothing sent or written:
    what ``--dry-run`` shows and what :func:`~selfinstruct.stages.base.execute` runs."""

    config: GenerateConfig
    seeds: list[SeedTask]
    spec: BackendSpec
    force: bool = False
    name: str = "generate"

    def plan(self) -> list[str]:
        """The first prompt and a lower bound on the requests."""
        template = load_template(
            self.config.prompt_style, self.config.language,  # type: ignore[arg-type]
            Path(self.config.prompt_dir) if self.config.prompt_dir else None,
            structured=self.config.asks_for_json)
        return plan_generate(self.config, self.seeds, template).lines()

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[GenerateStats], None]) -> GenerateStats:
        """Save the config and grow the pool to ``num_instructions``."""
        loop = open_run(self.config, self.seeds, client.backend, force=self.force)
        return await loop.run(stop, progress)

    def summary(self, stats: GenerateStats) -> list[str]:
        """What was kept, what it cost, what was rejected."""
        return stats.summary(self.config.out)

    def headline(self) -> str:
        """The line a run starts with: the seeds, the prompt style and the model."""
        config = self.config
        return (f"selfinstruct: {config.language} seeds from {config.seeds} "
                f"({len(self.seeds)} tasks), {config.prompt_style} prompts, model "
                f"{config.model or 'embedded SmolLM2-135M-Instruct'}")


def prepare_generate(out: Path, settings: GenerateSettings, backend: BackendSettings, *,
                     force: bool = False) -> GenerateJob:
    """Resolve a ``generate`` run's settings, read its seeds and check a resumed run;
    nothing is sent or written."""
    config, seeds, spec = resolve_config(out, settings, backend)
    check_pool(config, force=force)
    return GenerateJob(config, seeds, spec, force)
