"""The MinHash core (pure): shingles over the multilingual tokenizer, signatures equal to
datasketch's, LSH clusters that keep the first document in order, and honest estimates."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from selfinstruct.similarity.minhash import (
    MinHasher,
    cluster,
    estimate_jaccard,
    lsh_probability,
)
from selfinstruct.similarity.tokens import tokenize
from tests.helpers import chinese_document, edit_words, english_document


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    def shingles(text: str) -> set[tuple[str, ...]]:
        tokens = tokenize(text)
        return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}
    first, second = shingles(a), shingles(b)
    return len(first & second) / len(first | second)


def test_signature_equals_datasketch_affine64_on_the_same_shingles():
    hasher = MinHasher(seed=7)
    rng = random.Random(0)
    texts = [english_document(rng), chinese_document(rng), "Too short", "", "!!! ???",
             "Mixed 中文 and English words, 日本語のテキスト too."]
    signatures = hasher.signatures(texts)
    for text, values in zip(texts, signatures.values, strict=True):
        reference = MinHash(num_perm=hasher.num_perm, seed=7, scheme="affine64",
                            hashfunc=lambda h: h)
        shingles = hasher.shingles(text)
        if len(shingles):
            reference.update_batch([int(h) for h in shingles])
        assert np.array_equal(reference.digest(), values)
    assert signatures.tokens.tolist() == [len(tokenize(t)) for t in texts]


def test_shingles_are_word_ngrams_of_the_multilingual_tokenizer():
    hasher = MinHasher(ngram=3)
    # Same tokens, different punctuation and case: same shingles.
    assert np.array_equal(hasher.shingles("The cat, the HAT!"), hasher.shingles("the cat the hat"))
    assert len(hasher.shingles("a b c d e")) == 3
    # Chinese: one token per character, so 5 characters give 3 shingles of 3.
    assert len(hasher.shingles("写一首诗吧")) == 3
    # Fewer tokens than n: the whole text is one shingle; none at all: no shingle.
    assert len(hasher.shingles("two words")) == 1
    assert len(hasher.shingles("...")) == 0
    # Order matters inside a shingle.
    assert not np.array_equal(hasher.shingles("a b c"), hasher.shingles("c b a"))
    # The rouge tokenizer sees no Chinese at all.
    assert len(MinHasher(tokenizer="rouge").shingles("写一首关于大海的诗")) == 0


def test_signatures_depend_only_on_text_and_settings():
    texts = ["one two three four five six seven", "写一首关于大海的诗"]
    first = MinHasher(seed=3).signatures(texts).values
    again = MinHasher(seed=3).signatures(list(reversed(texts))).values[::-1]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, MinHasher(seed=4).signatures(texts).values)
    assert MinHasher(bands=3, rows=5).signatures(texts).values.shape == (2, 15)


@pytest.mark.parametrize("make", [english_document, chinese_document], ids=["en", "zh"])
def test_planted_near_duplicates_are_found_and_distinct_documents_are_not(make):
    rng = random.Random(11)
    bases = [make(rng) for _ in range(60)]
    # Four copies with 1% of the tokens changed (true Jaccard ~0.9), placed later.
    planted = {60 + k: (3 * k, edit_words(bases[3 * k], rng, 2, "edit")) for k in range(4)}
    texts = bases + [text for _, text in planted.values()]
    for position, (base, text) in planted.items():
        assert 0.85 < true_jaccard(bases[base], text) < 0.95, position
    hasher = MinHasher()
    signatures = hasher.signatures(texts)
    clusters = cluster(signatures.values, signatures.tokens, hasher.bands, hasher.rows)
    assert clusters.removed.tolist() == sorted(planted)
    assert [int(clusters.keeper[p]) for p in planted] == [base for base, _ in planted.values()]
    estimates = estimate_jaccard(signatures.values, clusters.removed,
                                 clusters.keeper[clusters.removed])
    for (base, text), estimate in zip(planted.values(), estimates, strict=True):
        assert abs(estimate - true_jaccard(bases[base], text)) < 0.12


def test_cluster_keeps_the_first_document_of_each_component_in_input_order():
    # Hand-made signatures of 2 bands x 1 row: 0-3 share band 0, 3-5 share band 1
    # (a chain, so 5 joins 0's cluster), 1 and 2 are alone, 6 is a copy of 1.
    values = np.array([[10, 20], [11, 21], [12, 22], [10, 23], [14, 24], [15, 23], [11, 21]],
                      dtype=np.uint64)
    clusters = cluster(values, np.ones(7, dtype=np.int64), bands=2, rows=1)
    assert clusters.keeper.tolist() == [0, 1, 2, 0, 4, 0, 1]
    assert clusters.removed.tolist() == [3, 5, 6]


def test_a_band_is_rows_consecutive_values_and_only_a_whole_band_links():
    # 3 bands x 2 rows: band b is columns 2b and 2b+1. Each document is its own values
    # except where noted; only a whole band in common makes two documents duplicates.
    values = np.array([
        [100, 101, 102, 103, 104, 105],
        [200, 201, 202, 203, 104, 105],  # band 2 of 0: a duplicate of 0
        [300, 101, 102, 303, 304, 305],  # columns 1-2 of 0, across a band boundary
        [100, 401, 102, 403, 104, 405],  # the first row of every band of 0, no whole band
        [300, 101, 502, 503, 504, 505],  # band 0 of 2: a duplicate of 2
        [100, 601, 602, 103, 604, 605],  # columns 0 and 3 of 0 (every third value)
    ], dtype=np.uint64)
    clusters = cluster(values, np.ones(6, dtype=np.int64), bands=3, rows=2)
    assert clusters.keeper.tolist() == [0, 0, 2, 3, 2, 5]


def test_texts_without_tokens_are_never_duplicates():
    hasher = MinHasher()
    texts = ["", "!!!", "", "a b c d e f", "a b c d e f"]
    signatures = hasher.signatures(texts)
    clusters = cluster(signatures.values, signatures.tokens, hasher.bands, hasher.rows)
    assert clusters.removed.tolist() == [4]


def test_cluster_of_a_long_chain_settles_on_its_first_document():
    count = 500
    values = np.zeros((count, 1), dtype=np.uint64)
    clusters = cluster(values, np.ones(count, dtype=np.int64), bands=1, rows=1)
    assert set(clusters.keeper.tolist()) == {0}
    # A chain where each document links only to the next: i shares band i % 2 with i+1.
    chain = np.array([[i // 2 * 2, (i + 1) // 2 * 2 + 1] for i in range(count)], dtype=np.uint64)
    order = np.random.default_rng(0).permutation(count)
    shuffled = cluster(chain[order], np.ones(count, dtype=np.int64), bands=2, rows=1)
    assert set(shuffled.keeper.tolist()) == {0}


def test_lsh_probability_is_the_s_curve():
    assert lsh_probability(0.8, 14, 8) == pytest.approx(0.924, abs=1e-3)
    assert lsh_probability(0.5, 14, 8) == pytest.approx(0.053, abs=1e-3)
    assert lsh_probability(1.0, 14, 8) == 1.0


@pytest.mark.parametrize(("options", "message"), [
    ({"ngram": 0}, "ngram must be at least 1"),
    ({"bands": 0}, "bands must be at least 1"),
    ({"rows": -1}, "rows must be at least 1"),
    ({"seed": -1}, "seed must not be negative"),
    ({"tokenizer": "bert"}, "unknown tokenizer 'bert'"),
])
def test_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        MinHasher(**options)
