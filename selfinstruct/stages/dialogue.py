"""Dialogue: multi-turn conversations about the user's topics, for chat fine-tuning.

Two ways to make one (``--mode``):

* ``script`` (the default): one request per conversation; the model writes all
  ``--turns`` exchanges at once, as JSON where the backend holds answers to a schema,
  as ``User:`` / ``Assistant:`` text otherwise. ``--outline`` asks for a plan first and
  then for the conversation that follows it (two requests).
* ``self-chat``: a user simulator (its own prompt with the persona and the topic; its
  own model with ``--user-model`` / ``--user-base-url``) and the assistant (with the
  ``--system`` prompt) take turns, one request a turn. The simulator ends the
  conversation early by writing ``[END]``.

Both run on the row-stage machinery: C requests in flight across conversations, a
conversation going to the back of the queue after each answer until it is finished.
Every answer of a conversation still being written (a turn, an outline) is appended to
``turns.jsonl`` as it arrives, so a resumed run (after Ctrl-C or ``kill -9``) rebuilds
each conversation from its journal and asks only for the next turn: no turn is paid
twice. A finished conversation goes through the filters
(:mod:`selfinstruct.filters.dialogues`) to ``dialogues.jsonl`` or, with the filter that
rejected it, to ``rejected.jsonl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from selfinstruct.errors import UserError
from selfinstruct.filters.dialogues import (
    Dialogue,
    DialogueFilterSettings,
    check_dialogue,
    exchanges,
)
from selfinstruct.filters.instructions import Rejection
from selfinstruct.language import Language, LanguageChoice, detect_language
from selfinstruct.llm import BackendSpec
from selfinstruct.llm.base import Backend, Completion, Request
from selfinstruct.llm.settings import BackendSettings, resolve_backend
from selfinstruct.runs.bundled import data_dir
from selfinstruct.runs.layout import (
    CONFIG_FILE,
    DIALOGUES_FILE,
    REJECTED_FILE,
    TURNS_FILE,
    save_config_section,
)
from selfinstruct.runs.store import JsonlAppender, prepare_out_dir, read_json, read_jsonl
from selfinstruct.runs.templates import PromptTemplate, load_template
from selfinstruct.runs.topics import Topic, load_personas, load_topics
from selfinstruct.stages.base import Client, Connection, Plan, connect
from selfinstruct.stages.base import check_resume as shared_check_resume
from selfinstruct.stages.per_record import StageFiles, StageStats, run_stage, stage_files
from selfinstruct.stages.teacher import system_prompt
from selfinstruct.text.dialogues import STOP_PHRASE, Turn, end_of_chat, parse_dialogue
from selfinstruct.text.schemas import answer_schema, dialogue_schema

DialogueMode = Literal["script", "self-chat"]

#: What the simulated user is told to begin with (the simulator's chat must open with a
#: user message; the assistant's answers come to it as user messages after that).
OPENING: dict[Language, str] = {
    "en": "Write your first message to the assistant now.",
    "zh": "现在写下你发给助手的第一条消息。",
}
#: How the prompt names an assistant without a system prompt.
_NO_SYSTEM: dict[Language, str] = {"en": "(none: a helpful, honest assistant)",
                                   "zh": "（无：一个乐于助人、诚实的助手）"}
#: How the script prompt introduces the outline written first (``--outline``).
_OUTLINE: dict[Language, str] = {"en": "\nFollow this outline, one exchange per line:\n{}\n",
                                 "zh": "\n请按照下面的提纲写，每行对应一轮：\n{}\n"}
#: Answer tokens of the outline request.
OUTLINE_TOKENS = 1024


@dataclass(frozen=True)
class DialogueSettings:
    """Everything that decides what ``dialogue`` sends and keeps.

    Defaults: four exchanges, at least two kept; one conversation per topic; a warm
    temperature (0.8), since reused topics should not give the same conversation; a
    whole script may take 4096 answer tokens, one self-chat turn 1024.
    """

    mode: DialogueMode = "script"
    turns: int = 4
    #: None: two exchanges (one, when only one is asked for).
    min_turns: int | None = None
    #: ``-n``: conversations in all (None: one per topic; more reuse the topics).
    num_dialogues: int | None = None
    outline: bool = False
    system: str | None = None
    #: A file of personas, one a line (None: ``prompts/LANG/dialogue_personas.txt``).
    personas: Path | None = None
    #: The field of a dataset's records that holds the topic.
    field: str = "instruction"
    language: LanguageChoice = "auto"
    max_turn_similarity: float = 0.7
    drift_floor: float | None = None
    stop_phrase: str = STOP_PHRASE
    temperature: float | None = 0.8
    #: None: 4096 for a script, 1024 for one self-chat turn.
    max_tokens: int | None = None
    seed: int = 0
    prompt_dir: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.mode in ("script", "self-chat"), f"--mode {self.mode}: expected script or "
             "self-chat"),
            (self.turns >= 1, "--turns must be at least 1"),
            (self.min_turns is None or 1 <= self.min_turns <= self.turns,
             "--min-turns must be between 1 and --turns"),
            (self.num_dialogues is None or self.num_dialogues >= 1, "-n must be at least 1"),
            (not self.outline or self.mode == "script", "--outline plans a script; it does "
             "not go with --mode self-chat"),
            (self.language in ("auto", "en", "zh"), f"--language {self.language}: expected "
             "auto, en or zh"),
            (0.0 <= self.max_turn_similarity <= 1.0, "--max-turn-similarity must be "
             "between 0 and 1"),
            (self.drift_floor is None or 0.0 <= self.drift_floor <= 1.0, "--drift-floor "
             "must be between 0 and 1"),
            (bool(self.stop_phrase.strip()), "--stop-phrase must not be empty"),
            (self.temperature is None or 0.0 <= self.temperature <= 2.0,
             "--temperature must be between 0 and 2"),
            (self.max_tokens is None or self.max_tokens >= 16, "--max-tokens must be at "
             "least 16"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> DialogueSettings:
        """The settings from keywords named like ``dialogue``'s flags (``system_file``
        read into ``system``); a keyword that is not a flag is a ``TypeError``."""
        own = dict(values)
        system_file = own.pop("system_file", None)
        unknown = sorted(set(own) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"dialogue() got an unexpected keyword argument {unknown[0]!r}")
        own["system"] = system_prompt(own.get("system"),
                                      Path(system_file) if system_file is not None else None)
        for name in ("personas", "prompt_dir"):
            if own.get(name) is not None:
                own[name] = Path(own[name])
        return cls(**own)

    @property
    def answer_tokens(self) -> int:
        """Answer tokens of one script or one turn."""
        if self.max_tokens is not None:
            return self.max_tokens
        return 4096 if self.mode == "script" else 1024

    def filters(self, language: Language) -> DialogueFilterSettings:
        """The filter bounds for a conversation in ``language``."""
        least = self.min_turns if self.min_turns is not None else min(2, self.turns)
        return DialogueFilterSettings(least, self.max_turn_similarity, self.drift_floor,
                                      language)


@dataclass(frozen=True)
class Spec:
    """One conversation to have: its id, topic, who the user is, the assistant's system
    prompt, the language it is in and the seed of its requests."""

    id: str
    topic: str
    persona: str
    system: str | None
    language: Language
    seed: int


@dataclass
class State:
    """A conversation so far, as its journal holds it."""

    spec: Spec
    turns: list[Turn] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    outline: str | None = None
    #: The simulated user wrote the stop phrase.
    ended: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    models: dict[str, str] = field(default_factory=dict)
    #: Answers so far (turns and outline): the ``step`` of the next journal line.
    steps: int = 0

    def record(self, entry: Mapping[str, Any]) -> None:
        """Add one journal line (an answer) to the state."""
        kind = entry["kind"]
        usage = entry.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens", 0))
        self.completion_tokens += int(usage.get("completion_tokens", 0))
        self.models.setdefault(kind, str(entry.get("model", "")))
        self.steps += 1
        if kind == "outline":
            self.outline = str(entry["content"])
            return
        if entry.get("ended"):
            self.ended = True
            return
        self.turns.append(Turn(kind, str(entry["content"])))
        self.finish_reasons.append(entry.get("finish_reason"))


@dataclass(frozen=True)
class Templates:
    """The prompts of one language."""

    script: PromptTemplate
    outline: PromptTemplate
    user: PromptTemplate


class UserTurn(Request):
    """A request the simulated user answers: :class:`Speakers` sends it to the user's
    model when it has one of its own."""


class Speakers:
    """The assistant's backend and the simulated user's, as one backend for the runner."""

    def __init__(self, assistant: Backend, user: Backend) -> None:
        self.assistant = assistant
        self.user = user
        self.name = assistant.name

    async def complete(self, request: Request) -> Completion:
        """Send a :class:`UserTurn` to the user's model, anything else to the assistant's."""
        backend = self.user if isinstance(request, UserTurn) else self.assistant
        return await backend.complete(request)

    async def aclose(self) -> None:
        """Each backend is closed by whoever opened it."""


@dataclass(frozen=True)
class DialogueJob:
    """A ``dialogue`` run, ready to send: topics read, conversations planned, prompts
    loaded and checked, resume checked."""

    source: Path
    out_dir: Path
    settings: DialogueSettings
    specs: tuple[Spec, ...]
    templates: Mapping[Language, Templates]
    #: The ``dialogue`` section of ``config.json``.
    config: dict[str, Any]
    spec: BackendSpec
    #: The simulated user's own model (None: the assistant's model plays the user too).
    user: Connection | None = None
    user_spec: BackendSpec | None = None
    name: str = "dialogue"

    @property
    def structured(self) -> bool:
        """Whether scripts are asked for as JSON (``--structured`` not ``off``)."""
        return self.spec.structured != "off"

    def pending(self) -> list[State]:
        """The conversations not finished yet, each rebuilt from the journal."""
        done = {str(r["id"]) for r in read_jsonl(self.out_dir / DIALOGUES_FILE)}
        done.update(str(r["id"]) for r in read_jsonl(self.out_dir / REJECTED_FILE)
                    if r.get("stage") == self.name)
        states = {spec.id: State(spec) for spec in self.specs if spec.id not in done}
        for entry in _journal(self.out_dir / TURNS_FILE, states):
            states[str(entry["id"])].record(entry)
        return list(states.values())

    def next_request(self, state: State) -> Request | None:
        """The request that moves ``state`` on, or None when it is finished."""
        spec, settings = state.spec, self.settings
        templates = self.templates[spec.language]
        if settings.mode == "script":
            if settings.outline and state.outline is None:
                return self._request(spec, templates.outline.render(**self._fields(spec)),
                                     state.steps, max_tokens=OUTLINE_TOKENS)
            if state.turns or state.ended:
                return None
            outline = (_OUTLINE[spec.language].format(state.outline)
                       if state.outline else "")
            prompt = templates.script.render(**self._fields(spec), outline=outline)
            schema = dialogue_schema(settings.turns) if self.structured else None
            return self._request(spec, prompt, state.steps, **answer_schema(schema))
        if _finished(state, settings.turns):
            return None
        if len(state.turns) % 2 == 0:
            return self._user_turn(state, templates.user)
        history = tuple((turn.role, turn.content) for turn in state.turns[:-1])
        return self._request(spec, state.turns[-1].content, state.steps, system=spec.system,
                             history=history)

    def _fields(self, spec: Spec) -> dict[str, Any]:
        return {"topic": spec.topic, "persona": spec.persona,
                "system": spec.system or _NO_SYSTEM[spec.language], "turns": self.settings.turns}

    def _user_turn(self, state: State, template: PromptTemplate) -> Request:
        """The simulated user's next message: its own system prompt, the conversation with
        the roles turned round (its messages are the assistant's side of its chat)."""
        spec = state.spec
        flipped = {"user": "assistant", "assistant": "user"}
        history: list[tuple[str, str]] = []
        prompt = OPENING[spec.language]
        if state.turns:
            history = [("user", prompt)] + [(flipped[t.role], t.content)
                                            for t in state.turns[:-1]]
            prompt = state.turns[-1].content
        system = template.render(topic=spec.topic, persona=spec.persona,
                                 turns=self.settings.turns, stop=self.settings.stop_phrase)
        return UserTurn(prompt=prompt, max_tokens=self.settings.answer_tokens,
                        temperature=self.settings.temperature, top_p=1.0,
                        seed=_seed(spec.seed, state.steps), system=system,
                        history=tuple(history))

    def _request(self, spec: Spec, prompt: str, step: int, *, max_tokens: int | None = None,
                 **fields: Any) -> Request:
        return Request(prompt=prompt, max_tokens=max_tokens or self.settings.answer_tokens,
                       temperature=self.settings.temperature, top_p=1.0,
                       seed=_seed(spec.seed, step), **fields)

    def plan(self) -> list[str]:
        """The requests still to send (a script: one per conversation, two with
        ``--outline``; self-chat: at most two per exchange) and the first prompt."""
        states = self.pending()
        first = next((r for s in states if (r := self.next_request(s)) is not None), None)
        if self.settings.mode == "script":
            requests = sum((self.settings.outline and s.outline is None) + 1 for s in states)
            note = f" ({len(states)} conversations of {self.settings.turns} exchanges)"
        else:
            requests = sum(2 * self.settings.turns - len(s.turns) for s in states)
            note = (f" at most ({len(states)} conversations of up to {self.settings.turns} "
                    f"exchanges, one request a turn)")
        lines = Plan(self.name, requests if first else 0, first,
                     note if first else "all done").lines()
        if first is not None and first.system:
            lines[1:1] = ["system prompt of the first request:", "-" * 40, first.system,
                          "-" * 40]
        if self.user_spec is not None:
            lines.append(f"the simulated user: {self.user_spec.kind}:{self.user_spec.model}")
        return lines

    async def run(self, client: Client, stop: asyncio.Event,
                  progress: Callable[[StageStats], None]) -> StageStats:
        """Have every conversation not finished yet; the simulated user's own model (if
        any) is connected here and released at the end."""
        if self.user is None or self.user_spec is None:
            return await dialogue_run(self, client, stop, progress)
        user = await connect(self.user_spec, self.user)
        try:
            both = Client(Speakers(client.backend, user.backend), client.settings)
            return await dialogue_run(self, both, stop, progress)
        finally:
            if user.backend is not self.user.given:
                await user.backend.aclose()

    def summary(self, stats: StageStats) -> list[str]:
        """Counts, then where the conversations are and how long they came out."""
        lengths = sorted((int(n.removeprefix("exchanges_")), c)
                         for n, c in stats.seen.items() if n.startswith("exchanges_"))
        shape = ", ".join(f"{n} exchanges x{c}" for n, c in lengths) or "none"
        return [*stats.summary(),
                f"dialogue: {stats.seen.get('kept', 0)} conversations written to "
                f"{self.out_dir / DIALOGUES_FILE} this session ({shape}), "
                f"{sum(stats.rejected.values())} rejected"]


def _journal(path: Path, states: Mapping[str, State]) -> Iterator[dict[str, Any]]:
    """The journal lines of the unfinished conversations, in order, each step once."""
    seen: set[tuple[str, int]] = set()
    for entry in read_jsonl(path):
        key = (str(entry.get("id")), int(entry.get("step", -1)))
        if key[0] in states and key not in seen and key[1] == states[key[0]].steps:
            seen.add(key)
            yield entry


def _finished(state: State, turns: int) -> bool:
    """A self-chat conversation is over: all exchanges had, the user said the stop
    phrase, or the last turn was empty or cut short (it will be rejected anyway)."""
    if state.ended or exchanges(state.turns) >= turns:
        return True
    last = state.turns[-1] if state.turns else None
    return last is not None and (not last.content or state.finish_reasons[-1] == "length")


def _seed(seed: int, step: int) -> int:
    return zlib.crc32(f"{seed}/{step}".encode())


async def dialogue_run(job: DialogueJob, client: Client, stop: asyncio.Event,
                       progress: Callable[[StageStats], None] | None = None) -> StageStats:
    """Send what every unfinished conversation of ``job`` needs next, until each is
    finished (kept or rejected); resumable after any answer."""
    out = job.out_dir
    prepare_out_dir(out)
    models = {"model": job.spec.model or client.backend.name}
    if job.user_spec is not None:
        models["user_model"] = job.user_spec.model
    save_config_section(out, job.name, {**job.config, **models})
    with stage_files(out, DIALOGUES_FILE) as files, JsonlAppender(out / TURNS_FILE) as journal:
        states = job.pending()
        stats = StageStats(job.name, total=len(job.specs),
                           done_before=len(job.specs) - len(states))
        pending = []
        for state in states:
            if job.next_request(state) is None:  # answered in full before a kill
                finish(job, state, files, stats)
                stats.done += 1
            else:
                pending.append({"id": state.spec.id, "state": state})

        def make_request(item: dict[str, Any]) -> Request:
            request = job.next_request(item["state"])
            assert request is not None  # only unfinished conversations are queued
            return request

        def handle(item: dict[str, Any], completion: Completion) -> dict[str, Any] | None:
            state: State = item["state"]
            entry = journal_entry(job, state, completion)
            if job.settings.mode == "self-chat" or entry["kind"] == "outline":
                journal.write(entry)
            state.record(entry)
            if job.next_request(state) is not None:
                return item
            finish(job, state, files, stats, answer=completion.text)
            return None

        return await run_stage(
            pending, backend=client.backend, settings=client.settings,
            make_request=make_request, handle=handle, files=files, stats=stats, stop=stop,
            progress=progress, again_first=True,
        )


def journal_entry(job: DialogueJob, state: State, completion: Completion) -> dict[str, Any]:
    """The journal line of one answer: which conversation and step, what it is (an
    outline, a user or an assistant turn, or a script), its text and its cost."""
    kind = _kind(job, state)
    text = completion.text.strip()
    entry: dict[str, Any] = {"id": state.spec.id, "step": state.steps, "kind": kind}
    if kind == "user":
        text, ended = end_of_chat(text, job.settings.stop_phrase)
        if ended:
            entry["ended"] = True
    entry.update(content=text, finish_reason=completion.finish_reason,
                 model=completion.model or job.spec.model,
                 usage={"prompt_tokens": completion.usage.prompt_tokens,
                        "completion_tokens": completion.usage.completion_tokens})
    return entry


def _kind(job: DialogueJob, state: State) -> str:
    if job.settings.mode == "self-chat":
        return "user" if len(state.turns) % 2 == 0 else "assistant"
    return "outline" if job.settings.outline and state.outline is None else "script"


def finish(job: DialogueJob, state: State, files: StageFiles, stats: StageStats, *,
           answer: str | None = None) -> None:
    """Read a script into turns, run the filters, and write the conversation to
    ``dialogues.jsonl`` or ``rejected.jsonl``."""
    spec, settings = state.spec, job.settings
    record = dialogue_record(job, state)
    turns: list[Turn] | None = state.turns
    if settings.mode == "script":
        script = parse_dialogue(state.turns[0].content if state.turns else "")
        stats.parsed["json" if script.json else "text"] += 1
        turns = script.turns
        if turns is not None:
            turns, trimmed = script_turns(turns, settings.turns)
            stats.seen["trimmed_turns"] += trimmed
    if turns is None:
        rejection: Rejection | None = Rejection(
            "unparseable", "no conversation in the answer (neither JSON turns nor "
            "User:/Assistant: paragraphs)")
    else:
        record["messages"] = [{"role": t.role, "content": t.content} for t in turns]
        rejection = check_dialogue(Dialogue(spec.topic, turns, state.finish_reasons),
                                   settings.filters(spec.language))
    if rejection is None:
        files.results.write(record)
        stats.seen["kept"] += 1
        stats.seen[f"exchanges_{exchanges(turns or [])}"] += 1
        return
    files.rejected.write({"stage": job.name, "filter": rejection.filter,
                          "detail": rejection.detail, **record,
                          **({"answer": answer} if answer is not None else {})})
    stats.rejected[rejection.filter] += 1


def script_turns(turns: Sequence[Turn], exchanges_asked: int) -> tuple[list[Turn], int]:
    """A script's turns without a leading system message, cut to the exchanges asked
    for when the model wrote on past them (it is not rejected for that); and how many
    turns were cut."""
    kept = list(turns)
    while kept and kept[0].role == "system":
        kept.pop(0)
    size = 2 * exchanges_asked
    if len(kept) > size and kept[size - 1].role == "assistant":
        return kept[:size], len(kept) - size
    return kept, 0


def dialogue_record(job: DialogueJob, state: State) -> dict[str, Any]:
    """A conversation's line of ``dialogues.jsonl`` (its messages are added once read)."""
    spec = state.spec
    script = job.settings.mode == "script"
    record: dict[str, Any] = {
        "id": spec.id, "topic": spec.topic, "persona": spec.persona, "system": spec.system,
        "messages": [] if script else [{"role": t.role, "content": t.content}
                                        for t in state.turns],
        "model": state.models.get("script" if script else "assistant", job.spec.model),
        "mode": job.settings.mode,
        "language": spec.language,
        "usage": {"prompt_tokens": state.prompt_tokens,
                  "completion_tokens": state.completion_tokens},
    }
    if state.outline is not None:
        record["outline"] = state.outline
    if "user" in state.models and job.user_spec is not None:
        record["user_model"] = state.models["user"]
    if state.ended:
        record["ended_by"] = "user"
    return record


#: Settings that change what a conversation is; a resume must not change them silently.
RECORD_DEFINING = ("input_sha256", "field", "mode", "turns", "outline", "system",
                   "personas_sha256", "language", "stop_phrase")


def prepare_dialogue(source: Path, out_dir: Path, values: Mapping[str, Any],
                     backend: BackendSettings, *, user: BackendSettings | None = None,
                     user_backend: Backend | None = None,
                     force: bool = False) -> DialogueJob:
    """Read the topics, plan the conversations, load the prompts and check a resumed run
    (``values``: keywords named like the flags); nothing is sent or written. ``user``
    (``--user-model`` / ``--user-base-url``) or ``user_backend`` (a ready backend) gives
    the simulated user a model of its own."""
    settings = DialogueSettings.of(values)
    spec = resolve_backend({}, backend)
    if backend.executor.executor == "ray" and settings.mode == "self-chat":
        raise UserError("--executor ray sends scripts (--mode script); self-chat runs in "
                        "this process")
    topics = load_topics(source, field=settings.field)
    specs = plan_dialogues(topics, settings)
    structured = settings.mode == "script" and spec.structured != "off"
    templates = {language: _templates(language, settings, structured=structured)
                 for language in sorted({s.language for s in specs})}
    config = dialogue_config(source, settings)
    if not force:
        check_resume(out_dir, config)
    job = DialogueJob(source, out_dir, settings, tuple(specs), templates, config, spec)
    if user is None and user_backend is None:
        return job
    if settings.mode != "self-chat":
        raise UserError("--user-model and --user-base-url give the simulated user of "
                        "--mode self-chat its own model; a script has no simulated user")
    user_settings = user or backend
    user_spec = resolve_backend({}, user_settings)
    return dataclasses.replace(job, user=Connection(user_settings, user_backend),
                               user_spec=user_spec)


def user_backend_settings(backend: BackendSettings, model: str | None,
                          base_url: str | Sequence[str] | None) -> BackendSettings | None:
    """The simulated user's backend: the assistant's with ``--user-model`` and
    ``--user-base-url`` in place of its own (None when neither is given)."""
    if model is None and not base_url:
        return None
    urls = (base_url,) if isinstance(base_url, str) else tuple(base_url or ())
    return dataclasses.replace(
        backend, model=model or backend.model,
        base_url=urls or backend.base_url,
        base_url_file=None if urls else backend.base_url_file,
        executor=dataclasses.replace(backend.executor, executor="local", ray_address=None,
                                     ray_actors=None),
    )


def plan_dialogues(topics: Sequence[Topic], settings: DialogueSettings) -> list[Spec]:
    """The conversations to have: one per topic, or ``-n`` of them, the topics reused
    in order, each reuse with the next persona of the list and a seed of its own."""
    count = settings.num_dialogues or len(topics)
    personas: dict[Language, list[str]] = {}
    specs = []
    for number in range(count):
        position, round_ = number % len(topics), number // len(topics)
        topic = topics[position]
        language = (settings.language if settings.language != "auto"
                    else detect_language([topic.topic]))
        pool = personas.setdefault(language, _personas(settings.personas, language))
        persona = (topic.persona if topic.persona and round_ == 0
                   else pool[(position + round_) % len(pool)])
        key = f"{topic.id}/{round_}"
        specs.append(Spec(key, topic.topic, persona, topic.system or settings.system, language,
                          zlib.crc32(f"{settings.seed}/{key}".encode())))
    return specs


def _personas(path: Path | None, language: Language) -> list[str]:
    return load_personas(path or data_dir("prompts") / language / "dialogue_personas.txt")


def _templates(language: Language, settings: DialogueSettings, *,
               structured: bool) -> Templates:
    """The prompts of ``language``; with ``structured`` the script's JSON variant."""
    return Templates(
        load_template("dialogue-script", language, settings.prompt_dir, structured=structured),
        load_template("dialogue-outline", language, settings.prompt_dir),
        load_template("dialogue-user", language, settings.prompt_dir),
    )


def dialogue_config(source: Path, settings: DialogueSettings) -> dict[str, Any]:
    """The ``dialogue`` section of ``config.json``."""
    values = dataclasses.asdict(settings)
    for name in ("personas", "prompt_dir"):
        values[name] = str(values[name]) if values[name] is not None else None
    return {
        **values,
        "input": str(source),
        "input_sha256": _digest(source),
        "personas_sha256": _digest(settings.personas) if settings.personas else None,
    }


def _digest(path: Path) -> str | None:
    """The SHA-256 of a file (None for a directory: its files change as it grows)."""
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_resume(out_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to add conversations made another way to an existing run (``--force``
    skips this)."""
    saved = (read_json(out_dir / CONFIG_FILE) or {}).get("dialogue")
    shared_check_resume(str(out_dir), saved if isinstance(saved, dict) else None, config,
                        RECORD_DEFINING, force=False,
                        consequence="resuming would mix two kinds of conversations")
