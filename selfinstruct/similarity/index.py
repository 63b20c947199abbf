"""An exact, fast ROUGE-L similarity index.

Self-Instruct / Alpaca keep a generated instruction only if its ROUGE-L F1 against every
instruction already in the pool is at most a threshold. Done naively (as
``stanford_alpaca`` does, one ``rouge_score`` call per pool entry) that costs hours
once the pool holds tens of thousands of texts. :class:`SimilarityIndex` returns the
*same float, to the last bit*, much faster:

1. An inverted index maps every token occurrence feature ``(token, k-th occurrence)``
   to the ids of the texts that contain it. Summing postings gives, per pool text, the
   multiset overlap with the query, which bounds the LCS from above.
2. The bound is turned into an upper bound on F1 with the very same float formula
   ``rouge_score`` uses, so ``bound < best`` is an exact pruning test.
3. Candidates are scored exactly, best bound first, until no remaining bound can beat
   what was found, with Hyyrö's bit-parallel LCS (Allison–Dix family): on plain ints
   for the handful of texts most searches need, and vectorised over many texts (lanes
   of one Python big int, or numpy uint64 words) for large batches.

The score of a candidate ``c`` against a pool text ``p`` is
``rouge_score.rouge_scorer._score_lcs(target_tokens=c, prediction_tokens=p).fmeasure``
(the operand order of ``stanford_alpaca``'s ``generate_instruction.py``):
``precision = lcs / len(p)``, ``recall = lcs / len(c)``,
``f = 2 * precision * recall / (precision + recall)``. :func:`rouge_l` is the plain
reference implementation of that definition.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Generic, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from selfinstruct.similarity.tokens import tokenizer_function

__all__ = ["SimilarityIndex", "lcs_length", "rouge_l"]

# ---------------------------------------------------------------------------
# Reference definition
# ---------------------------------------------------------------------------


def _fmeasure(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge_score's F1, evaluated in the same float operations and the same order."""
    if target_len == 0 or prediction_len == 0:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _lcs_length_dp(a: Sequence[object], b: Sequence[object]) -> int:
    """Textbook O(len(a)·len(b)) LCS length: slow, obviously right, used as the definition."""
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b):
            if item == other:
                current.append(previous[j] + 1)
            else:
                current.append(max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> float:
    """ROUGE-L F1 of candidate ``a_tokens`` (rouge_score's *target*) against pool text
    ``b_tokens`` (its *prediction*), exactly as ``rouge_scorer._score_lcs`` computes it.

    This is the plain reference; :class:`SimilarityIndex` must agree with it bit for bit.
    """
    if not a_tokens or not b_tokens:
        return 0.0
    return _fmeasure(_lcs_length_dp(a_tokens, b_tokens), len(a_tokens), len(b_tokens))


def lcs_length(a: Sequence[object], b: Sequence[object]) -> int:
    """LCS length with Hyyrö's bit-parallel recurrence on Python ints (O(len(b)) big-int ops).

    Handy on its own for long sequences; the index runs the same recurrence, batched.
    """
    if not a or not b:
        return 0
    masks: dict[object, int] = {}
    for position, item in enumerate(a):
        masks[item] = masks.get(item, 0) | (1 << position)
    v = (1 << len(a)) - 1
    for item in b:
        u = v & masks.get(item, 0)
        v = (v + u) | (v - u)
    return len(a) - (v & ((1 << len(a)) - 1)).bit_count()


def _fmeasure_array(lcs: npt.NDArray[np.int64], target_len: int,
                    prediction_len: npt.NDArray[np.int32]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`_fmeasure` (same IEEE operations, same order, so same bits).

    Callers guarantee ``target_len > 0`` and ``prediction_len > 0``.
    """
    lcs_f = lcs.astype(np.float64)
    precision = lcs_f / prediction_len.astype(np.float64)
    recall = lcs_f / float(target_len)
    total = precision + recall
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 2.0 * precision * recall / total
    return np.where(total > 0, f, 0.0)


# ---------------------------------------------------------------------------
# Index internals
# ---------------------------------------------------------------------------

_WORD_BITS = 64
_FIRST_BATCH = 16
_BATCH_GROWTH = 4
_MAX_BATCH = 8192

if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Set bits per uint64 word."""
        return np.bitwise_count(words).astype(np.int64)

else:  # pragma: no cover - exercised only on numpy 1.x
    _BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)

    def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Set bits per uint64 word (byte lookup table for numpy 1.x)."""
        as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(-1, 8)
        counts: npt.NDArray[np.int64] = _BYTE_POPCOUNT[as_bytes].sum(axis=1)
        return counts


_Scalar = TypeVar("_Scalar", bound=np.generic)


class _GrowableArray(Generic[_Scalar]):
    """A 1-D numpy array with amortised appends, so per-text storage stays compact.

    Python lists of ints would cost ~36 bytes per token; this costs 4–8.
    """

    def __init__(self, dtype: type[_Scalar], capacity: int = 1024) -> None:
        self._data: npt.NDArray[_Scalar] = np.zeros(capacity, dtype=dtype)
        self._size = 0

    def extend(self, values: Sequence[int]) -> None:
        """Append ``values`` (growing the buffer by 1.5x when full)."""
        end = self._size + len(values)
        if end > len(self._data):
            grown = np.zeros(max(end, len(self._data) * 3 // 2 + 1024), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size:end] = values
        self._size = end

    @property
    def values(self) -> npt.NDArray[_Scalar]:
        """A view of the filled part (do not keep it across appends)."""
        return self._data[: self._size]

    @property
    def nbytes(self) -> int:
        """Bytes reserved, including spare capacity."""
        return int(self._data.nbytes)


class _Query(NamedTuple):
    """A tokenized candidate, resolved against the index vocabulary once per call."""

    length: int
    token_ids: list[int]  # -1 for tokens the pool has never seen
    counts: dict[int, int]  # known token id -> occurrences in the query


class _Bar(NamedTuple):
    """What an unscored pool text must be able to beat to still matter: a score above
    ``score``, or equal to it with an id below ``tie_id`` (-1: ties never pass)."""

    score: float
    tie_id: int

    def passes(self, bounds: npt.NDArray[np.float64],
               ids: npt.NDArray[np.int64] | None) -> npt.NDArray[np.bool_]:
        """Which candidates (with these upper bounds) could still clear the bar; ``ids``
        None means ``bounds`` is indexed by id."""
        keep = bounds > self.score
        if self.tie_id > 0:
            if ids is None:
                head = bounds[: self.tie_id]
                keep[: self.tie_id] |= head == self.score
            else:
                keep |= (bounds == self.score) & (ids < self.tie_id)
        return keep


class _TopK:
    """Collects the best ``k`` (score, id) pairs, ordered by score desc, then id asc."""

    def __init__(self, k: int) -> None:
        self.size = k
        self.items: list[tuple[float, int]] = []

    def offer(self, scores: npt.NDArray[np.float64], ids: npt.NDArray[np.int64]) -> bool:
        """Merge a scored batch (ids never offered before); never asks to stop early."""
        order = np.lexsort((ids, -scores))[: self.size]
        merged = self.items + [(float(scores[i]), int(ids[i])) for i in order if scores[i] > 0]
        merged.sort(key=lambda item: (-item[0], item[1]))
        self.items = merged[: self.size]
        return False

    def bar(self) -> _Bar:
        """Until k texts are found anything with a positive score counts; then the k-th."""
        if len(self.items) < self.size:
            return _Bar(0.0, -1)
        return _Bar(*self.items[-1])


class _Exceeds:
    """Answers "is anything above the threshold?", stopping at the first batch with a yes
    and keeping that batch's best (score, id) as the witness."""

    def __init__(self, threshold: float) -> None:
        self.found: tuple[float, int] | None = None
        self._bar = _Bar(threshold, -1)
        self.size = 1

    def offer(self, scores: npt.NDArray[np.float64], ids: npt.NDArray[np.int64]) -> bool:
        """Keep the batch's best text if it is above the threshold, and stop if so."""
        best = int(np.argmax(scores)) if len(scores) else -1
        if best >= 0 and scores[best] > self._bar.score:
            self.found = (float(scores[best]), int(ids[best]))
        return self.found is not None

    def bar(self) -> _Bar:
        """The threshold never moves."""
        return self._bar


class _Sink(Protocol):
    """Where exact scores go during a search, and what they must beat.

    ``size`` is how many scored texts it takes before the bar can rise above 0.
    """

    size: int

    def offer(self, scores: npt.NDArray[np.float64], ids: npt.NDArray[np.int64]) -> bool: ...

    def bar(self) -> _Bar: ...


# ---------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------


class SimilarityIndex:
    """A growing pool of texts answering "how similar is this to anything in the pool?".

    Scores are exactly ``rouge_score``'s ROUGE-L F1 (see the module docstring). Ids are
    consecutive from 0 in insertion order. Not thread-safe.
    """

    def __init__(self, tokenizer: str = "multilingual") -> None:
        self._tokenize = tokenizer_function(tokenizer)
        self._tokenizer_name = tokenizer
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []
        # Postings of a token's first occurrence in a text, indexed by token id, and of
        # its k-th repeat (k >= 1); sorted because ids only grow. A text is in at most
        # one list per (token, k) feature, so hits summed over the query's features give
        # the multiset overlap sum(min(count in query, count in text)).
        self._postings: list[array[int]] = []
        self._repeat_postings: dict[tuple[int, int], array[int]] = {}
        self._tokens = _GrowableArray(np.int32)  # all texts' token ids, concatenated
        self._starts = _GrowableArray(np.int64)  # where each text starts in _tokens
        self._lengths = _GrowableArray(np.int32)  # token count of each text
        self._max_length = 0
        self._text_bytes = bytearray()
        self._text_ends: array[int] = array("q")
        self._query_slot = np.zeros(1024, dtype=np.int32)  # token id -> 1 + query slot
        self._hit_counts = np.zeros(1024, dtype=np.int32)  # scratch: hits per text id
        self._bound_tables: dict[tuple[int, int], npt.NDArray[np.float64]] = {}
        self._last_text: str | None = None
        self._last_tokens: list[str] = []

    # -- building ------------------------------------------------------------------

    def add(self, text: str) -> int:
        """Add ``text`` to the pool and return its id (0, 1, 2, ...)."""
        return self.add_tokens(self._tokens_of(text), text)

    def add_tokens(self, tokens: Sequence[str], text: str | None = None) -> int:
        """Add an already tokenized text; ``text`` (default: the tokens joined by spaces)
        is what :meth:`text` returns for it."""
        item_id = len(self._lengths.values)
        token_ids = [self._intern(token) for token in tokens]
        seen: dict[int, int] = {}
        for token_id in token_ids:
            repeat = seen.get(token_id, 0)
            seen[token_id] = repeat + 1
            if repeat == 0:
                self._postings[token_id].append(item_id)
            else:
                self._repeat_posting(token_id, repeat).append(item_id)
        self._starts.extend([len(self._tokens.values)])
        self._lengths.extend([len(token_ids)])
        self._tokens.extend(token_ids)
        self._max_length = max(self._max_length, len(token_ids))
        stored = " ".join(tokens) if text is None else text
        self._text_bytes += stored.encode("utf-8", "surrogatepass")
        self._text_ends.append(len(self._text_bytes))
        return item_id

    def _intern(self, token: str) -> int:
        """Token string -> dense id, so the pool stores 4-byte ints, not strings."""
        token_id = self._vocab.get(token)
        if token_id is None:
            token_id = len(self._words)
            self._vocab[token] = token_id
            self._words.append(token)
            self._postings.append(array("i"))
        return token_id

    def _repeat_posting(self, token_id: int, repeat: int) -> array[int]:
        """Posting list of texts holding ``token_id`` at least ``repeat + 1`` times."""
        key = (token_id, repeat)
        posting = self._repeat_postings.get(key)
        if posting is None:
            posting = self._repeat_postings[key] = array("i")
        return posting

    def _tokens_of(self, text: str) -> list[str]:
        """Tokenize, remembering the last text: the usual call pattern is
        ``max_score(t)`` then ``add(t)`` with the same string."""
        if text is not self._last_text and text != self._last_text:
            self._last_tokens = self._tokenize(text)
            self._last_text = text
        return self._last_tokens

    # -- reading -------------------------------------------------------------------

    @property
    def tokenizer(self) -> str:
        """The tokenizer's name; fixed for the life of the index (ids depend on it)."""
        return self._tokenizer_name

    def __len__(self) -> int:
        return len(self._lengths.values)

    def __repr__(self) -> str:
        return f"SimilarityIndex(tokenizer={self.tokenizer!r}, size={len(self)})"

    def _check_id(self, i: int) -> None:
        """Ids are 0..len-1; anything else is a caller bug worth a clear message."""
        if not 0 <= i < len(self):
            raise IndexError(f"no text with id {i} (the pool has {len(self)})")

    def text(self, i: int) -> str:
        """The text added with id ``i``."""
        self._check_id(i)
        start = self._text_ends[i - 1] if i else 0
        return self._text_bytes[start:self._text_ends[i]].decode("utf-8", "surrogatepass")

    def tokens(self, i: int) -> list[str]:
        """The tokens of the text with id ``i`` (what it is scored on)."""
        self._check_id(i)
        start = int(self._starts.values[i])
        ids = self._tokens.values[start:start + int(self._lengths.values[i])]
        return [self._words[token_id] for token_id in ids.tolist()]

    @property
    def nbytes(self) -> int:
        """Approximate bytes held by the pool's buffers (postings, token ids, texts);
        the vocabulary dict is not counted."""
        postings = sum(p.buffer_info()[1] * p.itemsize for p in self._postings)
        repeats = sum(p.buffer_info()[1] * p.itemsize for p in self._repeat_postings.values())
        arrays = self._tokens.nbytes + self._starts.nbytes + self._lengths.nbytes
        texts = len(self._text_bytes) + len(self._text_ends) * self._text_ends.itemsize
        return postings + repeats + arrays + texts

    # -- scoring: public -----------------------------------------------------------

    def max_score(self, text: str) -> float:
        """Best ROUGE-L F1 of ``text`` against every text in the pool (0.0 if empty)."""
        return self.max_score_with_match_tokens(self._tokens_of(text))[0]

    def max_score_tokens(self, tokens: Sequence[str]) -> float:
        """:meth:`max_score` for an already tokenized candidate."""
        return self.max_score_with_match_tokens(tokens)[0]

    def max_score_with_match(self, text: str) -> tuple[float, int | None]:
        """Best score and the id of the pool text reaching it (lowest id on ties);
        ``(0.0, None)`` when the pool is empty or nothing shares a token."""
        return self.max_score_with_match_tokens(self._tokens_of(text))

    def max_score_with_match_tokens(self, tokens: Sequence[str]) -> tuple[float, int | None]:
        """:meth:`max_score_with_match` for an already tokenized candidate."""
        best = self._top_k(self._resolve(tokens), 1)
        if not best:
            return 0.0, None
        return best[0]

    def most_similar(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """Up to ``k`` pool texts with a score above 0, best first (ties: lower id first)."""
        return [(self.text(i), score) for i, score in self.most_similar_ids(text, k)]

    def most_similar_ids(self, text: str, k: int = 10) -> list[tuple[int, float]]:
        """Like :meth:`most_similar` but with ids instead of texts."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        found = self._top_k(self._resolve(self._tokens_of(text)), k)
        return [(item_id, score) for score, item_id in found]

    def exceeds(self, text: str, threshold: float) -> bool:
        """``max_score(text) > threshold``, answered faster: texts whose bound is at most
        the threshold are never scored, and the search stops at the first one above it."""
        return self.exceeds_tokens(self._tokens_of(text), threshold)

    def exceeds_tokens(self, tokens: Sequence[str], threshold: float) -> bool:
        """:meth:`exceeds` for an already tokenized candidate."""
        if threshold < 0:  # every score, even that of an empty pool, is >= 0
            return True
        return self.first_above_tokens(tokens, threshold) is not None

    def first_above(self, text: str, threshold: float) -> tuple[float, int] | None:
        """A pool text scoring above ``threshold`` as ``(score, id)``, or None if there is
        none: what :meth:`exceeds` finds, with the evidence a rejection should show.

        As cheap as :meth:`exceeds`; the text is the first found above the threshold
        (texts are scored best bound first), not always the best match, so ``score``
        may be below :meth:`max_score`. ``threshold`` must be >= 0: texts sharing no
        token with ``text`` score 0 and are never looked at.
        """
        return self.first_above_tokens(self._tokens_of(text), threshold)

    def first_above_tokens(self, tokens: Sequence[str],
                           threshold: float) -> tuple[float, int] | None:
        """:meth:`first_above` for an already tokenized candidate."""
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        query = self._resolve(tokens)
        if query.length > _WORD_BITS:
            sink = _Exceeds(threshold)
            self._search(query, sink)
            return sink.found
        return self._first_above_compiled(query, threshold)

    def _first_above_compiled(self, query: _Query, threshold: float) -> tuple[float, int] | None:
        """:meth:`first_above` through the compiled kernel (queries of <= 64 tokens): the
        same postings left out and the same bound as :meth:`_search`, counted and
        verified in one compiled call."""
        # Imported on first use: numba costs ~0.2 s to import (and compiles the kernel
        # once per install), which commands that never filter should not pay.
        from selfinstruct.similarity import kernel as similarity_kernel

        if not query.counts:
            return None
        used, skipped = self._postings_to_count(query, threshold)
        need = _hits_needed(query.length, skipped, threshold)
        if len(used) < need:
            return None
        if len(self._hit_counts) < len(self):
            self._hit_counts = np.zeros(2 * len(self), dtype=np.int32)
        found, score = similarity_kernel.first_above(
            np.frombuffer(b"".join(used), dtype=np.int32), need, skipped,
            np.array(query.token_ids, dtype=np.int32), threshold,
            self._lengths.values, self._starts.values, self._tokens.values,
            self._hit_counts, self._slot_scratch(),
        )
        return None if found < 0 else (score, found)

    # -- scoring: the search -------------------------------------------------------

    def _resolve(self, tokens: Sequence[str]) -> _Query:
        """Map query tokens to pool token ids without growing the vocabulary."""
        token_ids = [self._vocab.get(token, -1) for token in tokens]
        counts: dict[int, int] = {}
        for token_id in token_ids:
            if token_id >= 0:
                counts[token_id] = counts.get(token_id, 0) + 1
        return _Query(len(token_ids), token_ids, counts)

    def _top_k(self, query: _Query, k: int) -> list[tuple[float, int]]:
        """Exact top ``k`` by (score desc, id asc)."""
        if k == 0:
            return []
        sink = _TopK(k)
        self._search(query, sink)
        return sink.items

    def _search(self, query: _Query, sink: _Sink) -> None:
        """Feed ``sink`` exact scores of every pool text that could clear its bar.

        1. Leave out the postings of the most common query tokens for as long as a text
           made only of them could not clear the bar (only possible when the bar starts
           high, i.e. a threshold); the rest give every text sharing a token an upper
           bound on its score.
        2. Score candidates best bound first, in growing batches, and after each batch
           drop every candidate whose bound is below the (rising) bar. Only the bar test
           decides correctness; the order only decides how much work is done, and the
           first batch usually lifts the bar above nearly every other bound.

        While most of the pool shares a token with the query, bounds are kept as a dense
        array indexed by id (``ids is None``) until the first bar test thins them out.
        """
        if not query.counts:
            return
        bar = sink.bar()
        used, skipped = self._postings_to_count(query, bar.score)
        ids, bounds = self._bounded_candidates(query, used, skipped, bar)
        batch = _FIRST_BATCH
        if ids is None and bar.score <= 0 and bounds.size > batch:
            # At least ``sink.size`` texts, or the bar stays at 0 and nothing is pruned.
            chosen = np.flatnonzero(_best_mask(bounds, batch, sink.size))
            if sink.offer(self._exact_scores(query, chosen), chosen):
                return
            bounds[chosen] = 0.0
            bar = sink.bar()
            batch *= _BATCH_GROWTH
        keep = bar.passes(bounds, ids)
        if ids is None:
            ids = np.flatnonzero(keep)
            bounds = bounds[ids]
        else:
            ids, bounds = ids[keep], bounds[keep]
        while ids.size:
            chosen, ids, bounds = _split_best(ids, bounds, batch)
            if sink.offer(self._exact_scores(query, chosen), chosen):
                return
            keep = sink.bar().passes(bounds, ids)
            ids, bounds = ids[keep], bounds[keep]
            batch = min(batch * _BATCH_GROWTH, _MAX_BATCH)

    def _postings_to_count(self, query: _Query, bar: float) -> tuple[list[array[int]], int]:
        """The query's postings worth counting, and how many common ones were left out
        (only postings over 1/32 of the pool, only while provably safe for ``bar``)."""
        return _drop_common(self._features(query), query.length, bar, len(self) // 32)

    def _features(self, query: _Query) -> list[array[int]]:
        """The posting list of each (token, k-th occurrence) in the query, rarest first."""
        features: list[array[int]] = []
        for token_id, count in query.counts.items():
            features.append(self._postings[token_id])
            for repeat in range(1, count):
                posting = self._repeat_postings.get((token_id, repeat))
                if posting is None:  # nobody has this many, so nobody has more
                    break
                features.append(posting)
        features.sort(key=len)
        return features

    def _bounded_candidates(self, query: _Query, used: list[array[int]], skipped: int,
                            bar: _Bar) -> tuple[npt.NDArray[np.int64] | None,
                                                npt.NDArray[np.float64]]:
        """Texts in the ``used`` postings and an upper bound on each one's score, as
        (ids, bounds), or (None, bounds indexed by id) when most of the pool is hit.

        The bound is F1 with the LCS replaced by min(hits + skipped, len(text), len(query))
        (the multiset overlap is >= LCS), evaluated with the exact float formula, so a
        bound can never be below the true score. Texts with no hits get a bound that is 0
        (``skipped == 0``) or below the bar (see :func:`_drop_common`). With a fixed bar
        (a threshold), texts with too few hits to clear it are left out while counting.
        """
        need = _hits_needed(query.length, skipped, bar.score) if bar.tie_id < 0 else 1
        ids, hits = _count_hits(used, len(self), need)
        lengths = self._lengths.values
        lengths = lengths[: len(hits)] if ids is None else lengths[ids]
        table = self._bound_table(query.length, skipped)
        if table is not None:
            return ids, table.ravel()[hits * table.shape[1] + lengths]
        overlap = np.minimum(hits + skipped, np.minimum(lengths, query.length))
        return ids, _fmeasure_array(overlap, query.length, np.maximum(lengths, 1))

    def _bound_table(self, length: int, skipped: int) -> npt.NDArray[np.float64] | None:
        """Bounds for every (hits, text length) pair, cached: one gather per query instead
        of a dozen float ops per candidate. None when the table would be too big."""
        if (length + 1) * (self._max_length + 1) > _MAX_TABLE:
            return None
        key = (length, skipped)
        table = self._bound_tables.get(key)
        if table is None or table.shape[1] <= self._max_length:
            if len(self._bound_tables) > _MAX_TABLES:
                self._bound_tables.clear()
            hits = np.arange(length + 1, dtype=np.int64)[:, None]
            lengths = np.arange(self._max_length + 1, dtype=np.int32)
            lengths[0] = 1  # avoids 0/0; the column is zeroed below
            overlap = np.minimum(hits + skipped, np.minimum(lengths, length))
            table = _fmeasure_array(overlap, length, np.broadcast_to(lengths, overlap.shape))
            table[:, 0] = 0.0  # a text without tokens scores 0 against anything
            self._bound_tables[key] = table
        return table

    # -- scoring: exact LCS --------------------------------------------------------

    def _exact_scores(self, query: _Query,
                      ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Exact scores of ``query`` against the pool texts ``ids``."""
        if len(ids) <= _PYTHON_MAX_BATCH:
            return self._scores_python(query, ids)
        lengths = self._lengths.values[ids]
        return _fmeasure_array(self._lcs_many(query, ids, lengths), query.length, lengths)

    def _scores_python(self, query: _Query,
                       ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Exact scores one text at a time on plain ints: for the handful of texts most
        searches score, this beats the fixed cost of the vectorised path."""
        masks: dict[int, int] = {}
        for position, token_id in enumerate(query.token_ids):
            if token_id >= 0:
                masks[token_id] = masks.get(token_id, 0) | (1 << position)
        low = (1 << query.length) - 1
        tokens = self._tokens.values
        scores = []
        for start, length in zip(self._starts.values[ids].tolist(),
                                 self._lengths.values[ids].tolist(), strict=True):
            v = low
            for token_id in tokens[start:start + length].tolist():
                mask = masks.get(token_id)
                if mask:
                    u = v & mask
                    v = (v + u) | (v ^ u)
            scores.append(_fmeasure(query.length - (v & low).bit_count(), query.length, length))
        return np.array(scores, dtype=np.float64)

    def _lcs_many(self, query: _Query, ids: npt.NDArray[np.int64],
                  lengths: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        """LCS length of the query with each pool text in ``ids``, all at once.

        Positions whose token is not in the query leave the bit-parallel state unchanged,
        so each text is first compacted to its matching positions (in order): usually a
        third of its length. Python big ints (one lane per text) win for small batches,
        numpy uint64 vectors for large ones (which need the query to fit in one word).
        """
        slots = self._matching_slots(query, ids, lengths)
        if query.length <= _WORD_BITS and len(ids) >= _NUMPY_MIN_BATCH:
            masks = _slot_masks(query, 1)[:, 0][slots.T]  # (steps, texts)
            return _lcs_numpy(masks, query.length)
        words = query.length // _WORD_BITS + 1  # one spare bit per lane for the carry
        return _lcs_lanes(_slot_masks(query, words)[slots.T], query.length)

    def _slot_scratch(self) -> npt.NDArray[np.int32]:
        """The zeroed ``token id -> query slot`` array, grown to the vocabulary (its users
        set the query's tokens and clear them again)."""
        if len(self._query_slot) < len(self._words):
            self._query_slot = np.zeros(len(self._words) * 2, dtype=np.int32)
        return self._query_slot

    def _matching_slots(self, query: _Query, ids: npt.NDArray[np.int64],
                        lengths: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """(texts, steps) matrix: for each text, 1 + the query slot of each of its tokens
        that occurs in the query, in text order, then zeros (slot = index among the
        query's distinct known tokens)."""
        slot_of = self._slot_scratch()
        distinct = list(query.counts)
        slot_of[distinct] = np.arange(1, len(distinct) + 1, dtype=np.int32)
        try:
            tokens = self._tokens.values
            offsets = np.arange(int(lengths.max()))
            positions = self._starts.values[ids][:, None] + offsets
            np.minimum(positions, len(tokens) - 1, out=positions)
            slots = slot_of[tokens[positions]]
        finally:
            slot_of[distinct] = 0
        slots[offsets >= lengths[:, None]] = 0  # past a text's end: the next texts' tokens
        matched = slots > 0
        steps = int(matched.sum(axis=1).max())
        order = np.argsort(~matched, axis=1, kind="stable")[:, :steps]
        return np.take_along_axis(slots, order, axis=1)


_PYTHON_MAX_BATCH = 32
_NUMPY_MIN_BATCH = 192
_LEVELS = 1024
_MAX_TABLE = 1 << 16
_MAX_TABLES = 1024


def warm_up_kernel() -> None:
    """Load the compiled ROUGE-L kernel now (numba's cache, or a compile on a fresh
    install), on a throw-away index.

    The first filtered candidate otherwise pays for it, 0.3-1 s: ``generate`` calls this
    from a thread while its first requests are out, so that time overlaps the wait for
    their answers instead of delaying the next requests.
    """
    index = SimilarityIndex()
    index.add("warm up the kernel")
    index.first_above("warm up the kernel", 0.5)


def _drop_common(features: list[array[int]], query_length: int, bar: float,
                 heavy: int) -> tuple[list[array[int]], int]:
    """Leave out long postings (most common tokens) while that is provably safe.

    A text found in none of the kept postings shares at most ``skipped`` tokens with the
    query, so its score is at most F1(lcs=skipped, len(query), len(text)=skipped); as
    long as that is below the bar, such texts can be ignored. Returns (kept, skipped).
    """
    kept = list(features)
    skipped = 0
    while (kept and len(kept[-1]) > heavy
           and _fmeasure(skipped + 1, query_length, skipped + 1) < bar):
        kept.pop()
        skipped += 1
    return kept, skipped


def _hits_needed(query_length: int, skipped: int, bar: float) -> int:
    """The fewest hits a text needs for its bound to be above ``bar``.

    With ``o = min(hits + skipped, query_length)`` the bound is highest for a text of
    exactly ``o`` tokens: F1(o, query_length, o), which grows with ``o``.
    """
    for hits in range(1, query_length + 1):
        overlap = min(hits + skipped, query_length)
        if _fmeasure(overlap, query_length, overlap) > bar:
            return hits
    return query_length + 1


def _count_hits(postings: list[array[int]], pool_size: int,
                need: int = 1) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.int64]]:
    """How many of ``postings`` hold each id, for the ids in at least ``need`` of them:
    (those ids ascending, their counts) when that is cheap, else (None, counts indexed
    by id, ``need`` ignored) to skip a costly ``nonzero`` when most of the pool is hit."""
    if len(postings) < need:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    hits = np.frombuffer(b"".join(postings), dtype=np.int32)
    if need > 1:  # dense counts; only the few ids with enough hits are kept
        counts = np.bincount(hits)
        ids = np.flatnonzero(counts >= need)
        return ids, counts[ids]
    if len(hits) * 8 < pool_size:
        ids, counts = np.unique(hits, return_counts=True)
        return ids.astype(np.int64), counts.astype(np.int64)
    return None, np.bincount(hits)


def _best_mask(bounds: npt.NDArray[np.float64], batch: int,
               at_least: int = 1) -> npt.NDArray[np.bool_]:
    """Some of the positive bounds with the highest values: those within 15% of the top
    one, or (when that is far more than ``batch``) about ``batch`` of them, or (when
    that is fewer than ``at_least``) about ``at_least`` of them.

    Only speed depends on this choice: the first texts scored should lift the bar close
    to its final height, and these are the likeliest to; exact sorting would cost more.
    """
    top = float(bounds.max())
    if top <= 0:
        return np.zeros(bounds.shape, dtype=bool)
    chosen = bounds >= top * 0.85
    count = np.count_nonzero(chosen)
    if count < at_least:  # widen a little first: cheaper than the histogram below
        chosen = bounds >= top * 0.7
        count = np.count_nonzero(chosen)
    if at_least <= count <= 8 * batch:
        return chosen
    wanted = batch if count > 8 * batch else at_least
    levels = (bounds * _LEVELS).astype(np.intp)
    at_or_above = np.cumsum(np.bincount(levels, minlength=_LEVELS + 1)[::-1])[::-1]
    cutoff = int(np.flatnonzero(at_or_above >= min(wanted, bounds.size))[-1])
    return levels >= cutoff if cutoff > 0 else bounds > 0


def _split_best(ids: npt.NDArray[np.int64], bounds: npt.NDArray[np.float64],
                batch: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                     npt.NDArray[np.float64]]:
    """Split candidates into (about ``batch`` with the highest bounds, the rest)."""
    if ids.size <= batch:
        return ids, ids[:0], bounds[:0]
    chosen = _best_mask(bounds, batch)
    return ids[chosen], ids[~chosen], bounds[~chosen]


def _slot_masks(query: _Query, words: int) -> npt.NDArray[np.uint64]:
    """Match masks, one row per query slot (row 0: no match): bit i of row s is set when
    query position i holds the token of slot s. Shape (slots + 1, words)."""
    slot_of = {token_id: slot for slot, token_id in enumerate(query.counts, start=1)}
    masks = [0] * (len(slot_of) + 1)
    for position, token_id in enumerate(query.token_ids):
        slot = slot_of.get(token_id)
        if slot is not None:
            masks[slot] |= 1 << position
    raw = b"".join(mask.to_bytes(words * 8, "little") for mask in masks)
    return np.frombuffer(raw, dtype=np.uint64).reshape(len(masks), words)


def _lcs_lanes(masks: npt.NDArray[np.uint64], query_length: int) -> npt.NDArray[np.int64]:
    """Hyyrö's bit-parallel LCS, ``V = ((V + U) | (V - U)) & low`` with
    ``U = V & match_mask``, for many texts at once: each text gets a lane of
    ``words * 64`` bits in one Python int, and the query is the bit pattern.

    ``masks[j, t]`` holds the words of text t's j-th match mask. ``V`` stays within the
    low ``query_length`` bits of each lane and ``U`` is a subset of ``V``, so ``V + U``
    never carries into the next lane (each lane has a spare bit) and ``V - U == V ^ U``.
    A zero mask leaves ``V`` unchanged, so padding is harmless.
    LCS = query_length - set bits of the final ``V``.
    """
    steps, count, words = masks.shape
    lane_bytes = words * 8
    low = int.from_bytes(((1 << query_length) - 1).to_bytes(lane_bytes, "little") * count,
                         "little")
    v = low
    raw = memoryview(masks.tobytes())
    step_bytes = count * lane_bytes
    for j in range(steps):
        u = v & int.from_bytes(raw[j * step_bytes:(j + 1) * step_bytes], "little")
        v = ((v + u) | (v ^ u)) & low
    state = np.frombuffer(v.to_bytes(step_bytes, "little"), dtype=np.uint64)
    distances: npt.NDArray[np.int64] = _popcount(state.reshape(count, words)).sum(axis=1)
    return query_length - distances


def _lcs_numpy(masks: npt.NDArray[np.uint64], query_length: int) -> npt.NDArray[np.int64]:
    """The same recurrence on numpy uint64 vectors (queries of at most 64 tokens): one
    word per text, 4 in-place ufuncs per step, faster than big ints for large batches.
    Bits above the query length may fill with carries; they are masked off at the end.
    """
    v = np.full(masks.shape[1], np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    u = np.empty_like(v)
    x = np.empty_like(v)
    for mask in masks:
        np.bitwise_and(v, mask, out=u)
        np.bitwise_xor(v, u, out=x)  # == v - u, as u's bits are a subset of v's
        np.add(v, u, out=v)
        np.bitwise_or(v, x, out=v)
    low = np.uint64((1 << query_length) - 1)
    return _popcount(~v & low)
