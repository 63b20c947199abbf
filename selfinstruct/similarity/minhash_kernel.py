"""The compiled inner loop of MinHash: token text in, one signature per document out.

A ~1 KB document has ~170 word 5-grams and a signature has 112 values (14 bands x 8
rows), so each document costs ~19,000 multiply-add-min steps. In numpy those steps
allocate a shingles x hashes matrix per batch and run at ~300 µs per document; fused
in one numba loop they take ~5 µs, leaving the regular-expression tokenizer as the
only real cost (BENCHMARKS.md, "MinHash dedup").

Input is the documents' tokens as UTF-32 code points: tokens separated by a space
(U+0020), documents by NUL (U+0000). Neither can occur inside a token of either
tokenizer, so the stream is unambiguous and the caller builds it with two
``str.join`` calls and one ``str.encode`` per batch.

Hashes, all 64-bit and independent of the process (no ``hash()`` salt), so a
signature depends only on the text, the n-gram length and the seed:

- token: FNV-1a over its code points, then the MurmurHash3 finalizer (``fmix64``);
- shingle (the n tokens starting at one position, or all tokens of a document with
  fewer than n): ``h = fmix64(h ^ token)`` from a fixed start, in order;
- signature value k: ``min over shingles of a[k] * fmix64(shingle) + b[k] (mod 2**64)``,
  which is datasketch's ``affine64`` scheme: ``MinHash(scheme="affine64", seed=s,
  num_perm=k, hashfunc=lambda h: h)`` fed these shingle hashes gives the same digest
  (the tests check it with ``==``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

#: A signature value no shingle produced (a document without tokens).
EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPACE = 0x20
_END = 0x00
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_SHINGLE_START = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def fmix64(value: np.uint64) -> np.uint64:  # pragma: no cover
    """MurmurHash3's 64-bit finalizer: a bijection whose every output bit depends on
    every input bit, so structured inputs still spread over all 64 bits."""
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xFF51AFD7ED558CCD)
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xC4CEB9FE1A85EC53)
    value ^= value >> np.uint64(33)
    return value


@njit(cache=True, nogil=True)
def _token_hashes(codes: npt.NDArray[np.uint32], start: int,
                  out: npt.NDArray[np.uint64]) -> tuple[int, int]:  # pragma: no cover
    """Hash the tokens of the document starting at ``codes[start]`` into ``out``;
    return (token count, index just past the document's NUL or the end)."""
    count = 0
    h = _FNV_OFFSET
    in_token = False
    position = start
    while position < len(codes):
        code = codes[position]
        position += 1
        if code == _SPACE or code == _END:  # noqa: SIM109 (numba)
            if in_token:
                out[count] = fmix64(h)
                count += 1
                h = _FNV_OFFSET
                in_token = False
            if code == _END:
                break
        else:
            h = (h ^ np.uint64(code)) * _FNV_PRIME
            in_token = True
    if in_token:
        out[count] = fmix64(h)
        count += 1
    return count, position


@njit(cache=True, nogil=True)
def _shingle(tokens: npt.NDArray[np.uint64], first: int,
             length: int) -> np.uint64:  # pragma: no cover
    """Order-sensitive hash of ``tokens[first:first + length]``."""
    h: np.uint64 = _SHINGLE_START
    for index in range(first, first + length):
        h = fmix64(h ^ tokens[index])
    return h


@njit(cache=True, nogil=True)
def _fold(row: npt.NDArray[np.uint64], shingle: np.uint64, a: npt.NDArray[np.uint64],
          b: npt.NDArray[np.uint64]) -> None:  # pragma: no cover
    """Lower ``row`` to the permuted values of one shingle where they are smaller."""
    x = fmix64(shingle)
    for k in range(len(a)):
        value = a[k] * x + b[k]
        if value < row[k]:
            row[k] = value


@njit(cache=True, nogil=True)
def signatures(codes: npt.NDArray[np.uint32], documents: int, ngram: int,
               a: npt.NDArray[np.uint64],
               b: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint64],
                                                   npt.NDArray[np.int64]]:  # pragma: no cover
    """(signatures, token counts) of the ``documents`` NUL-separated documents in
    ``codes``; a document without tokens gets a row of :data:`EMPTY`."""
    result = np.full((documents, len(a)), EMPTY, dtype=np.uint64)
    counts = np.zeros(documents, dtype=np.int64)
    tokens = np.empty(len(codes) + 1, dtype=np.uint64)
    position = 0
    for document in range(documents):
        count, position = _token_hashes(codes, position, tokens)
        counts[document] = count
        if count == 0:
            continue
        row = result[document]
        if count < ngram:
            _fold(row, _shingle(tokens, 0, count), a, b)
            continue
        for first in range(count - ngram + 1):
            _fold(row, _shingle(tokens, first, ngram), a, b)
    return result, counts


@njit(cache=True, nogil=True)
def shingle_hashes(codes: npt.NDArray[np.uint32],
                   ngram: int) -> npt.NDArray[np.uint64]:  # pragma: no cover
    """The shingle hashes of one document (the same stream format, no NUL needed): what
    :func:`signatures` folds, exposed so tests can feed them to another MinHash."""
    tokens = np.empty(len(codes) + 1, dtype=np.uint64)
    count, _ = _token_hashes(codes, 0, tokens)
    if count == 0:
        return np.empty(0, dtype=np.uint64)
    if count < ngram:
        out = np.empty(1, dtype=np.uint64)
        out[0] = _shingle(tokens, 0, count)
        return out
    out = np.empty(count - ngram + 1, dtype=np.uint64)
    for first in range(count - ngram + 1):
        out[first] = _shingle(tokens, first, ngram)
    return out
