"""The ``selfinstruct`` command: thin clients of the stages.

Each command declares its flags, builds its stage's typed settings from them and hands
the prepared job to :func:`~selfinstruct.cli.output.run_job` (dry run, progress,
summary, exit code: one path for every command). Flags shared by several commands (the
backend's) are declared once, in :mod:`selfinstruct.cli.options`. Everything heavier
than the flags (the stages and what they import) is imported when a command runs, so
``selfinstruct --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from selfinstruct.cli.options import (
    DRY_RUN,
    NO_BACKEND,
    NO_TEACHER,
    SHARD,
    STRUCTURED,
    backend_settings,
    with_backend_options,
    with_executor_options,
    with_teacher_options,
)
from selfinstruct.cli.output import (
    report_library_lines,
    reported_errors,
    run_job,
    run_quietly,
    say,
    say_all,
)
from selfinstruct.language import LanguageChoice
from selfinstruct.llm.settings import BackendSettings
from selfinstruct.runs.templates import PromptStyle
from selfinstruct.similarity import DedupMethod, TokenizerName
from selfinstruct.stages.base import Connection
from selfinstruct.stages.export import ExportData, ExportFormat, ThinkStyle
from selfinstruct.stages.teacher import Teacher
from selfinstruct.text.row_answers import ParseMode

app = typer.Typer(
    help="Grow instruction-tuning data from seed tasks with an LLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.callback()
def selfinstruct() -> None:
    """Grow instruction-tuning data from seed tasks with an LLM."""
    report_library_lines()


@app.command()
@with_backend_options
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumed if it exists).")]
    = Path("selfinstruct-run"),
    num_instructions: Annotated[
        int, typer.Option("--num-instructions", "-n", help="Machine instructions to keep.")
    ] = 100,
    seeds: Annotated[
        Path | None,
        typer.Option(help="Seed tasks: Self-Instruct JSONL, Alpaca JSON/JSONL or plain text. "
                     "Default: our bundled set for --language."),
    ] = None,
    language: Annotated[LanguageChoice, typer.Option(help="auto decides from the seeds.")]
    = "auto",
    prompt_style: Annotated[PromptStyle, typer.Option(help="self-instruct: 8 examples, the model "
                                                "continues a list; alpaca: 3 seed tasks with "
                                                "input/output, the model writes 20.")]
    = "self-instruct",
    similarity_threshold: Annotated[
        float, typer.Option(help="Reject a candidate whose ROUGE-L vs the pool is above this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerName, typer.Option(help="ROUGE tokenizer.")]
    = "multilingual",
    most_similar: Annotated[
        int, typer.Option(help="Record the K most similar pool texts and the best score with "
                          "each kept instruction (a full top-K search per candidate: about "
                          "6x the CPU per answer at a 50,000 pool).")
    ] = 0,
    temperature: Annotated[float | None, typer.Option(help="Default per prompt style.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Default per prompt style.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Default per prompt style.")] = None,
    seed_examples: Annotated[
        int | None, typer.Option(help="Seed tasks per prompt (6 self-instruct, 3 alpaca).")
    ] = None,
    machine_examples: Annotated[
        int, typer.Option(help="Machine instructions per prompt (self-instruct).")
    ] = 2,
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    blacklist: Annotated[
        list[str] | None, typer.Option(help="Extra word that rejects a task (repeatable).")
    ] = None,
    min_length: Annotated[
        int | None, typer.Option(help="Words (en) or characters (zh); default per language.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Words (en) or characters (zh); default per language.")
    ] = None,
    prompt_dir: Annotated[
        Path | None, typer.Option(help="Folder with your own en/ and zh/ templates.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Resume even though pool-defining settings changed.")
    ] = False,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Grow a pool of new instructions from seed tasks."""
    from selfinstruct.stages.generate import GenerateSettings, prepare_generate

    with reported_errors():
        settings = GenerateSettings(
            num_instructions=num_instructions, seeds=seeds, language=language,
            prompt_style=prompt_style, similarity_threshold=similarity_threshold,
            tokenizer=tokenizer, most_similar=most_similar, temperature=temperature,
            top_p=top_p, max_tokens=max_tokens, seed_examples=seed_examples,
            machine_examples=machine_examples, seed=seed, blacklist=tuple(blacklist or ()),
            min_length=min_length, max_length=max_length, prompt_dir=prompt_dir)
        job = prepare_generate(out, settings, backend, force=force)
        say(job.headline())
        run_job(job, Connection(backend), dry_run=dry_run)


