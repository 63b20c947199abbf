"""MinHash dedup: documents per second, recall and precision on planted near-duplicates,
and the same corpus through datasketch and through datatrove's four-step pipeline.

    python benchmarks/bench_minhash.py --docs 100000 --json minhash.json

The corpus is generated here, deterministically (``--seed``), per language:

- distinct documents of ~1 KB (English: ~210 words drawn Zipf-wise from 30,000 made-up
  words, the frequent ones short; Chinese: ~330 Han characters drawn Zipf-wise from
  3,500, ~1 KB of UTF-8),
  checked to be genuinely distinct: the script reports the highest 5-gram Jaccard of
  any two of them;
- planted copies of 20% of them, each placed later in the file than its original,
  with a controlled word-edit rate (substitutions, insertions, deletions of words, or
  of characters for Chinese) from 0% to 12%; the true Jaccard of each pair is
  computed exactly from the two sets of 5-gram shingles.

Measured on each method's removed set: recall per band of true Jaccard (a pair is
caught when one of its two documents is removed; for ours also whether the one kept is
the first), the share of distinct documents (originals without a copy) removed, and
precision (removals explained by a planted partner that was kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from selfinstruct.similarity.minhash import MinHasher, cluster, lsh_probability
from selfinstruct.similarity.tokens import tokenize
from selfinstruct.stages.dedup import MinHashDedupSettings, dedup_minhash

EDIT_RATES = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12)
BUCKETS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9),
           (0.9, 0.95), (0.95, 1.0), (1.0, 1.01))


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    language: str
    records: list[dict[str, Any]]        # file order: id, text
    partner: dict[str, str]              # original <-> copy, both ways
    copies: dict[str, tuple[str, float, float]]  # copy id -> (original id, edit rate, true J)
    originals_alone: set[str]            # originals without a copy

    def prefix(self, documents: int) -> Corpus:
        """The first ``documents`` records, with the pairs that lie wholly inside them."""
        records = self.records[:documents]
        ids = {r["id"] for r in records}
        copies = {c: v for c, v in self.copies.items() if c in ids and v[0] in ids}
        partner = {d: p for d, p in self.partner.items() if d in ids and p in ids}
        alone = {d for d in ids if d.startswith("o") and d not in partner}
        return Corpus(self.language, records, partner, copies, alone)


def vocabulary(language: str, rng: random.Random) -> tuple[list[str], np.ndarray]:
    """Words (English) or characters (Chinese) and Zipf probabilities (s = 1)."""
    if language == "en":
        onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t",
                  "v", "w", "br", "ch", "st", "tr", "sh", "pl", "gr"]
        vowels = ["a", "e", "i", "o", "u", "ea", "ou", "ai"]
        codas = ["", "n", "r", "s", "t", "l", "nd", "st", "ng"]
        words: set[str] = set()
        while len(words) < 30_000:
            words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                              for _ in range(rng.choice((1, 2, 2, 3)))))
        units = sorted(words)
        rng.shuffle(units)
        units.sort(key=len)  # frequent words are short, as in real text (~5 letters a word)
    else:
        units = [chr(0x4E00 + (i * 7919) % 20902) for i in range(3500)]
    weights = 1.0 / np.arange(1, len(units) + 1)
    return units, weights / weights.sum()


def render(units: list[str], language: str) -> str:
    """Words (or characters) as running text with sentence punctuation."""
    if language == "en":
        sentences = [" ".join(units[i:i + 15]) for i in range(0, len(units), 15)]
        return ". ".join(s[:1].upper() + s[1:] for s in sentences) + "."
    clauses = ["".join(units[i:i + 11]) for i in range(0, len(units), 11)]
    return "".join(c + ("。" if k % 3 == 2 else "，") for k, c in enumerate(clauses))


def edit(units: list[str], rate: float, draw: Any, rng: random.Random) -> list[str]:
    """``round(rate * len)`` random word edits: substitute, insert or delete."""
    result = list(units)
    for _ in range(round(rate * len(units))):
        operation = rng.choice(("substitute", "insert", "delete"))
        position = rng.randrange(len(result))
        if operation == "substitute":
            result[position] = draw()
        elif operation == "insert":
            result.insert(position, draw())
        else:
            del result[position]
    return result


def make_corpus(language: str, documents: int, seed: int, planted: float = 0.2) -> Corpus:
    rng = random.Random(f"{seed}-{language}")
    numbers = np.random.default_rng(seed + (0 if language == "en" else 1))
    units, probabilities = vocabulary(language, rng)
    length = 210 if language == "en" else 330
    copies_wanted = int(documents * planted)
    originals = documents - copies_wanted
    drawn = numbers.choice(len(units), size=(originals, length), p=probabilities)
    base_units = [[units[i] for i in row] for row in drawn]
    spare = iter(numbers.choice(len(units), size=documents * 4, p=probabilities).tolist())

    def draw() -> str:
        return units[next(spare)]

    keyed: list[tuple[float, dict[str, Any]]] = []
    for i, row in enumerate(base_units):
        keyed.append((float(i), {"id": f"o{i}", "text": render(row, language)}))
    copied = rng.sample(range(originals), copies_wanted)
    partner: dict[str, str] = {}
    rates: dict[str, tuple[str, float]] = {}
    for k, i in enumerate(copied):
        rate = EDIT_RATES[k % len(EDIT_RATES)]
        copy_id, original_id = f"c{i}", f"o{i}"
        text = render(edit(base_units[i], rate, draw, rng), language)
        keyed.append((rng.uniform(i + 0.5, originals), {"id": copy_id, "text": text}))
        partner[copy_id], partner[original_id] = original_id, copy_id
        rates[copy_id] = (original_id, rate)
    keyed.sort(key=lambda pair: pair[0])
    records = [record for _, record in keyed]
    texts = {r["id"]: r["text"] for r in records}
    hasher = MinHasher()
    copies = {c: (o, rate, true_jaccard(hasher, texts[o], texts[c]))
              for c, (o, rate) in rates.items()}
    alone = {f"o{i}" for i in range(originals)} - set(partner)
    return Corpus(language, records, partner, copies, alone)


def true_jaccard(hasher: MinHasher, a: str, b: str) -> float:
    """Exact Jaccard of the two sets of 5-gram shingles (64-bit hashes of them)."""
    first, second = np.unique(hasher.shingles(a)), np.unique(hasher.shingles(b))
    shared = len(np.intersect1d(first, second, assume_unique=True))
    return shared / (len(first) + len(second) - shared)


def distinctness(corpus: Corpus) -> dict[str, Any]:
    """Highest shingle Jaccard between any two originals (exact, via shared shingles)."""
    hasher = MinHasher()
    hashes, owners, sizes = [], [], {}
    for index, record in enumerate(r for r in corpus.records if r["id"].startswith("o")):
        shingles = np.unique(hasher.shingles(record["text"]))
        sizes[index] = len(shingles)
        hashes.append(shingles)
        owners.append(np.full(len(shingles), index, dtype=np.int64))
    flat, owner = np.concatenate(hashes), np.concatenate(owners)
    order = np.argsort(flat, kind="stable")
    flat, owner = flat[order], owner[order]
    repeated = np.flatnonzero(flat[1:] == flat[:-1])
    shared: dict[tuple[int, int], int] = {}
    starts = np.unique(np.concatenate([repeated, repeated + 1]))
    for value in np.unique(flat[starts]):
        holders = sorted(set(owner[np.searchsorted(flat, value):
                                   np.searchsorted(flat, value, side="right")].tolist()))
        for x in range(len(holders)):
            for y in range(x + 1, len(holders)):
                key = (holders[x], holders[y])
                shared[key] = shared.get(key, 0) + 1
    best = max((count / (sizes[a] + sizes[b] - count) for (a, b), count in shared.items()),
               default=0.0)
    return {"originals": len(sizes), "pairs_sharing_a_shingle": len(shared),
            "max_jaccard_between_originals": best,
            "mean_shingles_per_document": float(np.mean(list(sizes.values())))}


# ---------------------------------------------------------------------------
# Scoring a removed set
# ---------------------------------------------------------------------------


def score(corpus: Corpus, removed: set[str], duplicate_of: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """Recall per true-Jaccard band, distinct documents removed, precision."""
    buckets = []
    for low, high in BUCKETS:
        pairs = [(c, o) for c, (o, _, j) in corpus.copies.items() if low <= j < high]
        caught = [p for p in pairs if (p[0] in removed) != (p[1] in removed)]
        row = {"band": f"{low:.2f}-{min(high, 1.0):.2f}" if high <= 1.0 else "1.00",
               "pairs": len(pairs), "caught": len(caught),
               "recall": len(caught) / len(pairs) if pairs else None,
               "lsh_probability": lsh_probability((low + min(high, 1.0)) / 2, 14, 8)}
        if duplicate_of is not None:
            row["first_kept"] = sum(1 for c, o in pairs if duplicate_of.get(c) == o)
        buckets.append(row)
    high = [(c, o) for c, (o, _, j) in corpus.copies.items() if j >= 0.8]
    caught_high = sum(1 for c, o in high if (c in removed) != (o in removed))
    explained = sum(1 for d in removed if d in corpus.partner and corpus.partner[d] not in removed)
    alone_removed = len(removed & corpus.originals_alone)
    return {
        "removed": len(removed),
        "recall_at_0.8": caught_high / len(high) if high else None,
        "pairs_at_0.8": len(high),
        "distinct_removed": alone_removed,
        "distinct_documents": len(corpus.originals_alone),
        "distinct_removed_share": alone_removed / len(corpus.originals_alone),
        "precision": explained / len(removed) if removed else 1.0,
        "buckets": buckets,
    }


# ---------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------


def run_ours(corpus: Corpus, source: Path, work: Path) -> dict[str, Any]:
    """``dedup --method minhash`` end to end (read JSONL, hash, cluster, write both files),
    and the core alone (signatures + clusters of in-memory texts)."""
    MinHasher().signatures(["warm up the compiled kernel"])
    settings = MinHashDedupSettings(input=source, output=work / "kept.jsonl",
                                    removed=work / "removed.jsonl", field="text")
    started = time.perf_counter()
    summary = dedup_minhash(settings)
    elapsed = time.perf_counter() - started
    removed_rows = [json.loads(line) for line in
                    (work / "removed.jsonl").read_text(encoding="utf-8").splitlines()]
    duplicate_of = {r["id"]: r["duplicate_of"] for r in removed_rows}
    errors = [abs(r["estimated_jaccard"] - corpus.copies[r["id"]][2]) for r in removed_rows
              if r["id"] in corpus.copies and r["duplicate_of"] == corpus.copies[r["id"]][0]]
    texts = [r["text"] for r in corpus.records]
    hasher = MinHasher()
    started = time.perf_counter()
    parts = [hasher.signatures(texts[i:i + 2048]) for i in range(0, len(texts), 2048)]
    signed = time.perf_counter() - started
    values = np.concatenate([p.values for p in parts])
    tokens = np.concatenate([p.tokens for p in parts])
    started = time.perf_counter()
    cluster(values, tokens, hasher.bands, hasher.rows)
    clustered = time.perf_counter() - started
    return {
        "seconds": elapsed, "docs_per_second": len(texts) / elapsed,
        "core_signature_seconds": signed, "core_cluster_seconds": clustered,
        "core_docs_per_second": len(texts) / (signed + clustered),
        "tokens_before": summary.tokens_before, "tokens_after": summary.tokens_after,
        "estimate_mean_abs_error": float(np.mean(errors)) if errors else None,
        "estimate_max_abs_error": float(np.max(errors)) if errors else None,
        **score(corpus, set(duplicate_of), duplicate_of),
    }


def run_numpy_signature(corpus: Corpus, documents: int) -> dict[str, Any]:
    """The signature step alone, from the same shingles with the same hash functions:
    plain numpy (a shingles x hashes matrix per batch, min-reduced per document) against
    the compiled kernel (tokens in, signatures out). For the choice of the kernel."""
    from selfinstruct.similarity import minhash_kernel
    from selfinstruct.similarity.minhash import token_stream

    hasher = MinHasher()
    a, b = hasher.permutations
    texts = [r["text"] for r in corpus.records[:documents]]
    shingles = [hasher.shingles(t) for t in texts]
    started = time.perf_counter()
    for i in range(0, len(shingles), 128):
        batch = shingles[i:i + 128]
        flat = _fmix64(np.concatenate(batch))
        permuted = flat[:, None] * a + b
        offsets = np.cumsum([0] + [len(s) for s in batch[:-1]])
        np.minimum.reduceat(permuted, offsets, axis=0)
    numpy_seconds = time.perf_counter() - started
    streams = [(token_stream(texts[i:i + 2048], "multilingual"), len(texts[i:i + 2048]))
               for i in range(0, len(texts), 2048)]
    started = time.perf_counter()
    for codes, count in streams:
        minhash_kernel.signatures(codes, count, hasher.ngram, a, b)
    kernel_seconds = time.perf_counter() - started
    return {"documents": len(texts),
            "numpy_signature_us_per_doc": numpy_seconds / len(texts) * 1e6,
            "kernel_us_per_doc": kernel_seconds / len(texts) * 1e6}


def _fmix64(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def run_datasketch(corpus: Corpus, documents: int) -> dict[str, Any]:
    """datasketch as documented: MinHash.generator over shingle bytes (sha1, 64-bit,
    affine64), MinHashLSH with the same 14 x 8 bands, query-then-insert in order."""
    from datasketch import MinHash, MinHashLSH
    from datasketch.hashfunc import sha1_hash64

    records = corpus.records[:documents]
    started = time.perf_counter()
    shingle_lists = []
    for record in records:
        words = tokenize(record["text"])
        grams = [" ".join(words[i:i + 5]) for i in range(max(len(words) - 4, 1))]
        shingle_lists.append([g.encode("utf-8") for g in grams])
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    removed = set()
    for record, minhash in zip(records, MinHash.generator(
            shingle_lists, num_perm=112, seed=1, scheme="affine64", hashfunc=sha1_hash64),
            strict=True):
        if lsh.query(minhash):
            removed.add(record["id"])
        lsh.insert(record["id"], minhash)
    elapsed = time.perf_counter() - started
    return {"documents": len(records), "seconds": elapsed,
            "docs_per_second": len(records) / elapsed,
            "removed_greedy": len(removed)}


def run_datatrove(corpus: Corpus, source: Path, work: Path, stock: bool) -> dict[str, Any]:
    """datatrove's four MinHash steps with its local executor, one task at a time
    (tasks=1, the bucket step 14 tasks, workers=1), on the same JSONL file."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    from selfinstruct.stages.dedup_datatrove import datatrove_steps

    settings = MinHashDedupSettings(input=source, output=work / "kept",
                                    removed=work / "removed", field="text")
    steps = datatrove_steps(settings, work / "steps")
    if stock:  # datatrove's own word tokenizer for the language (spaCy; jieba for Chinese)
        signature = steps.signatures[1]
        steps = dataclasses.replace(steps, signatures=[steps.signatures[0], MinhashDedupSignature(
            output_folder=str(work / "steps" / "signatures"), config=signature.config,
            language="eng" if corpus.language == "en" else "cmn")])
    seconds = {}
    for name, pipeline, tasks in (("signatures", steps.signatures, 1),
                                  ("buckets", steps.buckets, steps.buckets_tasks),
                                  ("clusters", steps.clusters, 1),
                                  ("filter", steps.filter, 1)):
        started = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                              logging_dir=str(work / "logs" / name)).run()
        seconds[name] = time.perf_counter() - started
    removed = {json.loads(line)["id"] for path in (work / "removed").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()}
    total = sum(seconds.values())
    return {"seconds": total, "docs_per_second": len(corpus.records) / total,
            "step_seconds": seconds, **score(corpus, removed)}


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--languages", nargs="+", default=["en", "zh"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasketch-docs", type=int, default=20_000)
    parser.add_argument("--datatrove-stock-docs", type=int, default=20_000,
                        help="datatrove with its own spaCy/jieba tokenizer takes 7-10 ms "
                        "per document, so it runs on this prefix of the corpus")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["datasketch", "datatrove", "datatrove-stock", "numpy",
                                 "distinct"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": sys.version.split()[0], "numpy": np.__version__,
                    "load_average": os.getloadavg()},
        "docs": args.docs, "seed": args.seed, "languages": {},
    }
    for language in args.languages:
        started = time.perf_counter()
        corpus = make_corpus(language, args.docs, args.seed)
        print(f"[{language}] corpus of {len(corpus.records):,} in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        work = Path(tempfile.mkdtemp(prefix=f"bench-minhash-{language}-"))
        source = work / "corpus.jsonl"
        with source.open("w", encoding="utf-8") as out:
            for record in corpus.records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        entry: dict[str, Any] = {
            "bytes_per_document": source.stat().st_size / len(corpus.records),
            "copies": len(corpus.copies),
            "copies_per_band": {row["band"]: row["pairs"]
                                for row in score(corpus, set())["buckets"]},
        }
        if "distinct" not in args.skip:
            entry["distinctness"] = distinctness(corpus)
            print(f"[{language}] distinct: {entry['distinctness']}", flush=True)
        (work / "ours").mkdir()
        entry["ours"] = run_ours(corpus, source, work / "ours")
        print(f"[{language}] ours: {_brief(entry['ours'])}", flush=True)
        if "numpy" not in args.skip:
            entry["numpy"] = run_numpy_signature(corpus, 5000)
            print(f"[{language}] numpy signature: {entry['numpy']}", flush=True)
        if "datasketch" not in args.skip:
            entry["datasketch"] = run_datasketch(corpus, args.datasketch_docs)
            print(f"[{language}] datasketch: {entry['datasketch']}", flush=True)
        for stock in (False, True):
            name = "datatrove-stock" if stock else "datatrove"
            if name in args.skip:
                continue
            subset, subset_source = corpus, source
            if stock and args.datatrove_stock_docs < len(corpus.records):
                subset = corpus.prefix(args.datatrove_stock_docs)
                subset_source = work / "prefix.jsonl"
                with subset_source.open("w", encoding="utf-8") as out:
                    for record in subset.records:
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
            try:
                entry[name] = run_datatrove(subset, subset_source, work / name, stock)
                entry[name]["documents"] = len(subset.records)
                print(f"[{language}] {name}: {_brief(entry[name])}", flush=True)
            except ImportError as error:
                entry[name] = {"skipped": f"not importable: {error}"}
                print(f"[{language}] {name} skipped: {error}", flush=True)
        results["languages"][language] = entry
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def _brief(result: dict[str, Any]) -> str:
    keys = ("seconds", "docs_per_second", "core_docs_per_second", "recall_at_0.8",
            "distinct_removed_share", "precision", "removed", "estimate_mean_abs_error",
            "step_seconds")
    return json.dumps({k: result[k] for k in keys if k in result})


if __name__ == "__main__":
    main()
