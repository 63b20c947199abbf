"""A synchronous batch loop of stanford_alpaca's shape, to compare throughput with.

    python benchmarks/alpaca_baseline.py --base-url URL --duration SECONDS --out DIR

Our own code, written to the shape of ``generate_instruction.py`` in
stanford_alpaca (the algorithm, not the code): per round, build ``request_batch_size``
= 5 prompts, send them as one batched completions request and wait for the answer,
parse every answer, then for each candidate build a ``multiprocessing.Pool`` and map
``rouge_scorer._score_lcs`` over the tokens of every instruction in the pool (seeds and
kept ones), keep it when the best F1 is at most 0.7 (with its 10 most similar
instructions), and rewrite the whole output JSON at the end of the round. Nothing runs
while the batch is in flight and no request is in flight while the filter runs: that
barrier, and the pool scan per candidate, are what the comparison measures.

The prompt is our self-instruct prompt (the fake server answers it with a numbered
list) and the heuristic filters are Alpaca's (length 4-150 words, blacklist, "Write a
program", leading punctuation, non-ASCII start), so both loops see the same answers.

Prints one JSON line: prompts answered, rounds, candidates, kept, wall time, and the
time stamps of the rounds, so the driver can cut the start-up off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import sys
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import openai
from rouge_score import rouge_scorer

REPO = Path(__file__).resolve().parents[1]

#: stanford_alpaca's constants.
REQUEST_BATCH_SIZE = 5
NUM_PROMPT_INSTRUCTIONS = 8  # our prompt shows 8 tasks (theirs shows 3 with outputs)
THRESHOLD = 0.7
BLACKLIST = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
             "map", "maps", "draw", "plot", "go to", "video", "audio", "music",
             "flowchart", "diagram"]

_TASK_LINE = re.compile(r"^\s*Task\s+\d+\s*:\s*(.*)$")


def encode_prompt(template: str, examples: list[str]) -> str:
    """Our self-instruct prompt with these examples, ending at the next task number."""
    tasks = "\n".join(f"Task {i}: {text}" for i, text in enumerate(examples, start=1))
    return template.replace("{tasks}", tasks).replace("{next}", str(len(examples) + 1))


def post_process(text: str) -> list[str]:
    """Split a numbered answer into instructions and apply Alpaca's heuristic filters."""
    kept = []
    for line in text.splitlines():
        match = _TASK_LINE.match(line)
        if not match:
            continue
        inst = match.group(1).strip()
        words = inst.split()
        if len(words) <= 3 or len(words) > 150:
            continue
        if any(re.search(rf"\b{re.escape(w)}\b", inst, re.IGNORECASE)
               for w in BLACKLIST):
            continue
        if inst.startswith("Write a program"):
            continue
        if inst[0] in string.punctuation or not inst[0].isascii():
            continue
        kept.append(inst)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--duration", type=float, required=True,
                        help="stop starting new rounds after this many seconds")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    template = (REPO / "prompts" / "en" / "self_instruct.txt").read_text(encoding="utf-8")
    seeds = [json.loads(line)["instruction"]
             for line in (REPO / "seed_tasks" / "en.jsonl").read_text().splitlines() if line]
    client = openai.OpenAI(base_url=args.base_url, api_key="EMPTY", max_retries=0)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    all_instructions = list(seeds)
    all_tokens = [scorer._tokenizer.tokenize(inst) for inst in all_instructions]
    machine: list[dict[str, object]] = []
    rng = random.Random(0)
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    rounds: list[float] = []  # monotonic time at the end of each round
    kept_after_round: list[int] = []
    prompts = candidates = 0
    while time.monotonic() - started < args.duration:
        batch = []
        for _ in range(REQUEST_BATCH_SIZE):
            n_machine = min(2, len(machine))
            examples = rng.sample(seeds, NUM_PROMPT_INSTRUCTIONS - n_machine)
            examples += [str(m["instruction"]) for m in rng.sample(machine, n_machine)]
            batch.append(encode_prompt(template, examples))
        response = client.completions.create(model=args.model, prompt=batch, max_tokens=3072,
                                             temperature=1.0, top_p=1.0)
        prompts += len(response.choices)
        new = [inst for choice in response.choices for inst in post_process(choice.text)]
        candidates += len(new)
        for inst in new:
            tokens = scorer._tokenizer.tokenize(inst)
            with Pool(args.num_cpus) as pool:
                scores = pool.map(partial(rouge_scorer._score_lcs, tokens), all_tokens)
            f1 = [score.fmeasure for score in scores]
            most_similar = {all_instructions[i]: f1[i] for i in np.argsort(f1)[-10:][::-1]}
            if max(f1) > THRESHOLD:
                continue
            machine.append({"instruction": inst, "most_similar_instructions": most_similar,
                            "avg_similarity_score": float(np.mean(f1))})
            all_instructions.append(inst)
            all_tokens.append(tokens)
        with (args.out / "regen.json").open("w") as fp:
            json.dump(machine, fp, indent=4)
        rounds.append(time.monotonic())
        kept_after_round.append(len(machine))
    print(json.dumps({"started": started, "rounds": rounds,
                      "kept_after_round": kept_after_round, "prompts": prompts,
                      "prompts_per_round": REQUEST_BATCH_SIZE, "candidates": candidates,
                      "kept": len(machine), "pool": len(all_tokens),
                      "wall": time.monotonic() - started}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