RUN_DIR = Annotated[Path, typer.Argument(help="A run directory made by selfinstruct generate.")]
PER_TASK = Annotated[int, typer.Option(help="Instances to keep per instruction.")]
INSTANCE_MAX_TOKENS = Annotated[
    int, typer.Option(help="Token limit of each instance-generation answer.")
]



@app.command()
@with_backend_options
def classify(
    run_dir: RUN_DIR,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Mark which instructions are classification tasks (few-shot, greedy decoding)."""
    from selfinstruct.stages.classify import prepare_classify

    with reported_errors():
        run_job(prepare_classify(run_dir, backend), Connection(backend), dry_run=dry_run)


@app.command()
@with_backend_options
@with_executor_options
def instances(
    run_dir: RUN_DIR,
    per_task: PER_TASK = 5,
    instance_max_tokens: INSTANCE_MAX_TOKENS = 1024,
    shard: SHARD = None,
    dry_run: DRY_RUN = False,
    structured: STRUCTURED = None,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Generate input/output instances: input-first, or output-first for classification."""
    from selfinstruct.runs.shard import Shard
    from selfinstruct.stages.instances import InstanceOptions, prepare_instances

    with reported_errors():
        options = InstanceOptions(per_task=per_task, max_tokens=instance_max_tokens,
                                  shard=Shard.parse(shard))
        run_job(prepare_instances(run_dir, options, backend), Connection(backend),
                dry_run=dry_run)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(
        metavar="DATA", help="A run directory, the directory score -o wrote, or a dataset "
                             "file (Alpaca, ShareGPT, messages, JSONL; dedup and mix output).")],
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")]
    = "alpaca",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: DATA/export/FILE, or "
                                  "export/STEM_FILE beside a file.")
    ] = None,
    include_seeds: Annotated[
        bool, typer.Option(help="Add the seed tasks' own instances.")
    ] = False,
    data: Annotated[
        ExportData, typer.Option(help="auto: distilled.jsonl or reasoning.jsonl if the "
                                 "directory has one, else the instances.")
    ] = "auto",
    think: Annotated[
        ThinkStyle, typer.Option(help="Reasoning traces inline as <think>…</think> before "
                                  "the answer (LLaMA-Factory), or in their own field "
                                  "(reasoning_content; not registered for LLaMA-Factory, "
                                  "which cannot read it), or dropped (no trace in any "
                                  "field, <think> tags in an answer removed too).")
    ] = "inline",
    min_score: Annotated[
        float | None, typer.Option(help="Keep only examples whose judge score (selfinstruct "
                                   "score) is at least this.")
    ] = None,
    map: Annotated[
        list[str] | None, typer.Option(
            "--map", help="PART=FIELD for distilled records: which field is the "
                          "instruction, input or output (default: the prompt or the field "
                          "distill's --map made, and the answer).")
    ] = None,
    best_of: Annotated[
        bool, typer.Option("--best-of", help="Of each prompt's answers (--samples K), keep "
                           "the one the judge scored highest (a tie: the first sample).")
    ] = False,
    pairs: Annotated[
        bool, typer.Option("--pairs", help="Preference pairs for DPO/ORPO: per prompt the "
                           "top-scored answer chosen, the bottom-scored rejected (a reason "
                           "run with --reference-field and no scores: correct over wrong).")
    ] = False,
    pairs_all: Annotated[
        bool, typer.Option("--pairs-all", help="With --pairs: every ordered pair of a "
                           "prompt's answers at least --min-margin apart.")
    ] = False,
    min_margin: Annotated[
        float, typer.Option(help="With --pairs: the least score difference between chosen "
                            "and rejected.")
    ] = 1.0,
) -> None:
    """Write training data (alpaca, sharegpt, messages, text) and its dataset_info.json
    entry; --pairs writes preference pairs instead."""
    from selfinstruct.api import export as write_export
    from selfinstruct.cli.results import export_lines
    from selfinstruct.text.row_answers import parse_renames

    with reported_errors():
        result = write_export(run_dir, format, output, include_seeds=include_seeds, data=data,
                              think=think, min_score=min_score, fields=parse_renames(map or ()),
                              best_of=best_of, pairs=pairs, pairs_all=pairs_all,
                              min_margin=min_margin)
        say_all(export_lines(result))


