"""The similarity index must give rouge_score's ROUGE-L F1 to the last bit, only faster.

Every score here is compared with ``==`` against ``rouge_score.rouge_scorer._score_lcs``
(the routine stanford_alpaca maps over its pool), never with a tolerance.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from selfinstruct.runs.seeds import bundled_seed_path, load_seeds
from selfinstruct.similarity import index as similarity
from selfinstruct.similarity.index import SimilarityIndex, lcs_length, rouge_l
from selfinstruct.similarity.tokens import tokenize

ROUGE_TOKENIZER = DefaultTokenizer(use_stemmer=False)
TOKENIZER_NAMES = ["multilingual", "rouge"]

# Pieces of text chosen to collide: repeated words, case variants, CJK, kana, emoji,
# combining marks, characters whose lowercase is ASCII, digits of other scripts.
PIECES = [
    "the", "The", "cat", "CAT!", "sat", "on", "a", "mat", "write", "poem", "x_y", "123",
    "猫", "吃", "鱼", "日本語", "ひらがな", "カタカナ", "中文和English混合",
    "café", "cafe\u0301", "naïve", "İstanbul", "\u212a", "ß", "Привет", "١٢٣",
    "😀", "👍🏽", "\u0301", "...", "—", "𠀀",
]
SEPARATORS = [" ", "", ", ", "\n", "。"]


def reference_score(candidate_tokens: list[str], pool_tokens: list[str]) -> float:
    """The definition: stanford_alpaca's operand order (candidate = target)."""
    return rouge_scorer._score_lcs(candidate_tokens, pool_tokens).fmeasure


def reference_ranking(query: list[str], pool: list[list[str]]) -> list[tuple[int, float]]:
    """All pool entries with a positive score, best first, lower id first on ties."""
    scored = [(i, reference_score(query, tokens)) for i, tokens in enumerate(pool)]
    return sorted([item for item in scored if item[1] > 0], key=lambda x: (-x[1], x[0]))


@st.composite
def texts(draw: st.DrawFn, max_pieces: int = 12) -> str:
    pieces = draw(st.lists(st.sampled_from(PIECES), max_size=max_pieces))
    separators = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(pieces),
                               max_size=len(pieces)))
    return "".join(p + s for p, s in zip(pieces, separators, strict=True))


def token_lists(alphabet: str = "abcd", max_size: int = 40) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(list(alphabet)), max_size=max_size)


# ---------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------


@given(st.text())
def test_rouge_tokenizer_matches_rouge_score_on_any_unicode(text: str) -> None:
    assert tokenize(text, "rouge") == ROUGE_TOKENIZER.tokenize(text)


@pytest.mark.parametrize("text", [
    "İstanbul", "\u212aelvin", "ǅemal", "ﬁle", "STRASSE Straße", "x\u0307y", "a\u00a0b",
    "tab\tnew\nline", "٣ digits ３", "",
])
def test_rouge_tokenizer_matches_rouge_score_on_lowercase_oddities(text: str) -> None:
    assert tokenize(text, "rouge") == ROUGE_TOKENIZER.tokenize(text)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_multilingual_equals_rouge_on_ascii(text: str) -> None:
    assert tokenize(text, "multilingual") == tokenize(text, "rouge")


@pytest.mark.parametrize(("text", "expected"), [
    ("我喜欢学习中文。", ["我", "喜", "欢", "学", "习", "中", "文"]),
    ("日本語のテキストです", ["日", "本", "語", "の", "テ", "キ", "ス", "ト", "で", "す"]),
    ("用Python写一个Hello World程序", ["用", "python", "写", "一", "个", "hello", "world",
                                       "程", "序"]),
    ("café", ["café"]),
    ("Crème Brûlée, s'il vous plaît", ["crème", "brûlée", "s", "il", "vous", "plaît"]),
    ("ÜBER ΑΒΓ Привет", ["über", "αβγ", "привет"]),
    ("Version 3.11 has 2x speed", ["version", "3", "11", "has", "2x", "speed"]),
    ("１２３ and ٣٤", ["１２３", "and", "٣٤"]),
    ("...!? — «»", []),
    ("", []),
    ("snake_case", ["snake", "case"]),
    ("emoji 😀👍🏽 ok", ["emoji", "ok"]),
    ("𠀀𠀁 rare Han", ["𠀀", "𠀁", "rare", "han"]),
    ("韓国語と한국어", ["韓", "国", "語", "と", "한국어"]),
])
def test_multilingual_tokenizer_examples(text: str, expected: list[str]) -> None:
    assert tokenize(text, "multilingual") == expected


def test_multilingual_is_the_default() -> None:
    assert tokenize("中文") == ["中", "文"]
    assert SimilarityIndex().tokenizer == "multilingual"


