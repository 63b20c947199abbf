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
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from selfinstruct.config import GenerateConfig
from selfinstruct.errors import StageAborted, UserError
from selfinstruct.filters.instructions import FilterSettings, check_instruction
from selfinstruct.llm.base import Backend, BackendError, Completion, Request
from selfinstruct.runs.layout import INSTRUCTIONS_FILE, save_stats
from selfinstruct.runs.seeds import SeedTask
from selfinstruct.runs.store import read_jsonl
from selfinstruct.runs.templates import PromptTemplate, render_alpaca, render_self_instruct
from selfinstruct.stages.over_target import over_target_record, pending_over_target
from selfinstruct.stages.pacing import Pacer
from selfinstruct.stages.per_record import failure_record, parsed_counts, stage_files, throughput
from selfinstruct.stages.runner import RequestStats, Runner
from selfinstruct.text.schemas import AnswerSchema, alpaca_schema, answer_schema, task_list_schema
from selfinstruct.text.structured import read_alpaca_tasks, read_task_list
from selfinstruct.text.tasks import Candidate, parse_alpaca_tasks, parse_numbered_list

#: Answers in a row that add nothing to the pool before the run stops. Hundreds of
#: candidates all rejected means a wrong language, template or filter, or a broken
#: model, not bad luck; asking again would only spend money, forever.
MAX_BARREN_ANSWERS = 100


@dataclass(frozen=True)
class Job:
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

    def next(self) -> tuple[Job, Request]:
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

    def _self_instruct_prompt(self) -> tuple[Job, str]:
        n_machine = min(self.config.num_machine_examples, len(self.machine))
        n_total = self.config.num_seed_examples + self.config.num_machine_examples
        n_seed = min(n_total - n_machine, len(self.seeds))
        examples = [seed.instruction for seed in self._rng.sample(self.seeds, n_seed)]
        examples += self._rng.sample(self.machine, n_machine)
        self._rng.shuffle(examples)
        job = Job(self.count, tuple(examples), first_number=len(examples) + 1)
        return job, render_self_instruct(self.template, examples)

    def _alpaca_prompt(self) -> tuple[Job, str]:
        chosen = self._rng.sample(self.demos, min(self.config.num_seed_examples, len(self.demos)))
        job = Job(self.count, tuple(task.id for task in chosen), first_number=len(chosen) + 1)
        return job, render_alpaca(self.template, chosen, self.config.tasks_per_request)


def _candidates(instructions: list[str] | None) -> list[Candidate] | None:
    return None if instructions is None else [Candidate(text) for text in instructions]


class Bootstrap:
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
        runner: Runner[Job] = Runner(
            self.backend,
            concurrency=self.config.concurrency,
            max_consecutive_failures=self.config.max_consecutive_failures,
            on_failure=self._record_failure,
        )
        self.stats.requests = runner.stats

        def handle(job: Job, completion: Completion) -> bool:
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

    def _next_job(self) -> tuple[Job, Request] | None:
        """The next prompt, or None while the requests in flight are expected to bring
        the instructions still missing (the runner asks again as answers arrive)."""
        if not self.pacer.wants_more(self.stats.kept):
            return None
        self.pacer.sent()
        return self.sampler.next()

    def _parse(self, job: Job, completion: Completion) -> list[Candidate]:
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

    def _handle(self, job: Job, completion: Completion) -> bool:
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

    def _set_aside(self, job: Job, candidate: Candidate, completion: Completion) -> None:
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
            job = Job(item.request or 0, (), first_number=0)
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

    def _consider(self, job: Job, candidate: Candidate, completion: Completion) -> None:
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

    def _keep(self, job: Job, candidate: Candidate, completion: Completion,
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

    def _reject(self, job: Job, text: str, name: str, detail: str) -> None:
        self.stats.rejected[name] += 1
        self._files.rejected.write(
            {"stage": "generate", "candidate": text, "filter": name, "detail": detail,
             "request": job.number}
        )

    def _record_failure(self, job: Job, error: BackendError) -> None:
        self.pacer.settled()
        self._files.failures.write(failure_record("generate", job.number, error))

