"""The compiled inner loop of the ROUGE-L filter: "does any pool text score above t?".

Every candidate instruction of ``generate`` (and every text of ``dedup``) asks this
once. In numpy the question costs ~100 µs at a 50,000-text pool, nearly all of it
fixed per-call costs of counting a few thousand posting entries over the whole id
space; compiled with numba the same work is a few µs, which is what keeps the
pipeline's own CPU per request below 2 ms (BENCHMARKS.md).

:func:`first_above` counts, for each pool text, how many of the query's kept features
hold it, bounds its score, and scores the survivors exactly (best bound first) with
Hyyrö's bit-parallel LCS on one 64-bit word. The float operations are those of
``rouge_score`` in the same order, so every score is bit-identical to the reference
(the tests compare with ``==``). Queries must be at most 64 tokens (one word).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from selfinstruct.similarity import index as similarity

#: rouge_score's F1: the very function the numpy path and the reference use, compiled.
_fmeasure = njit(cache=True, nogil=True)(similarity._fmeasure)


@njit(cache=True, nogil=True)
def _popcount(word: np.uint64) -> int:  # pragma: no cover
    """Set bits of a 64-bit word (SWAR: no loop, no table)."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + ((word >> np.uint64(2))
                                                      & np.uint64(0x3333333333333333))
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((word * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def _bounded(hits: npt.NDArray[np.int32], need: int, extra: int, query_length: int,
             lengths: npt.NDArray[np.int32], counts: npt.NDArray[np.int32],
             threshold: float) -> tuple[npt.NDArray[np.int64],
                                        npt.NDArray[np.float64]]:  # pragma: no cover
    """Texts whose upper bound is above ``threshold``, with their bounds.

    ``counts`` is scratch (all zeros, at least pool-sized) and is all zeros again on
    return. A text in ``c`` of the counted postings shares at most ``c + extra`` tokens
    with the query, so min(c + extra, its length, the query's) bounds its LCS.
    """
    for item in hits:
        counts[item] += 1
    ids = np.empty(len(hits), dtype=np.int64)
    bounds = np.empty(len(hits), dtype=np.float64)
    found = 0
    for item in hits:
        count = counts[item]
        if count >= need:  # first sighting of a text with enough hits
            length = lengths[item]
            overlap = min(count + extra, length, query_length)
            bound = _fmeasure(overlap, query_length, length)
            if bound > threshold:
                ids[found] = item
                bounds[found] = bound
                found += 1
            counts[item] = 0  # later sightings of the same text see 0 and pass by
    for item in hits:
        counts[item] = 0
    return ids[:found], bounds[:found]


@njit(cache=True, nogil=True)
def _query_masks(query_tokens: npt.NDArray[np.int32],
                 slot_of: npt.NDArray[np.int32]) -> npt.NDArray[np.uint64]:  # pragma: no cover
    """Match mask per query slot (bit i: query position i holds that token); fills
    ``slot_of[token] = slot`` for the query's known tokens (the caller clears it)."""
    masks = np.zeros(len(query_tokens) + 1, dtype=np.uint64)
    slots = 0
    for position, token in enumerate(query_tokens):
        if token < 0:  # not in the pool's vocabulary: matches nothing
            continue
        slot = slot_of[token]
        if slot == 0:
            slots += 1
            slot = slots
            slot_of[token] = slot
        masks[slot] |= np.uint64(1) << np.uint64(position)
    return masks


@njit(cache=True, nogil=True)
def _lcs(text: npt.NDArray[np.int32], slot_of: npt.NDArray[np.int32],
         masks: npt.NDArray[np.uint64], low: np.uint64) -> int:  # pragma: no cover
    """LCS of the query (the bit pattern) and ``text``: ``V = (V + U) | (V - U)``,
    ``U = V & match``; bits above the query length may fill with carries and are
    masked off by ``low`` at the end."""
    v = ~np.uint64(0)
    for token in text:
        mask = masks[slot_of[token]]
        if mask:
            u = v & mask
            v = (v + u) | (v - u)
    return _popcount(~v & low)


@njit(cache=True, nogil=True)
def first_above(hits: npt.NDArray[np.int32], need: int, extra: int,
                query_tokens: npt.NDArray[np.int32], threshold: float,
                lengths: npt.NDArray[np.int32], starts: npt.NDArray[np.int64],
                tokens: npt.NDArray[np.int32], counts: npt.NDArray[np.int32],
                slot_of: npt.NDArray[np.int32]) -> tuple[int, float]:  # pragma: no cover
    """(id, score) of a pool text scoring above ``threshold``, else (-1, 0.0).

    ``hits``: the concatenated postings the caller kept; ``extra``: how many features
    it left out (each may add one shared token); ``need``: the fewest hits a text needs
    to possibly clear the threshold. ``counts`` (pool-sized) and ``slot_of``
    (vocabulary-sized) are zero scratch arrays and are zero again on return.
    Texts are scored best bound first (ties: first seen), so the witness is
    deterministic, and usually but not always the best match.
    """
    query_length = len(query_tokens)
    ids, bounds = _bounded(hits, need, extra, query_length, lengths, counts, threshold)
    result_id, result_score = -1, 0.0
    if len(ids):
        masks = _query_masks(query_tokens, slot_of)
        low = (np.uint64(1) << np.uint64(query_length)) - np.uint64(1) \
            if query_length < 64 else ~np.uint64(0)
        for index in np.argsort(-bounds, kind="mergesort"):
            item = ids[index]
            start = starts[item]
            length = lengths[item]
            lcs = _lcs(tokens[start:start + length], slot_of, masks, low)
            score = _fmeasure(lcs, query_length, length)
            if score > threshold:
                result_id, result_score = item, score
                break
        for token in query_tokens:
            if token >= 0:
                slot_of[token] = 0
    return result_id, result_score