def test_unknown_tokenizer_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer 'bert'"):
        tokenize("x", "bert")
    with pytest.raises(ValueError, match="multilingual, rouge"):
        SimilarityIndex(tokenizer="bert")


# ---------------------------------------------------------------------------
# The reference definition
# ---------------------------------------------------------------------------


@given(token_lists(max_size=30), token_lists(max_size=30))
def test_rouge_l_is_rouge_scores_lcs_fmeasure(a: list[str], b: list[str]) -> None:
    assert rouge_l(a, b) == reference_score(a, b)


@given(token_lists("ab", max_size=200), token_lists("abc", max_size=200))
@settings(max_examples=50)
def test_bit_parallel_lcs_length_matches_dynamic_programming(a: list[str],
                                                             b: list[str]) -> None:
    assert lcs_length(a, b) == similarity._lcs_length_dp(a, b)


def test_rouge_l_known_values() -> None:
    assert rouge_l([], ["a"]) == 0.0
    assert rouge_l(["a", "b", "c", "d"], ["a", "c"]) == 2 * 0.5 * 1.0 / 1.5
    assert rouge_l(["x"], ["y"]) == 0.0


# ---------------------------------------------------------------------------
# The index against rouge_score
# ---------------------------------------------------------------------------


@given(st.lists(texts(), max_size=25), texts(), st.sampled_from(TOKENIZER_NAMES))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_index_on_texts_matches_rouge_score(pool: list[str], query: str,
                                            tokenizer: str) -> None:
    index = SimilarityIndex(tokenizer=tokenizer)
    for text in pool:
        index.add(text)
    pool_tokens = [tokenize(text, tokenizer) for text in pool]
    ranking = reference_ranking(tokenize(query, tokenizer), pool_tokens)
    best = ranking[0][1] if ranking else 0.0

    assert index.max_score(query) == best
    score, match = index.max_score_with_match(query)
    assert score == best
    assert match == (ranking[0][0] if ranking else None)
    assert index.most_similar(query, k=5) == [(pool[i], s) for i, s in ranking[:5]]
    for threshold in (0.0, 0.5, 0.7, best):
        assert index.exceeds(query, threshold) == (best > threshold)
        witness = index.first_above(query, threshold)
        assert (witness is not None) == (best > threshold)
        if witness is not None:  # a real pool text, scored exactly, above the threshold
            score, found = witness
            assert threshold < score == rouge_l(tokenize(query, tokenizer), pool_tokens[found])


@given(st.lists(token_lists("abcde", max_size=90), max_size=20), token_lists("abcdef", 140))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_index_on_long_and_repetitive_token_lists(pool: list[list[str]],
                                                  query: list[str]) -> None:
    """Queries over 64 and 128 tokens take the multi-word path; few symbols force repeats."""
    index = SimilarityIndex()
    for tokens in pool:
        index.add_tokens(tokens)
    ranking = reference_ranking(query, pool)
    assert index.max_score_tokens(query) == (ranking[0][1] if ranking else 0.0)
    assert index.max_score_with_match_tokens(query) == (
        (ranking[0][1], ranking[0][0]) if ranking else (0.0, None))
    best = ranking[0][1] if ranking else 0.0
    for threshold in (0.0, 0.3, 0.6, best):  # compiled up to 64 tokens, numpy beyond
        witness = index.first_above_tokens(query, threshold)
        assert (witness is not None) == (best > threshold)
        if witness is not None:
            assert threshold < witness[0] == rouge_l(query, pool[witness[1]])


@pytest.mark.parametrize("length", [1, 63, 64, 65])
def test_first_above_at_the_word_boundary(length: int) -> None:
    """64 tokens fill the compiled LCS's one word exactly; 65 take the numpy path."""
    rng = random.Random(length)
    pool = [[rng.choice("abcdefgh") for _ in range(rng.randint(1, 90))] for _ in range(300)]
    index = SimilarityIndex()
    for tokens in pool:
        index.add_tokens(tokens)
    for _ in range(20):
        query = [rng.choice("abcdefgh") for _ in range(length)]
        best = max(rouge_l(query, tokens) for tokens in pool)
        for threshold in (0.2, 0.5, 0.8, best):
            witness = index.first_above_tokens(query, threshold)
            assert (witness is not None) == (best > threshold)
            if witness is not None:
                assert threshold < witness[0] == rouge_l(query, pool[witness[1]])


@given(st.lists(token_lists("ab", max_size=6), max_size=30), token_lists("ab", max_size=6))
@settings(max_examples=100)
def test_most_similar_breaks_ties_by_lower_id(pool: list[list[str]],
                                              query: list[str]) -> None:
    """Tiny alphabets make exact score ties the rule rather than the exception."""
    index = SimilarityIndex()
    for tokens in pool:
        index.add_tokens(tokens)
    ranking = reference_ranking(query, pool)
    for k in (1, 3, 100):
        assert index.most_similar_ids(" ".join(query), k=k) == ranking[:k]


