"""Near-duplicate removal for any dataset file: the library behind ``selfinstruct dedup``.

Two methods. ``rouge`` (:func:`dedup_file`) suits instructions: records are kept
greedily in file order; a record survives when its ROUGE-L F1 against every record kept
before it (and every text of an optional ``--against`` file, e.g. the seed tasks) is at
most the threshold, exactly the rule the bootstrap loop applies to
new instructions, so ``dedup`` can clean data made elsewhere or re-filter a run at a
different threshold.

The input is read twice: once to validate it completely (so a bad line 90,000 fails
before any output is written), then to filter it. Kept records are written as JSON
Lines, one line each, flushed as they go, unchanged apart from formatting.

``minhash`` (:func:`dedup_minhash`) suits long documents, where an LCS per pair is too
slow: pass 1 hashes every record's text into a MinHash signature (validating the
whole file on the way), the signatures are clustered by LSH bands, and pass 2 writes
each cluster's first record to the output and the others, with the record they
duplicate and the estimated Jaccard similarity, to the ``--removed`` file.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from selfinstruct.errors import UserError
from selfinstruct.runs.readers import iter_objects, json_type
from selfinstruct.similarity import TokenizerName
from selfinstruct.similarity.tokens import TOKENIZERS

# numpy (and the index and MinHash modules built on it) is imported by the functions
# that deduplicate, not with this module, which every ``selfinstruct`` command loads.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from selfinstruct.similarity.minhash import MinHasher, Signatures

__all__ = ["DedupSummary", "MinHashSummary", "Record", "count_records", "dedup_file",
           "dedup_minhash", "iter_records"]

#: Records hashed per kernel call: big enough to amortise the call, small enough that
#: the batch's text is a few MB.
MINHASH_BATCH = 2048

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


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


@dataclass(frozen=True)
class DedupSummary:
    """What a dedup run did, for the CLI to print."""

    read: int
    kept: int
    dropped: int
    elapsed_seconds: float
    against: int = 0  # texts loaded from the --against file

    @property
    def records_per_second(self) -> float:
        """Throughput, for the closing line of the CLI."""
        return self.read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


@dataclass(frozen=True)
class Record:
    """One input object, where it came from, and the text it is compared on."""

    line: int
    data: dict[str, Any]
    text: str


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def iter_records(path: Path, field: str = "instruction") -> Iterator[Record]:
    """Yield the objects of a JSONL file or a JSON array file, in order, with the line
    each starts on; raise :class:`UserError` (``file:line: what is wrong``) on bad input.

    The format is decided by the first non-blank character: ``[`` means a JSON array.
    JSON Lines files are streamed line by line, so their size is not limited by memory.
    """
    for line, value in iter_objects(path):
        yield _record(path, line, value, field)


def count_records(path: Path, field: str = "instruction") -> int:
    """Validate the whole file and return how many records it holds (a progress total)."""
    return sum(1 for _ in iter_records(path, field))


def _record(path: Path, line: int, value: Any, field: str) -> Record:
    """Check that a parsed value is an object with a string ``field``."""
    if not isinstance(value, dict):
        raise UserError(f"{path}:{line}: expected a JSON object, got {json_type(value)}")
    if field not in value:
        fields = ", ".join(sorted(value)) or "none"
        raise UserError(f"{path}:{line}: no {field!r} field (fields: {fields}); "
                        "use --field to choose the text field")
    text = value[field]
    if not isinstance(text, str):
        raise UserError(f"{path}:{line}: field {field!r} is {json_type(text)}, "
                        "expected a string")
    return Record(line, value, text)


# ---------------------------------------------------------------------------
# Filtering
# ---------------------------------------------------------------------------


def dedup_file(
    input_path: Path,
    output_path: Path,
    *,
    threshold: float = 0.7,
    tokenizer: str = "multilingual",
    field: str = "instruction",
    against: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DedupSummary:
    """Write to ``output_path`` (JSONL, replaced if it exists) every record of
    ``input_path`` whose ROUGE-L F1 against all records kept before it and all texts of
    ``against`` is at most ``threshold``.

    ``progress(read, kept)`` is called after each record. Everything is validated before
    the output is opened, so bad input never leaves a partial output file.
    """
    started = time.perf_counter()
    _check_options(input_path, output_path, threshold, tokenizer, against)
    count_records(input_path, field)
    from selfinstruct.similarity.index import SimilarityIndex

    index = SimilarityIndex(tokenizer=tokenizer)
    if against is not None:
        for reference in iter_records(against, field):
            index.add(reference.text)
    reference_count = len(index)
    read = kept = 0
    with _open_output(output_path) as out:
        for record in iter_records(input_path, field):
            read += 1
            if not index.exceeds(record.text, threshold):
                index.add(record.text)
                out.write(json.dumps(record.data, ensure_ascii=False) + "\n")
                out.flush()
                kept += 1
            if progress is not None:
                progress(read, kept)
    return DedupSummary(read=read, kept=kept, dropped=read - kept,
                        elapsed_seconds=time.perf_counter() - started, against=reference_count)


def _check_options(input_path: Path, output_path: Path, threshold: float, tokenizer: str,
                   against: Path | None) -> None:
    """Reject option combinations that cannot work, before touching any file."""
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"--similarity-threshold must be between 0 and 1, got {threshold}")
    if tokenizer not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {tokenizer!r}; use one of: "
                        + ", ".join(sorted(TOKENIZERS)))
    for source, flag in ((input_path, "the input"), (against, "the --against file")):
        if source is not None and _same_file(source, output_path):
            raise UserError(f"output {output_path} is {flag}; write to a different file")
    if output_path.is_dir():
        raise UserError(f"output {output_path} is a directory; give a file name")


def _open_output(path: Path) -> TextIO:
    """Open the output for writing, turning OS errors into a message with the path."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through links or relative paths)."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


# ---------------------------------------------------------------------------
# MinHash
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MinHashSummary:
    """What a MinHash dedup run did: counts, tokens before and after, time."""

    read: int
    kept: int
    removed: int
    clusters: int  # clusters with at least one removed record
    tokens_before: int
    tokens_after: int
    elapsed_seconds: float

    @property
    def records_per_second(self) -> float:
        """Throughput, for the closing line of the CLI."""
        return self.read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


#: How MinHash dedup reports progress: (step, records done); steps are "hashing"
#: (pass 1) and "writing" (pass 2).
MinHashProgress = Callable[[str, int], None]


def dedup_minhash(settings: MinHashDedupSettings,
                  progress: MinHashProgress | None = None) -> MinHashSummary:
    """Keep the first record of each MinHash/LSH cluster of ``settings.input``, in input
    order, in ``settings.output``; write the others to ``settings.removed`` (if set) with
    ``duplicate_of`` and ``estimated_jaccard``.

    ``duplicate_of`` is the kept record's ``settings.id_field`` value, or its 0-based
    position in the input when it has none. The whole input is read and hashed before
    any output is opened, so bad input never leaves a partial output file.
    """
    import numpy as np

    from selfinstruct.similarity.minhash import MinHasher, cluster, estimate_jaccard

    started = time.perf_counter()
    _check_minhash_paths(settings)
    hasher = MinHasher(ngram=settings.ngram, bands=settings.bands, rows=settings.rows,
                       seed=settings.seed, tokenizer=settings.tokenizer)
    signatures = _hash_records(settings.input, settings.field, hasher, progress)
    keeper = cluster(signatures.values, signatures.tokens, hasher.bands, hasher.rows).keeper
    kept = keeper == np.arange(len(keeper))
    removed = np.flatnonzero(~kept)
    estimates = np.full(len(keeper), np.nan)
    estimates[removed] = estimate_jaccard(signatures.values, removed, keeper[removed])
    _write_split(settings, keeper, estimates, progress)
    return MinHashSummary(
        read=len(keeper), kept=int(kept.sum()), removed=len(removed),
        clusters=len(np.unique(keeper[removed])),
        tokens_before=int(signatures.tokens.sum()),
        tokens_after=int(signatures.tokens[kept].sum()),
        elapsed_seconds=time.perf_counter() - started)


def _check_minhash_paths(settings: MinHashDedupSettings) -> None:
    """The outputs must be files distinct from the input and from each other."""
    outputs = [(settings.output, "output")]
    if settings.removed is not None:
        outputs.append((settings.removed, "--removed file"))
        if _same_file(settings.output, settings.removed):
            raise UserError(f"--removed {settings.removed} is the output; write the removed "
                            "records to a different file")
    for path, name in outputs:
        if _same_file(settings.input, path):
            raise UserError(f"{name} {path} is the input; write to a different file")
        if path.is_dir():
            raise UserError(f"{name} {path} is a directory; give a file name")


def _hash_records(path: Path, field: str, hasher: MinHasher,
                  progress: MinHashProgress | None) -> Signatures:
    """Pass 1: every record's signature and token count, in input order."""
    import numpy as np

    from selfinstruct.similarity.minhash import Signatures

    values: list[npt.NDArray[np.uint64]] = [np.zeros((0, hasher.num_perm), dtype=np.uint64)]
    tokens: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    batch: list[str] = []
    done = 0
    for record in iter_records(path, field):
        batch.append(record.text)
        if len(batch) == MINHASH_BATCH:
            done += _hash_batch(hasher, batch, values, tokens)
            if progress is not None:
                progress("hashing", done)
    done += _hash_batch(hasher, batch, values, tokens)
    if progress is not None:
        progress("hashing", done)
    return Signatures(np.concatenate(values), np.concatenate(tokens))


def _hash_batch(hasher: MinHasher, batch: list[str], values: list[npt.NDArray[np.uint64]],
                tokens: list[npt.NDArray[np.int64]]) -> int:
    """Hash and clear ``batch``, appending its results; return how many it held."""
    if not batch:
        return 0
    result = hasher.signatures(batch)
    values.append(result.values)
    tokens.append(result.tokens)
    size = len(batch)
    batch.clear()
    return size


def _write_split(settings: MinHashDedupSettings, keeper: npt.NDArray[np.int64],
                 estimates: npt.NDArray[np.float64], progress: MinHashProgress | None) -> None:
    """Pass 2: copy each record to the output or, annotated, to the removed file."""
    import numpy as np

    leaders = set(keeper[keeper != np.arange(len(keeper))].tolist())
    names: dict[int, Any] = {}
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(_open_output(settings.output))
        removed_out = (stack.enter_context(_open_output(settings.removed))
                       if settings.removed is not None else None)
        for position, record in enumerate(iter_records(settings.input, settings.field)):
            if position >= len(keeper):
                raise UserError(f"{settings.input} changed while it was being deduplicated")
            leader = int(keeper[position])
            if leader == position:
                out.write(json.dumps(record.data, ensure_ascii=False) + "\n")
                if position in leaders:
                    names[position] = record.data.get(settings.id_field, position)
            elif removed_out is not None:
                annotated = {**record.data, "duplicate_of": names[leader],
                             "estimated_jaccard": round(float(estimates[position]), 4)}
                removed_out.write(json.dumps(annotated, ensure_ascii=False) + "\n")
            if progress is not None and (position + 1) % MINHASH_BATCH == 0:
                progress("writing", position + 1)
    if progress is not None:
        progress("writing", len(keeper))
