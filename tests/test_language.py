import pytest

from selfinstruct.language import detect_language, is_cjk_char, text_length


@pytest.mark.parametrize(
    "ch",
    [
        "\u3040",  # first of the kana block
        "あ",
        "カ",
        "\u30ff",
        "\u3400",  # extension A
        "\u4dbf",
        "\u4e00",
        "中",
        "\u9fff",
        "\uf900",  # compatibility ideographs
        "\ufaff",
        "\U00020000",  # extension B
        "\U0002a6d6",
        "\U0002fa1f",
    ],
)
def test_cjk_ranges(ch):
    assert is_cjk_char(ch)


@pytest.mark.parametrize(
    "ch",
    [
        "a",
        "Z",
        "7",
        " ",
        "，",
        "。",
        "：",
        "\u303f",
        "\u3100",
        "\u4dc0",
        "\ufb00",
        "\U0002fa20",
        "é",
        "я",
    ],
)
def test_not_cjk(ch):
    assert not is_cjk_char(ch)


def test_is_cjk_char_wants_one_character():
    assert not is_cjk_char("")
    assert not is_cjk_char("中文")


def test_detect_english():
    assert detect_language(["Write a poem about the sea.", "Explain gravity to a child."]) == "en"


def test_detect_chinese():
    assert detect_language(["写一首关于大海的诗。", "向孩子解释什么是重力。"]) == "zh"


def test_detect_chinese_with_embedded_english():
    # 9 Han characters against 15 Latin letters: 37.5% is a Chinese text quoting English.
    assert detect_language(["把 machine learning 翻译成中文并解释"]) == "zh"


def test_detect_english_with_a_few_han_characters():
    assert detect_language(["Translate the word 你好 into English and French."]) == "en"


def test_detect_counts_all_texts_together():
    texts = ["写一首诗"] + ["Write a poem about the sea and the sky."] * 5
    assert detect_language(texts) == "en"


def test_detect_ignores_digits_and_punctuation():
    assert detect_language(["1234567890 !!! ??? 中文"]) == "zh"


def test_detect_empty_is_english():
    assert detect_language([]) == "en"
    assert detect_language(["", "   ", "123 ..."]) == "en"


def test_detect_accepts_any_iterable():
    assert detect_language(text for text in ["写一首诗", "解释重力"]) == "zh"


def test_text_length_english_counts_words():
    assert text_length("Write a short  poem\nabout the sea.", "en") == 7
    assert text_length("", "en") == 0


def test_text_length_chinese_counts_non_space_characters():
    assert text_length("写一首关于大海的诗。", "zh") == 10
    assert text_length("把 AI 翻译成中文", "zh") == 8
    assert text_length("  \n ", "zh") == 0


def test_chinese_as_english_is_one_word():
    # Why the unit depends on the language: without spaces a sentence is one "word".
    assert text_length("写一首关于大海的诗。", "en") == 1