@pytest.mark.parametrize("fillers", [20, 1000])
def test_tie_with_lower_id_outside_the_first_batch(fillers: int) -> None:
    """'a b' (id 0 after the fillers) has a low bound, the anagrams a high bound; all
    score exactly 0.5. The anagrams are scored first; the lower id must still win.
    20 fillers keep bounds dense (indexed by id), 1000 make them sparse."""
    index = SimilarityIndex()
    for _ in range(fillers):
        index.add("unrelated")
    index.add("a b")
    for _ in range(20):
        index.add("d e f a b c")
    assert index.max_score_with_match("a b c d e f") == (0.5, fillers)
    assert index.most_similar_ids("a b c d e f", k=2) == [(fillers, 0.5), (fillers + 1, 0.5)]


@pytest.mark.parametrize(("python_max_batch", "numpy_min_batch"),
                         [(10**9, 10**9), (0, 10**9), (0, 1)])
def test_every_lcs_engine_is_exact(monkeypatch: pytest.MonkeyPatch, python_max_batch: int,
                                   numpy_min_batch: int) -> None:
    """Small batches are scored on plain ints, larger ones on big-int lanes or (queries
    up to 64 tokens) numpy words: force each engine in turn."""
    monkeypatch.setattr(similarity, "_PYTHON_MAX_BATCH", python_max_batch)
    monkeypatch.setattr(similarity, "_NUMPY_MIN_BATCH", numpy_min_batch)
    rng = random.Random(7)
    pool = [[rng.choice("abcdefg") for _ in range(rng.randint(0, 70))] for _ in range(400)]
    index = SimilarityIndex()
    for tokens in pool:
        index.add_tokens(tokens)
    for length in (1, 5, 30, 63, 64, 65, 100, 130):
        query = [rng.choice("abcdefgh") for _ in range(length)]
        ranking = reference_ranking(query, pool)
        assert index.most_similar_ids(" ".join(query), k=len(pool)) == ranking


def test_greedy_filter_keeps_what_brute_force_keeps() -> None:
    """The bootstrap loop: check each candidate against everything kept, then add it."""
    rng = random.Random(3)
    words = ["write", "a", "short", "poem", "story", "about", "the", "cat", "dog", "sea",
             "in", "of", "to", "and", "猫", "狗"]
    candidates = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
                  for _ in range(300)]
    index = SimilarityIndex()
    kept_tokens: list[list[str]] = []
    for text in candidates:
        tokens = tokenize(text)
        expected = max((reference_score(tokens, other) for other in kept_tokens), default=0.0)
        assert index.max_score(text) == expected
        if expected <= 0.7:
            index.add(text)
            kept_tokens.append(tokens)
    assert len(index) == len(kept_tokens)
    assert 0 < len(kept_tokens) < len(candidates)


# Real texts: every pair of the bundled seed sets. Each unordered pair is scored once by
# the reference; ROUGE-L F1 is symmetric to the bit (2PR/(P+R) with P and R swapped), so
# the index is checked against it in both directions.


def seed_texts(language: str) -> list[str]:
    return [seed.instruction for seed in load_seeds(bundled_seed_path(language))]


def reference_matrix(texts_: list[str], score) -> list[list[float]]:
    matrix = [[1.0] * len(texts_) for _ in texts_]
    for i, j in itertools.combinations(range(len(texts_)), 2):
        matrix[i][j] = matrix[j][i] = score(texts_[i], texts_[j])
    return matrix


@pytest.fixture(scope="module")
def english_seed_scores() -> tuple[list[str], list[list[float]]]:
    """rouge_score's public scorer (no stemmer, its own tokenizer) on the English seeds."""
    texts_ = seed_texts("en")
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return texts_, reference_matrix(
        texts_, lambda a, b: scorer.score(a, b)["rougeL"].fmeasure)


@pytest.fixture(scope="module")
def chinese_seed_scores() -> tuple[list[str], list[list[float]]]:
    """rouge_score's LCS F1 on our multilingual tokens (its tokenizer drops Chinese)."""
    texts_ = seed_texts("zh")
    tokens = {text: tokenize(text) for text in texts_}
    return texts_, reference_matrix(
        texts_, lambda a, b: rouge_scorer._score_lcs(tokens[a], tokens[b]).fmeasure)


def assert_index_matches(texts_: list[str], matrix: list[list[float]], tokenizer: str) -> None:
    index = SimilarityIndex(tokenizer=tokenizer)
    for i, text in enumerate(texts_):  # the bootstrap loop: score against what came before
        assert index.max_score(text) == max(matrix[i][:i], default=0.0)
        index.add(text)
    for i, text in enumerate(texts_):
        expected = sorted(((j, score) for j, score in enumerate(matrix[i]) if score > 0),
                          key=lambda item: (-item[1], item[0]))
        assert index.most_similar_ids(text, k=len(texts_)) == expected


