"""MinHash near-duplicate detection for long documents: signatures, LSH bands, clusters.

ROUGE-L is exact but its LCS is quadratic in text length, which suits instructions and
not ~3,000-token generated documents. MinHash estimates the Jaccard similarity of two
documents' sets of word n-grams (shingles) from the fraction of equal values in two
fixed-size signatures; locality-sensitive hashing (LSH) splits each signature into
``bands`` bands of ``rows`` values and calls two documents candidates when any band is
equal, which happens with probability ``1 - (1 - J**rows)**bands`` (14 x 8: 0.92 at
J = 0.8, 0.99 at 0.85, 0.05 at 0.5), without comparing every pair.

Words are the tokens of our tokenizers (``similarity.index``), so Chinese and Japanese
text gets one token per Han/Kana character and works without a segmenter. Candidates
are joined into clusters (connected components, as datatrove does), and the first
document of each cluster in input order is the one kept: the others are its
duplicates, each with its estimated Jaccard similarity to it. Through a chain
A~B~C, C can be removed as a duplicate of A with a low estimate; that is the
clustering rule, and the estimate makes it visible.

The signature is computed by a compiled kernel (``minhash_kernel``) that is
bit-compatible with datasketch's ``affine64`` MinHash; the banding and clustering are
a few vectorised numpy passes over all signatures at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from selfinstruct.similarity.tokens import TOKENIZERS

__all__ = ["Clusters", "MinHasher", "Signatures", "cluster", "estimate_jaccard",
           "lsh_probability"]

Uint64Array = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]


class Signatures(NamedTuple):
    """One row of ``num_perm`` values per document, and each document's token count."""

    values: Uint64Array
    tokens: IntArray


@dataclass(frozen=True)
class MinHasher:
    """Turns texts into MinHash signatures; equal settings give equal signatures in any
    process, so a signature can be stored, compared later or computed on another machine.

    ``ngram`` words per shingle (a text with fewer words is one shingle), ``bands`` x
    ``rows`` hash functions drawn from ``seed``.
    """

    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    tokenizer: str = "multilingual"

    def __post_init__(self) -> None:
        for name in ("ngram", "bands", "rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must not be negative, got {self.seed}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {self.tokenizer!r}")

    @property
    def num_perm(self) -> int:
        """Signature length: one hash function per row of every band."""
        return self.bands * self.rows

    @cached_property
    def permutations(self) -> tuple[Uint64Array, Uint64Array]:
        """(a, b) of the affine hash functions ``a * x + b mod 2**64``, ``a`` odd so each
        is a bijection; drawn exactly as datasketch draws its ``affine64`` ones."""
        generator = np.random.RandomState(self.seed)
        a = generator.randint(0, 1 << 63, self.num_perm, dtype=np.uint64) * np.uint64(2) \
            + np.uint64(1)
        b = generator.randint(0, 1 << 64, self.num_perm, dtype=np.uint64)
        return a, b

    def signatures(self, texts: Sequence[str]) -> Signatures:
        """Signatures of ``texts`` (a batch: one tokenizer call per text, one kernel call)."""
        from selfinstruct.similarity import minhash_kernel  # numba: imported on first use

        codes = token_stream(texts, self.tokenizer)
        a, b = self.permutations
        values, tokens = minhash_kernel.signatures(codes, len(texts), self.ngram, a, b)
        return Signatures(values, tokens)

    def shingles(self, text: str) -> Uint64Array:
        """The 64-bit shingle hashes of one text, in order (duplicates included)."""
        from selfinstruct.similarity import minhash_kernel

        return minhash_kernel.shingle_hashes(token_stream([text], self.tokenizer),
                                             self.ngram)


def token_stream(texts: Sequence[str], tokenizer: str) -> npt.NDArray[np.uint32]:
    """The kernel's input: tokens joined by spaces, texts by NUL, as UTF-32 code points."""
    split = TOKENIZERS[tokenizer]
    joined = "\x00".join(" ".join(split(text)) for text in texts)
    return np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)


def lsh_probability(jaccard: float, bands: int, rows: int) -> float:
    """Chance that two documents of this Jaccard similarity share at least one band."""
    return float(1.0 - (1.0 - jaccard**rows) ** bands)


def estimate_jaccard(values: Uint64Array, first: IntArray, second: IntArray) -> npt.NDArray[
        np.float64]:
    """Estimated Jaccard similarity of documents ``first[i]`` and ``second[i]``: the
    fraction of signature positions where they agree."""
    if len(first) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray((values[first] == values[second]).mean(axis=1), dtype=np.float64)


class Clusters(NamedTuple):
    """``keeper[i]``: the first document (in input order) of document i's cluster;
    i is kept when ``keeper[i] == i``."""

    keeper: IntArray

    @property
    def removed(self) -> IntArray:
        """Indexes of the documents that are not the first of their cluster, ascending."""
        return np.flatnonzero(self.keeper != np.arange(len(self.keeper)))


def cluster(values: Uint64Array, tokens: IntArray, bands: int, rows: int) -> Clusters:
    """Join documents that share any LSH band into clusters and name each cluster's
    first document. Documents without tokens share nothing and stay alone."""
    count = len(values)
    has_text = np.flatnonzero(tokens > 0)
    sources: list[IntArray] = []
    targets: list[IntArray] = []
    for band in range(bands):
        block = np.ascontiguousarray(values[has_text, band * rows:(band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        earliest = has_text[first[inverse.ravel()]]
        linked = earliest != has_text
        sources.append(has_text[linked])
        targets.append(earliest[linked])
    source = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    target = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    return Clusters(_component_minimum(count, source, target))


def _component_minimum(count: int, source: IntArray, target: IntArray) -> IntArray:
    """For each node of the graph given by the edges, the smallest node of its
    connected component: minimum-label propagation with pointer jumping, which settles
    in a few rounds on the small, shallow clusters near-duplicates form."""
    label = np.arange(count, dtype=np.int64)
    while True:
        before = label.copy()
        np.minimum.at(label, source, label[target])
        np.minimum.at(label, target, label[source])
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            return label
