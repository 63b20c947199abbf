import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.filters.instructions import (
    DEFAULT_BLACKLIST,
    INSTRUCTION_FILTERS,
    FilterSettings,
    Rejection,
    _contains_word,
    blacklisted_word,
    check_instruction,
    empty,
    leading_punctuation,
    mostly_foreign_script,
    non_ascii_start,
    too_long,
    too_short,
    writes_a_program,
)
from selfinstruct.language import is_cjk_char

EN = FilterSettings.for_language("en")
ZH = FilterSettings.for_language("zh")

ORDINARY_ENGLISH = [
    "Give three tips for staying healthy.",
    "What are the three primary colors?",
    "Describe the structure of an atom in simple terms.",
    "Rewrite the following sentence in the passive voice.",
    "Classify the following animals as mammals, birds or reptiles.",
    "Summarize the main argument of the paragraph below in one sentence.",
    "Suggest a name for a bakery that sells only gluten-free bread.",
    "Explain why the sky is blue to a ten-year-old.",
    "Find the grammatical errors in this email and correct them.",
    "Write a Python function that checks whether a string is a palindrome.",
    "If a train travels 60 km in 45 minutes, what is its average speed?",
    "Is the following statement true or false? Explain your answer.",
    "Plan a three-day trip to Kyoto for a family with two children.",
    "Translate the greeting 你好 into English and French.",
    "Create a profile for a fictional detective in a mystery novel.",
    "List some mapping techniques used in cartography research.",
]

ORDINARY_CHINESE = [
    "写一首关于秋天的五言绝句。",
    "解释一下什么是光合作用。",
    "给出三个保持健康的建议。",
    "把下面这句话改写成被动语态。",
    "判断下面这句话的情感是积极还是消极。",
    "用一句话总结下面这段文字的主要观点。",
    "为一家只卖无麸质面包的面包店起个名字。",
    "向一个十岁的孩子解释为什么天空是蓝色的。",
    "找出这封邮件中的语法错误并改正。",
    "用 Python 写一个判断回文字符串的函数。",
    "一列火车45分钟行驶60公里，它的平均速度是多少？",
    "下面的说法是对还是错？请说明理由。",
    "为一个有两个孩子的家庭规划三天的京都之旅。",
    "把“你好，世界”翻译成英文和法文。",
    "比较猫和狗作为宠物的优缺点。",
    "请列出五种常见的排序算法，并说明它们的时间复杂度。",
    "如何向老板提出加薪请求？给出一些具体建议。",
    "根据下面的食材推荐一道家常菜，并写出做法。",
    "为什么说“三人行，必有我师”？请谈谈你的理解。",
    "帮我写一封感谢老师的短信，语气要真诚。",
]


# ------------------------------------------------------------------------ settings


def test_defaults_per_language():
    assert FilterSettings.for_language("en") == FilterSettings(
        "en", 4, 150, DEFAULT_BLACKLIST["en"]
    )
    assert FilterSettings.for_language("zh") == FilterSettings(
        "zh", 6, 300, DEFAULT_BLACKLIST["zh"]
    )


def test_blacklist_is_configurable():
    settings = FilterSettings.for_language("en", blacklist=("weather",))
    assert settings.blacklist == ("weather",)
    assert blacklisted_word("Describe the weather today.", settings) == (
        "contains the blacklisted word 'weather'"
    )
    assert blacklisted_word("Describe this image in detail.", settings) is None


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EN.min_length = 1  # type: ignore[misc]


def test_default_blacklists():
    assert DEFAULT_BLACKLIST["en"] == (
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
        "map", "maps", "draw", "plot", "go to", "video", "audio", "music", "flowchart",
        "diagram",
    )  # fmt: skip
    assert DEFAULT_BLACKLIST["zh"] == (
        "图片", "图像", "照片", "视频", "音频", "音乐", "文件", "画出", "画一", "绘制",
        "地图", "图表", "流程图", "示意图",
    )  # fmt: skip


# ------------------------------------------------------------------ the whole chain


@pytest.mark.parametrize("text", ORDINARY_ENGLISH)
def test_ordinary_english_passes(text):
    assert check_instruction(text, EN) is None