def _run_command(func: Callable[..., None]) -> Callable[..., None]:
    """``run`` takes every flag of ``generate`` plus the later stages' own."""
    base = inspect.signature(generate)
    extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
             for p in inspect.signature(func, eval_str=True).parameters.values()
             if p.name != "generate_kwargs"]

    @functools.wraps(func)
    def command(**kwargs: Any) -> None:
        own = {p.name: kwargs.pop(p.name) for p in extra}
        func(generate_kwargs=kwargs, **own)

    command.__signature__ = base.replace(  # type: ignore[attr-defined]
        parameters=[*base.parameters.values(), *extra]
    )
    return command


@app.command("run")
@_run_command
def run_all(
    per_task: PER_TASK = 5,
    instance_max_tokens: INSTANCE_MAX_TOKENS = 1024,
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="Export format.")]
    = "alpaca",
    include_seeds: Annotated[
        bool, typer.Option(help="Add the seed tasks' own instances to the export.")
    ] = False,
    generate_kwargs: dict[str, Any] | None = None,
) -> None:
    """generate → classify → instances → export in one go; each stage resumes."""
    from selfinstruct.api import later_stages
    from selfinstruct.cli.results import export_lines
    from selfinstruct.runs.shard import EVERYTHING
    from selfinstruct.stages.classify import prepare_classify
    from selfinstruct.stages.export import export_run
    from selfinstruct.stages.instances import InstanceOptions, prepare_instances

    kwargs = dict(generate_kwargs or {})
    generate(**kwargs)
    if kwargs["dry_run"]:
        say("(--dry-run shows the generate stage; classify, instances and export follow it)")
        return
    out: Path = kwargs["out"]
    with reported_errors():
        backend = backend_settings(kwargs)
        # generate checked the server before its first request: once is enough.
        connection = Connection(backend, check=False)
        for stage in later_stages(kwargs["prompt_style"]):
            if stage == "classify":
                run_job(prepare_classify(out, backend), connection, dry_run=False)
            else:
                options = InstanceOptions(per_task=per_task, max_tokens=instance_max_tokens,
                                          shard=EVERYTHING)
                run_job(prepare_instances(out, options, backend), connection, dry_run=False)
        say_all(export_lines(export_run(out, format, include_seeds=include_seeds)))


