"""Benchmark the ROUGE-L similarity index (numbers go to BENCHMARKS.md).

    python benchmarks/bench_similarity.py [--data en_texts.jsonl] [--skip-rouge-score]
                                          [--skip-memory] [--json results.json]

Measures, in one process on one core:

1. greedy filter over every text of the data file (keep a text iff its max_score against
   the texts kept before it is <= threshold, then add it), at thresholds 0.7 and 0.5
   (plus the multilingual tokenizer, and the dedup command's ``exceeds`` variant);
2. one max_score query against a 100,000-text pool (median of 300 queries);
3. memory of a 1,000,000-text pool (RSS growth of a child process, and index.nbytes);
4. the same greedy filter over the first 1,000 texts with rouge_score's own
   ``rouge_scorer._score_lcs`` (what stanford_alpaca runs) and with the index; the kept
   sets must be identical, and the ratio of the times is reported; rouge_score's rate on
   random pairs of the whole file then estimates what the full greedy run would take it.

Pools larger than the data file are filled with deterministic recombinations: text
``i`` (i >= number of texts M) is the first half of the words of text ``i mod M``
followed by the second half of the words of text ``(i * 7919 + 13) mod M``. Queries for
(2) are recombinations with indexes beyond the pool, so they are not in it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selfinstruct.similarity.index import SimilarityIndex
from selfinstruct.similarity.tokens import tokenize

#: ``shared/`` sits beside the repository checkout.
DEFAULT_DATA = Path(os.environ.get(
    "SELFINSTRUCT_BENCH_DATA",
    Path(__file__).resolve().parents[2] / "shared" / "bench" / "en_texts.jsonl",
))


def load_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fp:
        return [json.loads(line)["instruction"] for line in fp if line.strip()]


def recombined(texts: list[str], i: int) -> str:
    """Text ``i`` of an arbitrarily large deterministic pool built from ``texts``."""
    if i < len(texts):
        return texts[i]
    first = texts[i % len(texts)].split()
    second = texts[(i * 7919 + 13) % len(texts)].split()
    return " ".join(first[: len(first) // 2] + second[len(second) // 2:])


def pool_texts(texts: list[str], size: int) -> Iterator[str]:
    return (recombined(texts, i) for i in range(size))


def greedy_filter(texts: list[str], threshold: float, tokenizer: str) -> tuple[float, list[int]]:
    """The bootstrap loop's use: check each candidate, add the survivors."""
    index = SimilarityIndex(tokenizer=tokenizer)
    kept: list[int] = []
    started = time.perf_counter()
    for i, text in enumerate(texts):
        if index.max_score(text) <= threshold:
            index.add(text)
            kept.append(i)
    return time.perf_counter() - started, kept


def naive_pairs(kept: list[int], total: int) -> int:
    """Pair scores a pool scan does in the greedy filter: each candidate vs all kept."""
    pairs = kept_before = 0
    kept_set = set(kept)
    for i in range(total):
        pairs += kept_before
        kept_before += i in kept_set
    return pairs


def greedy_filter_rouge_score(texts: list[str], threshold: float) -> tuple[float, list[int]]:
    """stanford_alpaca's way: tokenize once, then _score_lcs against every kept text."""
    from rouge_score import rouge_scorer
    from rouge_score.tokenizers import DefaultTokenizer

    tokenizer = DefaultTokenizer(use_stemmer=False)
    started = time.perf_counter()
    kept_tokens: list[list[str]] = []
    kept: list[int] = []
    for i, text in enumerate(texts):
        tokens = tokenizer.tokenize(text)
        best = max((rouge_scorer._score_lcs(tokens, other).fmeasure for other in kept_tokens),
                   default=0.0)
        if best <= threshold:
            kept_tokens.append(tokens)
            kept.append(i)
    return time.perf_counter() - started, kept


def rouge_score_pair_rate(texts: list[str], samples: int = 20_000) -> float:
    """rouge_score pair scores per second over random pairs of the whole data set (the
    first 1,000 texts are shorter than average, so their rate flatters rouge_score)."""
    from rouge_score import rouge_scorer
    from rouge_score.tokenizers import DefaultTokenizer

    tokenizer = DefaultTokenizer(use_stemmer=False)
    rng = random.Random(0)
    pairs = [(tokenizer.tokenize(rng.choice(texts)), tokenizer.tokenize(rng.choice(texts)))
             for _ in range(samples)]
    started = time.perf_counter()
    for candidate, other in pairs:
        rouge_scorer._score_lcs(candidate, other)
    return samples / (time.perf_counter() - started)