def test_twenty_ordinary_chinese_instructions_pass():
    assert len(ORDINARY_CHINESE) == 20
    assert {text: check_instruction(text, ZH) for text in ORDINARY_CHINESE} == dict.fromkeys(
        ORDINARY_CHINESE
    )


def test_chinese_would_fail_english_rules():
    # Why the zh settings matter: under en rules every one of them is rejected.
    assert all(check_instruction(text, EN) is not None for text in ORDINARY_CHINESE)


def test_check_returns_first_rejection_with_filter_name():
    assert check_instruction("Draw it.", EN) == Rejection(
        "too_short", "2 words, fewer than the minimum of 4"
    )
    assert check_instruction("Draw a cat sitting on a mat.", EN) == Rejection(
        "blacklisted_word", "contains the blacklisted word 'draw'"
    )
    assert check_instruction("   ", ZH) == Rejection("empty", "the instruction is empty")


def test_filter_order():
    assert [f.__name__ for f in INSTRUCTION_FILTERS] == [
        "empty",
        "too_short",
        "too_long",
        "blacklisted_word",
        "writes_a_program",
        "leading_punctuation",
        "non_ascii_start",
        "mostly_foreign_script",
    ]


@pytest.mark.parametrize(
    ("text", "settings", "expected"),
    [
        ("", EN, Rejection("empty", "the instruction is empty")),
        ("Tell a joke", EN, Rejection("too_short", "3 words, fewer than the minimum of 4")),
        ("写首诗", ZH, Rejection("too_short", "3 characters, fewer than the minimum of 6")),
        (
            "Write a program that sorts a list of numbers.",
            EN,
            Rejection("writes_a_program", "starts with 'write a program'"),
        ),
        (
            "编写一个程序，计算两个数的和。",
            ZH,
            Rejection("writes_a_program", "starts with '编写一个程序'"),
        ),
        (
            "- Explain how vaccines train the immune system.",
            EN,
            Rejection("leading_punctuation", "starts with the punctuation '-'"),
        ),
        (
            "“春眠不觉晓”的下一句是什么？",
            ZH,
            Rejection("leading_punctuation", "starts with the punctuation '“'"),
        ),
        (
            "Ça va? Translate this French phrase into English.",
            EN,
            Rejection("non_ascii_start", "starts with the non-ASCII character 'Ç'"),
        ),
        (
            "Explain the difference between weather and climate.",
            ZH,
            Rejection("mostly_foreign_script", "contains no Chinese characters"),
        ),
        (
            "写一首关于秋天的诗 in English please now",
            EN,
            Rejection("non_ascii_start", "starts with the non-ASCII character '写'"),
        ),
        (
            "Please write this: 写一首关于秋天和落叶的诗",
            EN,
            Rejection(
                "mostly_foreign_script", "12 of its 27 letters are Chinese or Japanese characters"
            ),
        ),
    ],
)
def test_check_instruction(text, settings, expected):
    assert check_instruction(text, settings) == expected


# ------------------------------------------------------------------------- each filter


def test_empty():
    assert empty("", EN) == "the instruction is empty"
    assert empty(" \n\t", ZH) == "the instruction is empty"
    assert empty("x", EN) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Summarize", "1 words, fewer than the minimum of 4"),
        ("Summarize this text.", "3 words, fewer than the minimum of 4"),
        ("Summarize this short text.", None),
    ],
)
def test_too_short_english(text, reason):
    assert too_short(text, EN) == reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("写诗", "2 characters, fewer than the minimum of 6"),
        ("写 一 首 诗", "4 characters, fewer than the minimum of 6"),
        ("写一首诗。", "5 characters, fewer than the minimum of 6"),
        ("写一首短诗。", None),
    ],
)
def test_too_short_chinese_counts_characters(text, reason):
    assert too_short(text, ZH) == reason


def test_too_long_english():
    assert too_long(" ".join(["word"] * 150), EN) is None
    assert too_long(" ".join(["word"] * 151), EN) == "151 words, more than the maximum of 150"


def test_too_long_chinese():
    assert too_long("字" * 300, ZH) is None
    assert too_long("字" * 301, ZH) == "301 characters, more than the maximum of 300"