@app.command()
@with_backend_options
@with_executor_options
@with_teacher_options
def reason(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="A run directory, Alpaca JSON/JSONL, ShareGPT, JSONL or CSV.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (default: INPUT, "
                                  "when it is a run directory).")
    ] = None,
    samples: Annotated[int, typer.Option(help="Traces to draw per prompt.")] = 1,
    max_tokens: Annotated[int, typer.Option(help="Token limit per answer, trace included.")]
    = 8192,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.6,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 0.95,
    enable_thinking: Annotated[
        bool | None, typer.Option("--enable-thinking/--no-enable-thinking",
                                  help="Qwen3's switch (chat_template_kwargs); unset: not sent.")
    ] = None,
    field: Annotated[str, typer.Option(help="Field (or CSV column) with the prompt.")]
    = "instruction",
    reference_field: Annotated[
        str | None, typer.Option(help="Field with a reference answer: keep only traces whose "
                                 "answer matches it, and record pass rates.")
    ] = None,
    language: Annotated[
        LanguageChoice, typer.Option(help="Reject reasoning in another language (auto: off).")
    ] = "auto",
    max_reasoning_chars: Annotated[
        int, typer.Option(help="Reject traces longer than this.")
    ] = 100_000,
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    shard: SHARD = None,
    dry_run: DRY_RUN = False,
    teacher: Teacher = NO_TEACHER,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Distil reasoning traces and answers from a thinking model (R1, Qwen3, QwQ…)."""
    from selfinstruct.runs.shard import Shard
    from selfinstruct.stages.reason import ReasonSettings, prepare_reason

    with reported_errors():
        settings = ReasonSettings(
            samples=samples, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
            enable_thinking=enable_thinking, seed=seed, field=field,
            reference_field=reference_field,
            language=None if language == "auto" else language,
            max_reasoning_chars=max_reasoning_chars, shard=Shard.parse(shard),
            teacher=teacher)
        run_job(prepare_reason(source, out, settings, backend), Connection(backend),
                dry_run=dry_run)


@app.command()
@with_backend_options
@with_executor_options
def score(
    source: Annotated[Path, typer.Argument(
        help="A run directory, or Alpaca / ShareGPT / messages JSON or JSONL.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (default: SOURCE, "
                                  "when it is a run directory).")
    ] = None,
    rubric: Annotated[
        Path | None, typer.Option(help="Rubric file, one 'dimension: description' a line "
                                  "(default: prompts/LANG/rubric.txt).")
    ] = None,
    scale: Annotated[str, typer.Option(help="Score range, LOW-HIGH.")] = "1-5",
    samples: Annotated[int, typer.Option(help="Verdicts per example (averaged).")] = 1,
    max_tokens: Annotated[int, typer.Option(help="Token limit per verdict.")] = 1024,
    temperature: Annotated[
        float | None, typer.Option(help="Default 0 (greedy), 0.7 with --samples above 1.")
    ] = None,
    language: Annotated[
        LanguageChoice, typer.Option(help="Rubric and prompt language (auto: the data's).")
    ] = "auto",
    field: Annotated[str, typer.Option(help="Field with the prompt in a flat file.")]
    = "instruction",
    context: Annotated[list[str] | None, typer.Option(
        help="A field of each example's record the answer was grounded in, shown to the "
             "judge to check it against (repeatable), e.g. a distilled row's columns.")]
    = None,
    seed: Annotated[int | None, typer.Option(help="Make sampling reproducible.")] = None,
    force: Annotated[
        bool, typer.Option(help="Add to scores made with another rubric or scale.")
    ] = False,
    dry_run: DRY_RUN = False,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Rate every example with a judge model: per-dimension scores, overall, a reason."""
    from selfinstruct.stages.score import ScoreSettings, prepare_score

    with reported_errors():
        settings = ScoreSettings.of(dict(
            scale=scale, samples=samples, max_tokens=max_tokens, temperature=temperature,
            seed=seed, rubric=rubric, language=language, field=field,
            context=tuple(context or ())))
        run_job(prepare_score(source, out, settings, backend, force=force),
                Connection(backend), dry_run=dry_run)