def greedy_filter_exceeds(texts: list[str], threshold: float) -> float:
    """The dedup command's use: only "is anything above the threshold?" per candidate."""
    index = SimilarityIndex(tokenizer="rouge")
    started = time.perf_counter()
    for text in texts:
        if not index.exceeds(text, threshold):
            index.add(text)
    return time.perf_counter() - started


def query_latency(texts: list[str], pool_size: int, queries: int) -> dict[str, float]:
    index = SimilarityIndex(tokenizer="rouge")
    started = time.perf_counter()
    for text in pool_texts(texts, pool_size):
        index.add(text)
    build = time.perf_counter() - started
    samples = []
    for j in range(queries):
        query = recombined(texts, pool_size + 1000 + 37 * j)
        started = time.perf_counter()
        index.max_score(query)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {"pool": pool_size, "build_s": build, "queries": queries,
            "median_ms": statistics.median(samples) * 1e3,
            "p90_ms": samples[int(0.9 * len(samples))] * 1e3, "max_ms": samples[-1] * 1e3}


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_child(data: Path, size: int) -> None:
    """Run in a fresh process: RSS growth while building a ``size``-text pool; texts are
    generated lazily, so the growth is the index itself (plus allocator slack)."""
    texts = load_texts(data)
    gc.collect()
    before = rss_bytes()
    index = SimilarityIndex(tokenizer="rouge")
    started = time.perf_counter()
    for text in pool_texts(texts, size):
        index.add(text)
    build = time.perf_counter() - started
    gc.collect()
    grown = rss_bytes() - before
    samples = []
    for j in range(50):
        query = recombined(texts, size + 1000 + 37 * j)
        t0 = time.perf_counter()
        index.max_score(query)
        samples.append(time.perf_counter() - t0)
    print(json.dumps({"pool": size, "build_s": build, "rss_growth_bytes": grown,
                      "index_nbytes": index.nbytes, "vocabulary": len(index._vocab),
                      "query_median_ms": statistics.median(samples) * 1e3}))


def memory(data: Path, size: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--data", str(data), "--memory-child", str(size)],
        check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def machine() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_at_start": " ".join(f"{x:.2f}" for x in load),
    }


def step(label: str, run: Callable[[], object]) -> object:
    print(f"... {label}", file=sys.stderr, flush=True)
    return run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-rouge-score", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.data, args.memory_child)
        return

    texts = load_texts(args.data)
    results: dict[str, object] = {"machine": machine(), "texts": len(texts)}
    for tokenizer, threshold in (("rouge", 0.7), ("rouge", 0.5), ("multilingual", 0.7)):
        seconds, kept = step(f"greedy {tokenizer} {threshold}",
                             lambda t=tokenizer, h=threshold: greedy_filter(texts, h, t))
        results[f"greedy_{tokenizer}_{threshold}"] = {
            "seconds": seconds, "kept": len(kept),
            "naive_pair_scores": naive_pairs(kept, len(texts))}
    results["greedy_exceeds_rouge_0.7_s"] = step("greedy exceeds",
                                                 lambda: greedy_filter_exceeds(texts, 0.7))
    results["query_100k"] = step("100k query", lambda: query_latency(texts, 100_000, 300))
    if not args.skip_memory:
        results["memory_1m"] = step("1M memory", lambda: memory(args.data, 1_000_000))
    if not args.skip_rouge_score:
        first = texts[:1000]
        ours_s, ours_kept = greedy_filter(first, 0.7, "rouge")
        ref_s, ref_kept = step("rouge_score greedy 1000",
                                lambda: greedy_filter_rouge_score(first, 0.7))
        assert ours_kept == ref_kept, "kept sets differ from rouge_score"
        pairs = naive_pairs(ref_kept, len(first))
        full = results["greedy_rouge_0.7"]
        rate = step("rouge_score pair rate", lambda: rouge_score_pair_rate(texts))
        estimate = full["naive_pair_scores"] / rate
        results["vs_rouge_score_1000"] = {
            "rouge_score_s": ref_s, "index_s": ours_s, "speedup": ref_s / ours_s,
            "kept": len(ours_kept), "same_kept_set": True, "pair_scores": pairs,
            "rouge_score_pairs_per_s_first_1000": pairs / ref_s,
            "rouge_score_pairs_per_s_random_pairs": rate,
            "estimated_rouge_score_full_run_0.7_s": estimate,
            "estimated_full_run_speedup": estimate / full["seconds"]}
    # the tokenizers agree on ASCII; count the texts (accents etc.) where they differ
    results["texts_tokenized_differently"] = sum(
        tokenize(t, "rouge") != tokenize(t, "multilingual") for t in texts)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