def test_custom_length_bounds():
    settings = dataclasses.replace(EN, min_length=1, max_length=2)
    assert too_short("Go", settings) is None
    assert too_long("Go now please", settings) == "3 words, more than the maximum of 2"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Describe the image below.", "image"),
        ("Describe the IMAGE below.", "image"),
        ("Open the file and count the lines.", "file"),
        ("Which files are missing?", "files"),
        ("Draw a cat.", "draw"),
        ("What is the plot of Hamlet?", "plot"),
        ("Go to the store and buy milk.", "go to"),
        ("Tell me how to   go\nto the station.", "go to"),
        ("Make a flowchart of the process.", "flowchart"),
        ("Label the map: Paris, Rome.", "map"),
        ("打开这个file并读取内容。", "file"),
    ],
)
def test_blacklist_english_whole_words(text, word):
    assert blacklisted_word(text, EN) == f"contains the blacklisted word {word!r}"


@pytest.mark.parametrize(
    "text",
    [
        "Create a profile for a new employee.",
        "Explain what a mapping between two sets is.",
        "Describe a bitmap font.",
        "Name a famous painter who drew with charcoal.",
        "Give directions on how to get to the station.",
        "Describe the imagery in this poem.",
        "What does a filesystem do?",
        "Explain a graphical user interface.",
        "Who wrote the Odyssey?",
    ],
)
def test_blacklist_does_not_match_inside_words(text):
    assert blacklisted_word(text, EN) is None


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("描述这张图片中的内容。", "图片"),
        ("根据下面的数据绘制一张柱状图。", "绘制"),
        ("画一只可爱的小猫。", "画一"),
        ("请用流程图说明这个过程。", "流程图"),
        ("总结这段视频的主要内容。", "视频"),
        ("打开附件中的文件并统计字数。", "文件"),
    ],
)
def test_blacklist_chinese_substrings(text, word):
    assert blacklisted_word(text, ZH) == f"contains the blacklisted word {word!r}"


def test_blacklist_reports_the_first_listed_word():
    assert blacklisted_word("画出这个流程图。", ZH) == "contains the blacklisted word '画出'"


def test_blacklist_chinese_does_not_apply_english_words_by_default():
    assert blacklisted_word("解释一下 image 这个单词的意思。", ZH) is None


def test_blacklist_mixed_user_list():
    settings = FilterSettings.for_language("zh", blacklist=("image", "天气"))
    assert blacklisted_word("解释一下 image 这个单词的意思。", settings) == (
        "contains the blacklisted word 'image'"
    )
    assert (
        blacklisted_word("明天的天气怎么样？", settings) == "contains the blacklisted word '天气'"
    )
    assert blacklisted_word("解释一下 imagery 这个单词。", settings) is None


def test_blacklist_ignores_blank_words():
    settings = FilterSettings.for_language("en", blacklist=("", "  "))
    assert blacklisted_word("Anything at all goes here.", settings) is None


@pytest.mark.parametrize(
    ("text", "settings", "reason"),
    [
        ("Write a program to reverse a string.", EN, "starts with 'write a program'"),
        ("write a Program that prints primes.", EN, "starts with 'write a program'"),
        ("  Write a program.", EN, "starts with 'write a program'"),
        ("写一个程序，输出1到100的质数。", ZH, "starts with '写一个程序'"),
        ("请编写一个程序来反转字符串。", ZH, "starts with '编写一个程序'"),
        ("请你写一个程序判断闰年。", ZH, "starts with '写一个程序'"),
        ("Write a Python function that reverses a string.", EN, None),
        ("Explain how to write a program that sorts numbers.", EN, None),
        ("写一个函数来反转字符串。", ZH, None),
        ("解释如何编写一个程序。", ZH, None),
    ],
)
def test_writes_a_program(text, settings, reason):
    assert writes_a_program(text, settings) == reason


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ('"Hello" is a greeting. Translate it.', '"'),
        ("(Optional) Explain recursion.", "("),
        ("#hashtag ideas for a bakery", "#"),
        ("$100 is how much in euros?", "$"),
        ("...and then explain the rest.", "."),
        ("，然后解释原因。", "，"),
        ("。解释原因。", "。"),
        ("：解释原因。", "："),
        ("、列出三个例子。", "、"),
        ("“你好”用英文怎么说？", "“"),
        ("《红楼梦》的作者是谁？", "《"),
        ("¿Cómo estás? Translate it.", "¿"),
        ("  - a bullet left over", "-"),
    ],
)
def test_leading_punctuation(text, first):
    assert leading_punctuation(text, EN) == f"starts with the punctuation {first!r}"
    assert leading_punctuation(text, ZH) == f"starts with the punctuation {first!r}"