@app.command()
def review(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="The directory score wrote to (a run directory, or its -o).")],
    sample: Annotated[int, typer.Option(help="Examples to draw, stratified by score band.")]
    = 200,
    seed: Annotated[int, typer.Option(help="Seed of the draw (the same seed, the same sheet).")]
    = 0,
    lowest: Annotated[int, typer.Option(help="Also the K lowest-scored examples.")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The sheet to write "
                                  "(default: RUN/review.xlsx).")
    ] = None,
    import_sheet: Annotated[
        Path | None, typer.Option("--import", help="Read a filled-in sheet back into "
                                  "RUN/review.jsonl instead.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing sheet.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Draw (or check the sheet) and report, "
                                          "writing nothing.")] = False,
) -> None:
    """Write a review sheet (xlsx) of sampled examples, or import the reviewed sheet."""
    from selfinstruct.api import import_review, review
    from selfinstruct.cli.results import drawn_line, imported_line

    with reported_errors():
        if import_sheet is not None:
            done = import_review(run_dir, import_sheet, dry_run=dry_run)
            say(imported_line(done, import_sheet, dry_run=dry_run))
            return
        path, drawn = review(run_dir, output, sample=sample, seed=seed, lowest=lowest,
                             force=force, dry_run=dry_run)
        say(drawn_line(drawn, run_dir, path, dry_run=dry_run))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run directory, the directory score wrote to, or a dataset "
                            "file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Default: RUN/report.html, or "
                                  "STEM_report.html beside a file.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Read the run and say what the report would "
                                          "show, writing nothing.")] = False,
) -> None:
    """One self-contained HTML page: funnel, scores, review rates, diversity, lengths."""
    from selfinstruct.api import report as build_report
    from selfinstruct.cli.results import report_line

    with reported_errors():
        say(report_line(build_report(run_dir, output, dry_run=dry_run), dry_run=dry_run))