@pytest.mark.parametrize("tokenizer", TOKENIZER_NAMES)  # the seeds are ASCII: both agree
def test_english_seed_pairs_score_as_rouge_scorer(english_seed_scores, tokenizer: str) -> None:
    texts_, matrix = english_seed_scores
    assert len(texts_) == 186
    assert sum(score > 0 for row in matrix for score in row) > len(texts_) ** 2 // 2
    assert_index_matches(texts_, matrix, tokenizer)


def test_chinese_seed_pairs_score_as_rouge_score_lcs(chinese_seed_scores) -> None:
    texts_, matrix = chinese_seed_scores
    assert len(texts_) == 97
    assert sum(score > 0 for row in matrix for score in row) > len(texts_) ** 2 // 2
    assert_index_matches(texts_, matrix, "multilingual")


# ---------------------------------------------------------------------------
# The index as a container
# ---------------------------------------------------------------------------


def test_empty_pool_and_empty_queries() -> None:
    index = SimilarityIndex()
    assert len(index) == 0
    assert index.max_score("anything") == 0.0
    assert index.max_score_with_match("anything") == (0.0, None)
    assert index.most_similar("anything") == []
    index.add("the cat")
    assert index.max_score("...") == 0.0
    assert index.max_score("") == 0.0
    assert index.max_score("dog") == 0.0
    assert index.max_score_with_match("dog") == (0.0, None)
    assert index.exceeds("", 0.0) is False
    assert index.first_above("the cat", 0.0) == (1.0, 0)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        index.first_above("the cat", -0.5)


def test_ids_texts_and_tokens_round_trip() -> None:
    index = SimilarityIndex()
    texts_in = ["First text.", "第二个文本 😀", "", "lone surrogate \ud800 kept"]
    assert [index.add(text) for text in texts_in] == [0, 1, 2, 3]
    assert len(index) == 4
    assert [index.text(i) for i in range(4)] == texts_in
    assert index.tokens(1) == ["第", "二", "个", "文", "本"]
    assert index.add_tokens(["a", "b"]) == 4
    assert index.text(4) == "a b"
    with pytest.raises(IndexError):
        index.text(5)
    with pytest.raises(IndexError):
        index.tokens(-1)


def test_identical_text_scores_one_and_is_found_first() -> None:
    index = SimilarityIndex()
    index.add("Give three tips for staying healthy.")
    index.add("Give three tips for staying healthy!")
    index.add("Describe the water cycle.")
    assert index.max_score("give three tips for staying healthy") == 1.0
    assert index.max_score_with_match("give three tips for staying healthy") == (1.0, 0)
    top = index.most_similar("Give three tips for staying healthy.", k=2)
    assert top == [("Give three tips for staying healthy.", 1.0),
                   ("Give three tips for staying healthy!", 1.0)]


def test_chinese_duplicates_are_caught_only_by_multilingual() -> None:
    multilingual = SimilarityIndex("multilingual")
    rouge = SimilarityIndex("rouge")
    for index in (multilingual, rouge):
        index.add("写一首关于秋天的诗")
    assert multilingual.max_score("写一首关于秋天的诗。") == 1.0
    assert rouge.max_score("写一首关于秋天的诗。") == 0.0


def test_most_similar_rejects_negative_k_and_allows_zero() -> None:
    index = SimilarityIndex()
    index.add("a b c")
    assert index.most_similar("a", k=0) == []
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.most_similar("a", k=-1)


def test_nbytes_grows_with_the_pool() -> None:
    index = SimilarityIndex()
    before = index.nbytes
    for i in range(2000):
        index.add(f"text number {i} with some words")
    assert index.nbytes > before


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_top_k_on_a_pool_with_common_words_matches_brute_force(k: int) -> None:
    """A pool where most texts share common words, so bounds start dense and the
    first batch must hold at least k texts for the bar to rise (the bootstrap loop's
    5 most similar texts on every candidate)."""
    rng = random.Random(11)
    common = ["the", "a", "of", "write", "to"]
    rare = [f"w{i}" for i in range(60)]
    pool = [[rng.choice(common if rng.random() < 0.6 else rare)
             for _ in range(rng.randint(1, 18))] for _ in range(1500)]
    index = SimilarityIndex()
    for tokens in pool:
        index.add_tokens(tokens)
    for _ in range(40):
        query = [rng.choice(common if rng.random() < 0.5 else rare)
                 for _ in range(rng.randint(1, 20))]
        assert index.most_similar_ids(" ".join(query), k=k) == reference_ranking(query, pool)[:k]