@pytest.mark.parametrize("text", ["Explain recursion.", "3 reasons to exercise", "写一首诗。", ""])
def test_no_leading_punctuation(text):
    assert leading_punctuation(text, EN) is None
    assert leading_punctuation(text, ZH) is None


def test_non_ascii_start_english():
    assert (
        non_ascii_start("Élan: explain the word.", EN) == "starts with the non-ASCII character 'É'"
    )
    assert non_ascii_start("写一首诗。", EN) == "starts with the non-ASCII character '写'"
    assert non_ascii_start("Explain the word élan.", EN) is None
    assert non_ascii_start("", EN) is None


def test_non_ascii_start_never_applies_to_chinese():
    assert all(non_ascii_start(text, ZH) is None for text in ORDINARY_CHINESE)


def test_mostly_foreign_script():
    assert mostly_foreign_script("Explain gravity.", ZH) == "contains no Chinese characters"
    assert mostly_foreign_script("把 machine learning 翻译成中文。", ZH) is None
    assert mostly_foreign_script("123 + 456 = ?", ZH) is None
    assert mostly_foreign_script("Translate 你好 into French.", EN) is None
    assert mostly_foreign_script("解释重力 please", EN) == (
        "4 of its 10 letters are Chinese or Japanese characters"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Explains 中文字", None),  # 3 of 11 letters: under 30%
        ("Explain 中文字", "3 of its 10 letters are Chinese or Japanese characters"),  # 30%
        ("Explain these 中文字 in a 汉字中", None),  # 6 of 21
        ("Explain these 中文字 in 汉字中",  # 6 of 20
         "6 of its 20 letters are Chinese or Japanese characters"),
    ],
)
def test_mostly_foreign_script_at_the_30_percent_boundary(text, expected):
    """Exactly 30% Chinese characters already counts as Chinese (as language detection
    decides); one English letter more and the instruction is English."""
    assert mostly_foreign_script(text, EN) == expected


def test_english_word_count_rule_does_not_apply_to_chinese():
    # A whole Chinese sentence is one whitespace "word"; zh counts characters instead.
    assert too_short("向一个十岁的孩子解释为什么天空是蓝色的。", ZH) is None
    assert too_short("向一个十岁的孩子解释为什么天空是蓝色的。", EN) is not None


_WORDS = ["image", "Images", "go to", "go\tto", "map", "mapping", "profile", "file",
          "图片", "打开file", "café", "plot", "x", "the", "Draw", "DIAGRAM", "写", "视频"]
_SEPARATORS = [" ", "", "-", ", ", "\n", "。", "_"]


@st.composite
def _blacklist_texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(_WORDS), max_size=8))
    seps = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(words),
                         max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps, strict=True))


@given(_blacklist_texts(), st.lists(st.sampled_from([*_WORDS, " ", "", "go  to", "画出"]),
                                    max_size=6))
@settings(max_examples=300)
def test_blacklist_quick_check_agrees_with_word_by_word(text, words):
    """The one-regex quick check must only ever skip texts no single word matches, and
    the reported word must stay the first listed one that matches."""
    settings_ = FilterSettings("en", 1, 1000, tuple(words))
    expected = next((w for w in words if _contains_word(text, w)), None)
    found = blacklisted_word(text, settings_)
    assert found == (None if expected is None else f"contains the blacklisted word {expected!r}")


@given(st.text(max_size=40))
def test_mostly_foreign_script_ascii_shortcut(text):
    """The ASCII shortcut gives what the per-character rule gives."""
    for language in ("en", "zh"):
        settings_ = FilterSettings.for_language(language)
        letters = [ch for ch in text if ch.isalpha()]
        cjk = sum(1 for ch in letters if is_cjk_char(ch))
        if language == "zh":
            expected = "contains no Chinese characters" if letters and not cjk else None
        elif letters and cjk / len(letters) >= 0.3:
            expected = f"{cjk} of its {len(letters)} letters are Chinese or Japanese characters"
        else:
            expected = None
        assert mostly_foreign_script(text, settings_) == expected