@app.command()
@with_backend_options
@with_executor_options
@with_teacher_options
def distill(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Rows: JSONL, JSON list, CSV/TSV (header), XLSX, Parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (resumed if it "
                                      "exists).")],
    user_template: Annotated[Path, typer.Option(
        help="Prompt template: {column}, {row} (the row as JSON), {questions}; {{ }} for "
             "literal braces.")],
    questions: Annotated[Path | None, typer.Option(
        help="Question templates, one a line, listed as {questions}.")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet (default: the first).")]
    = None,
    fill_na: Annotated[str | None, typer.Option(help="Text for empty cells, e.g. 无数据.")]
    = None,
    encoding: Annotated[str | None, typer.Option(
        help="CSV/TSV encoding, e.g. gbk, utf-16 (default: found out; UTF-8 and GBK are "
             "told apart reliably).")] = None,
    strict: Annotated[bool, typer.Option(
        help="Stop on XLSX error cells (#DIV/0!, #N/A …) and formulas without a saved "
             "value, instead of a warning.")] = False,
    id_field: Annotated[str | None, typer.Option(
        help="Column with each row's id (default: id if there is one, else the row "
             "number).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows.")] = None,
    sample: Annotated[int | None, typer.Option(help="N rows at random (by --seed).")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    shard: SHARD = None,
    temperature: Annotated[float | None, typer.Option(
        help="Sampling temperature (default: not sent, the server's own).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Token limit per answer.")] = 2048,
    samples: Annotated[int, typer.Option(help="Answers per row.")] = 1,
    parse: Annotated[ParseMode, typer.Option(
        help="text: the answer after </think>; json: a fenced or bare JSON object or list "
             "(a list gives one record per item); separator: answer before --separator, "
             "rationale after.")] = "text",
    separator: Annotated[str, typer.Option(help="For --parse separator.")] = "####",
    map: Annotated[list[str] | None, typer.Option(
        "--map", help="NEW=KEY: rename a JSON key (repeatable), e.g. --map instruction=q "
                      "--map output=a.")] = None,
    reparse: Annotated[bool, typer.Option(
        help="First read every stored answer again with the current --parse, --map, "
             "--separator, --stop and checks (no request; they may differ from the run's), "
             "then ask only the rows never answered.")] = False,
    retry_rejected: Annotated[bool, typer.Option(
        help="Ask again the rows whose answers were all rejected (a rerun otherwise never "
             "pays twice for an answer).")] = False,
    labels: Annotated[str | None, typer.Option(
        help="Allowed labels, comma-separated, e.g. --labels positive,negative: an answer "
             "with another (compared exactly) is rejected (label_not_allowed). Checks the "
             "answer (text, separator) or, with --parse json, the field label (else output, "
             "else the first --map field).")] = None,
    items: Annotated[str | None, typer.Option(
        help="N, or questions (one per line of --questions): a JSON answer with another "
             "number of items is rejected whole (wrong_item_count).")] = None,
    force: Annotated[bool, typer.Option(
        help="Resume even though the template, system prompt or parsing changed.")] = False,
    dry_run: DRY_RUN = False,
    teacher: Teacher = NO_TEACHER,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """A teacher model's answer for every row of a table, with your own prompt."""
    flags = dict(locals())
    for name in ("source", "out", "force", "dry_run", "backend", "reparse", "retry_rejected"):
        flags.pop(name)
    from selfinstruct.stages.distill import prepare_distill

    with reported_errors():
        job = prepare_distill(source, out, flags, backend, force=force, reparse=reparse,
                              retry_rejected=retry_rejected)
        run_job(job, Connection(backend), dry_run=dry_run)


@app.command()
@with_backend_options
@with_executor_options
def dialogue(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE", help="Topics: a text file (one a line), JSONL with topic and "
        "optional persona / system, or a run directory / dataset (--field).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (resumed if it "
                                      "exists).")],
    mode: Annotated[Literal["script", "self-chat"], typer.Option(
        help="script: the model writes each whole conversation in one answer; self-chat: "
             "a simulated user and the assistant take turns, one request a turn.")]
    = "script",
    turns: Annotated[int, typer.Option(help="Exchanges (a user turn and its answer) per "
                                       "conversation.")] = 4,
    min_turns: Annotated[int | None, typer.Option(
        help="Reject conversations with fewer exchanges (default: 2, or 1 with --turns "
             "1).")] = None,
    num_dialogues: Annotated[int | None, typer.Option(
        "--num-dialogues", "-n", help="Conversations in all (default: one per topic; more "
        "reuse the topics with other personas and seeds).")] = None,
    outline: Annotated[bool, typer.Option(help="script: ask for an outline first, then the "
                                          "conversation that follows it.")] = False,
    system: Annotated[str | None, typer.Option(help="The assistant's system prompt.")] = None,
    system_file: Annotated[Path | None, typer.Option(help="The system prompt from a file.")]
    = None,
    personas: Annotated[Path | None, typer.Option(
        help="Personas of the simulated user, one a line (default: the bundled list).")]
    = None,
    field: Annotated[str, typer.Option(help="The field of a dataset's records that holds "
                                       "the topic.")] = "instruction",
    language: Annotated[LanguageChoice, typer.Option(
        help="Prompts and the wrong_language filter (auto: each topic's own).")] = "auto",
    max_turn_similarity: Annotated[float, typer.Option(
        help="Reject a conversation where a turn's ROUGE-L to an earlier turn of the same "
             "speaker is above this.")] = 0.7,
    drift_floor: Annotated[float | None, typer.Option(
        help="Reject a conversation with an exchange sharing less than this share of the "
             "topic's words (default: off).")] = None,
    stop_phrase: Annotated[str, typer.Option(
        help="self-chat: what the simulated user writes to end early.")] = "[END]",
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = 0.8,
    max_tokens: Annotated[int | None, typer.Option(
        help="Token limit per answer (default: 4096 a script, 1024 a turn).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the requests.")] = 0,
    prompt_dir: Annotated[Path | None, typer.Option(
        help="Your own dialogue_*.txt templates (LANG/ subfolders).")] = None,
    user_model: Annotated[str | None, typer.Option(
        help="self-chat: the simulated user's model (default: the assistant's).")] = None,
    user_base_url: Annotated[str | None, typer.Option(
        help="self-chat: the simulated user's server (default: --base-url).")] = None,
    structured: STRUCTURED = None,
    force: Annotated[bool, typer.Option(
        help="Resume even though the topics, mode or prompts changed.")] = False,
    dry_run: DRY_RUN = False,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """Multi-turn conversations about your topics: scripted, or a simulated user and the
    assistant taking turns."""
    flags = dict(locals())
    for name in ("source", "out", "force", "dry_run", "backend", "structured",
                 "user_model", "user_base_url"):
        flags.pop(name)
    from selfinstruct.stages.dialogue import prepare_dialogue, user_backend_settings

    with reported_errors():
        user = user_backend_settings(backend, user_model, user_base_url)
        job = prepare_dialogue(source, out, flags, backend, user=user, force=force)
        run_job(job, Connection(backend), dry_run=dry_run)


@app.command()
def dedup(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="JSONL or JSON array.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Kept records, JSONL.")],
    method: Annotated[
        DedupMethod, typer.Option(help="rouge: exact ROUGE-L, for instructions; minhash: "
                                  "MinHash/LSH over word n-grams, for long documents.")
    ] = "rouge",
    similarity_threshold: Annotated[
        float, typer.Option(help="rouge: drop a record whose ROUGE-L vs kept ones is above "
                            "this.")
    ] = 0.7,
    tokenizer: Annotated[TokenizerName, typer.Option(help="Tokenizer (the words of the "
                                                       "n-grams for minhash).")]
    = "multilingual",
    against: Annotated[
        Path | None, typer.Option(help="rouge: also drop records similar to this file's texts.")
    ] = None,
    field: Annotated[str, typer.Option(help="The field holding the text; every step uses "
                                       "it.")] = "instruction",
    removed: Annotated[
        Path | None, typer.Option(help="minhash: write removed records here, with "
                                  "duplicate_of and estimated_jaccard.")
    ] = None,
    ngram: Annotated[int, typer.Option(help="minhash: words per shingle.")] = 5,
    bands: Annotated[int, typer.Option(help="minhash: LSH bands.")] = 14,
    rows: Annotated[int, typer.Option(help="minhash: hashes per band.")] = 8,
    num_perm: Annotated[int | None, typer.Option(help="minhash: signature length; must be "
                                                 "bands x rows (a check).")] = None,
    seed: Annotated[int, typer.Option(help="minhash: seed of the hash functions.")] = 1,
    id_field: Annotated[str, typer.Option(help="minhash: the field duplicate_of names (else "
                                          "the kept record's 0-based position).")] = "id",
) -> None:
    """Drop near-duplicates from an existing dataset, keeping the first of each in order."""
    from selfinstruct.api import dedup as dedup_records
    from selfinstruct.cli.results import dedup_lines, minhash_summary
    from selfinstruct.stages.dedup import MinHashSummary

    with reported_errors():
        if method == "minhash":
            _refuse_flags(ctx, "--method minhash", ("similarity_threshold", "against"))
            extra: dict[str, Any] = {"removed": removed, "id_field": id_field, "ngram": ngram,
                                     "bands": bands, "rows": rows, "num_perm": num_perm,
                                     "seed": seed}
        else:
            _refuse_flags(ctx, "--method rouge",
                          ("removed", "ngram", "bands", "rows", "num_perm", "seed", "id_field"))
            extra = {"similarity_threshold": similarity_threshold, "against": against}
        summary = run_quietly(lambda progress: dedup_records(
            input_path, output, method=method, tokenizer=tokenizer, field=field,
            progress=progress, **extra), "dedup")
        say_all(minhash_summary(summary, output, removed)
                if isinstance(summary, MinHashSummary) else dedup_lines(summary, output))


@app.command()
def mix(
    source: Annotated[list[str], typer.Option(
        "--source", help="FILE:WEIGHT, repeatable: JSONL, JSON, CSV/TSV, XLSX or Parquet "
                         "and its weight (normalised over all sources).")],
    num: Annotated[int, typer.Option("--num", "-n", help="Records in the blend.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The blend, .jsonl or "
                                         ".json; mix.json and dataset_info.json go beside "
                                         "it.")],
    seed: Annotated[int, typer.Option(help="Seed of the draw (the same seed, the same "
                                      "blend).")] = 0,
    allow_upsample: Annotated[bool, typer.Option(
        help="Let a source smaller than its part repeat records (whole rounds, then a "
             "draw) instead of stopping.")] = False,
    key: Annotated[list[str] | None, typer.Option(
        help="Field that makes two records the same, repeatable (default: every field "
             "but id).")] = None,
) -> None:
    """Blend datasets by weight: exact parts, duplicates removed across sources, each
    record's source recorded."""
    from selfinstruct.api import mix as blend
    from selfinstruct.cli.results import mix_summary

    with reported_errors():
        result = blend(source, num, output, seed=seed, allow_upsample=allow_upsample,
                       key=tuple(key or ()))
        say_all(mix_summary(result))


@app.command()
@with_backend_options
@with_teacher_options
def playground(
    source: Annotated[Path, typer.Argument(
        metavar="ROWS", help="Rows, as distill reads them: JSONL, JSON, CSV/TSV, XLSX, "
                             "Parquet.")],
    user_template: Annotated[Path, typer.Option(
        help="The prompt template the page starts with (as distill's).")],
    questions: Annotated[Path | None, typer.Option(
        help="Question templates, one a line, listed as {questions}.")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet (default: the first).")]
    = None,
    fill_na: Annotated[str | None, typer.Option(help="Text for empty cells.")] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV/TSV encoding.")] = None,
    strict: Annotated[bool, typer.Option(help="Stop on XLSX error cells.")] = False,
    id_field: Annotated[str | None, typer.Option(
        help="Column with each row's id (default: id if there is one, else row0 …).")] = None,
    temperature: Annotated[float | None, typer.Option(
        help="Sampling temperature (default: the server's own).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Token limit per answer.")] = 2048,
    parse: Annotated[ParseMode, typer.Option(help="text, json or separator, as distill.")]
    = "text",
    separator: Annotated[str, typer.Option(help="For --parse separator.")] = "####",
    map: Annotated[list[str] | None, typer.Option(
        "--map", help="NEW=KEY: rename a JSON key (repeatable).")] = None,
    host: Annotated[str, typer.Option(
        help="Address to serve on; 0.0.0.0 shares the page on your network (warned).")]
    = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: a free one from 7860).")]
    = None,
    save_dir: Annotated[Path, typer.Option(
        help="Where Save writes the prompts (template-001.txt, system-001.txt …).")]
    = Path("playground"),
    teacher: Teacher = NO_TEACHER,
    backend: BackendSettings = NO_BACKEND,
) -> None:
    """A web page to settle distill's prompt on real rows, then the distill command
    (pip install 'selfinstruct[ui]')."""
    flags = dict(locals())
    for name in ("source", "user_template", "host", "port", "save_dir", "backend"):
        flags.pop(name)
    from selfinstruct.ui.launch import start
    from selfinstruct.ui.session import PlaygroundSettings

    with reported_errors():
        start(PlaygroundSettings(source, user_template, flags, backend, save_dir), host, port)


def _refuse_flags(ctx: typer.Context, method: str, names: tuple[str, ...]) -> None:
    """A flag only the other method reads would be silently ignored: refuse it instead."""
    from selfinstruct.errors import UserError

    # By name: typer carries its own copy of click, whose ParameterSource is another enum.
    given = [f"--{name.replace('_', '-')}" for name in names
             if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]
    if given:
        one = len(given) == 1
        raise UserError(f"{', '.join(given)} {'does' if one else 'do'} not apply to {method}; "
                        f"leave {'it' if one else 'them'} out or choose the other --method")


def main() -> None:
    """Console-script entry point."""
    app()
