import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.filters.instances import (
    DEFAULT_INSTANCE_LENGTHS,
    EXAMPLE_FILTERS,
    InstanceRejection,
    InstanceSettings,
    dangling_colon,
    empty_output,
    filter_instances,
    input_too_long,
    label_not_listed,
    match_label,
    output_equals_input,
    output_too_long,
)
from selfinstruct.text.instances import Example

EN = InstanceSettings.for_language("en")
ZH = InstanceSettings.for_language("zh")

GOOD_ENGLISH = [
    Example("The meeting moved to Friday.", "The meeting was moved to Friday."),
    Example("", "Roses bloom in June,\nbees hum a lazy tune."),
    Example("3, 1, 2", "1, 2, 3"),
    Example("Is 91 prime?", "No: 91 = 7 × 13."),
]
GOOD_CHINESE = [
    Example("把文件发给我。", "麻烦您把文件发给我，谢谢！"),
    Example("", "书页轻翻，脚步放轻。"),
    Example("3x + 5 = 20", "移项得 3x = 15，所以 x = 5。"),
]


# ------------------------------------------------------------------------------ settings


def test_defaults_per_language():
    assert InstanceSettings.for_language("en") == InstanceSettings("en", 300, 500)
    assert InstanceSettings.for_language("zh") == InstanceSettings("zh", 600, 1000)
    assert DEFAULT_INSTANCE_LENGTHS == {"en": (300, 500), "zh": (600, 1000)}


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EN.max_input_length = 1  # type: ignore[misc]


def test_filter_order():
    assert [check.__name__ for check in EXAMPLE_FILTERS] == [
        "empty_output",
        "dangling_colon",
        "input_too_long",
        "output_too_long",
        "output_equals_input",
    ]


@pytest.mark.parametrize(("examples", "settings"), [(GOOD_ENGLISH, EN), (GOOD_CHINESE, ZH)])
def test_good_examples_pass_everything(examples, settings):
    assert filter_instances(examples, settings) == (examples, [])


# -------------------------------------------------------------------- per-example filters


@pytest.mark.parametrize("settings", [EN, ZH])
@pytest.mark.parametrize("output", ["", "   ", "\n\t"])
def test_empty_output(settings, output):
    assert empty_output(Example("some input", output), settings) == "the output is empty"


def test_empty_output_passes_text():
    assert empty_output(Example("", "x"), EN) is None
    assert empty_output(Example("", "是"), ZH) is None


@pytest.mark.parametrize(
    ("example", "settings", "reason"),
    [
        (
            Example("", "Here is the corrected version:"),
            EN,
            "the output ends with ':', as if something should follow",
        ),
        (
            Example("Fix the following:  ", "Done."),
            EN,
            "the input ends with ':', as if something should follow",
        ),
        (
            Example("", "修改后的句子如下："),
            ZH,
            "the output ends with '：', as if something should follow",
        ),
        (
            Example("请看下面的例子：", "好的。"),
            ZH,
            "the input ends with '：', as if something should follow",
        ),
    ],
)
def test_dangling_colon(example, settings, reason):
    assert dangling_colon(example, settings) == reason


def test_colon_inside_the_text_is_fine():
    assert dangling_colon(Example("Time: 10:30", "Ratio 3:1 holds."), EN) is None
    assert dangling_colon(Example("比分：3：1", "主队赢了。"), ZH) is None


def test_input_too_long_english_counts_words():
    assert input_too_long(Example(" ".join(["word"] * 300), "ok"), EN) is None
    assert input_too_long(Example(" ".join(["word"] * 301), "ok"), EN) == (
        "the input has 301 words, more than the maximum of 300"
    )


def test_input_too_long_chinese_counts_characters():
    assert input_too_long(Example("字" * 600, "好"), ZH) is None
    assert input_too_long(Example("字 " * 601, "好"), ZH) == (
        "the input has 601 characters, more than the maximum of 600"
    )


def test_output_too_long_english_counts_words():
    assert output_too_long(Example("", " ".join(["word"] * 500)), EN) is None
    assert output_too_long(Example("", " ".join(["word"] * 501)), EN) == (
        "the output has 501 words, more than the maximum of 500"
    )


def test_output_too_long_chinese_counts_characters():
    assert output_too_long(Example("", "字" * 1000), ZH) is None
    assert output_too_long(Example("", "字" * 1001), ZH) == (
        "the output has 1001 characters, more than the maximum of 1000"
    )


def test_chinese_text_under_english_settings_is_one_word_per_run():
    # Why the zh settings matter: 1000 characters without spaces are one English "word".
    assert output_too_long(Example("", "字" * 1001), EN) is None


def test_custom_lengths():
    settings = InstanceSettings("en", max_input_length=3, max_output_length=2)
    assert input_too_long(Example("a b c d", "x"), settings) == (
        "the input has 4 words, more than the maximum of 3"
    )
    assert output_too_long(Example("", "x y z"), settings) == (
        "the output has 3 words, more than the maximum of 2"
    )


@pytest.mark.parametrize(
    ("example", "settings"),
    [
        (Example("Hello world", "Hello world"), EN),
        (Example("Hello   world\n", " hello WORLD"), EN),
        (Example("你好，世界", "你好，世界"), ZH),
        (Example("你好，\n世界", "你好， 世界"), ZH),
    ],
)
def test_output_equals_input(example, settings):
    assert output_equals_input(example, settings) == "the output repeats the input"


def test_output_different_from_input_passes():
    assert output_equals_input(Example("Hello world", "Hello, world!"), EN) is None
    assert output_equals_input(Example("", ""), EN) is None
    assert output_equals_input(Example("你好", "您好"), ZH) is None


# ------------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("output", "listed"),
    [
        ("Positive", "Positive"),
        ("positive", "Positive"),
        ("POSITIVE.", "Positive"),
        ("**Positive**", "Positive"),
        ('"positive"', "Positive"),
        ("  Positive  ", "Positive"),
        ("not spam", "Not Spam"),
        ("正面", "正面"),
        ("「正面」。", "正面"),
    ],
)
def test_match_label(output, listed):
    assert match_label(output, ["Positive", "Negative", "Not Spam", "正面"]) == listed


@pytest.mark.parametrize("output", ["Mixed", "Positive-ish", "", "***", "负面"])
def test_match_label_none(output):
    assert match_label(output, ["Positive", "Negative", "正面"]) is None


def test_label_not_listed():
    assert label_not_listed(Example("It was fine.", "Mixed"), ["Positive", "Negative"]) == (
        "the label 'Mixed' is not one of the listed labels: Positive, Negative"
    )
    assert label_not_listed(Example("还行", "一般"), ["正面", "负面"]) == (
        "the label '一般' is not one of the listed labels: 正面, 负面"
    )
    assert label_not_listed(Example("It was great.", "positive"), ["Positive", "Negative"]) is None


def test_label_is_normalised_to_the_listed_spelling():
    examples = [Example("Loved it.", "**positive**"), Example("Hated it.", "NEGATIVE.")]
    assert filter_instances(examples, EN, labels=["Positive", "Negative"]) == (
        [Example("Loved it.", "Positive"), Example("Hated it.", "Negative")],
        [],
    )


def test_label_not_listed_in_filter_instances_chinese():
    examples = [Example("很好", "正面"), Example("还行吧", "一般")]
    assert filter_instances(examples, ZH, labels=["正面", "负面"]) == (
        [Example("很好", "正面")],
        [
            InstanceRejection(
                Example("还行吧", "一般"),
                "label_not_listed",
                "the label '一般' is not one of the listed labels: 正面, 负面",
            )
        ],
    )


@pytest.mark.parametrize("labels", [None, []])
def test_labels_are_not_checked_without_a_list(labels):
    examples = [Example("Fine.", "Mixed"), Example("Great.", "positive")]
    assert filter_instances(examples, EN, labels=labels) == (examples, [])


# ----------------------------------------------------------------------------- truncated


def test_truncated_rejects_the_last_example_only():
    examples = [Example("1", "one"), Example("2", "two"), Example("3", "thr")]
    kept, rejected = filter_instances(examples, EN, truncated=True)
    assert kept == examples[:2]
    assert rejected == [
        InstanceRejection(
            Example("3", "thr"),
            "truncated",
            "the answer hit the length limit, so its last example may be cut off",
        )
    ]


def test_truncated_chinese_and_without_examples():
    kept, rejected = filter_instances([Example("", "床前明月光，")], ZH, truncated=True)
    assert (kept, [r.filter for r in rejected]) == ([], ["truncated"])
    assert filter_instances([], ZH, truncated=True) == ([], [])


def test_not_truncated_keeps_the_last_example():
    examples = [Example("1", "one"), Example("2", "two")]
    assert filter_instances(examples, EN, truncated=False) == (examples, [])


# ----------------------------------------------------------------------------- duplicate


def test_duplicate_keeps_the_first():
    examples = [
        Example("The cat sat.", "A cat was sitting."),
        Example("The  cat sat.\n", "A cat was\nsitting."),
        Example("The dog ran.", "A dog was running."),
    ]
    kept, rejected = filter_instances(examples, EN)
    assert kept == [examples[0], examples[2]]
    assert rejected == [
        InstanceRejection(
            examples[1], "duplicate", "the same input and output as an earlier example of this task"
        )
    ]


def test_duplicate_chinese_and_empty_inputs():
    examples = [Example("", "书页轻翻。"), Example("", "书页轻翻。"), Example("", "脚步放轻。")]
    kept, rejected = filter_instances(examples, ZH)
    assert kept == [examples[0], examples[2]]
    assert [(r.example, r.filter) for r in rejected] == [(examples[1], "duplicate")]


def test_duplicate_of_a_rejected_example_is_kept():
    # The first copy fails a per-example filter, so the second is the first kept one.
    examples = [Example("x", "Answer:"), Example("y", "fine"), Example("x", "Answer:")]
    kept, rejected = filter_instances(examples, EN)
    assert kept == [examples[1]]
    assert [r.filter for r in rejected] == ["dangling_colon", "dangling_colon"]


# ------------------------------------------------------------------- conflicting outputs


def test_conflicting_outputs_reject_every_example_with_that_input():
    examples = [
        Example("Is 1 prime?", "Yes"),
        Example("Is 2 prime?", "Yes"),
        Example("is  1 prime?", "No"),
        Example("Is 1 prime?", "Yes"),
    ]
    kept, rejected = filter_instances(examples, EN)
    assert kept == [examples[1]]
    detail = "the same input appears 2 times in this task with 2 different outputs"
    assert rejected == [
        InstanceRejection(
            examples[3], "duplicate", "the same input and output as an earlier example of this task"
        ),
        InstanceRejection(examples[0], "conflicting_outputs", detail),
        InstanceRejection(examples[2], "conflicting_outputs", detail),
    ]


def test_conflicting_outputs_chinese_labels():
    examples = [
        Example("锲而不舍", "褒义"),
        Example("锲而不舍", "贬义"),
        Example("好高骛远", "贬义"),
    ]
    kept, rejected = filter_instances(examples, ZH, labels=["褒义", "贬义"])
    assert kept == [examples[2]]
    assert [(r.example, r.filter) for r in rejected] == [
        (examples[0], "conflicting_outputs"),
        (examples[1], "conflicting_outputs"),
    ]


def test_outputs_that_differ_only_in_case_do_not_conflict():
    examples = [Example("Is 7 odd?", "Yes"), Example("Is 7 odd?", "yes")]
    kept, rejected = filter_instances(examples, EN)
    assert kept == [examples[0]]
    assert [r.filter for r in rejected] == ["duplicate"]


@pytest.mark.parametrize(
    ("settings", "examples"),
    [
        (EN, [Example("", "Roses are red."), Example("", "The sea is wide."), Example("", "Hi")]),
        (ZH, [Example("", "春眠不觉晓"), Example("  ", "床前明月光")]),
    ],
)
def test_empty_inputs_never_conflict(settings, examples):
    assert filter_instances(examples, settings) == (examples, [])


# ------------------------------------------------------------------------------- order


def test_per_example_filters_run_in_order_and_reject_once():
    examples = [
        Example("a: b", ""),  # empty_output beats dangling_colon
        Example("x", "x:"),  # dangling_colon beats output_equals_input
        Example(" ".join(["w"] * 301), " ".join(["w"] * 301)),  # input_too_long first
        Example("same", "SAME"),
        Example("fine", "Mixed"),
        Example("ok", "Positive"),
    ]
    kept, rejected = filter_instances(examples, EN, labels=["Positive", "Negative"])
    assert kept == [Example("ok", "Positive")]
    assert [(r.example, r.filter) for r in rejected] == [
        (examples[0], "empty_output"),
        (examples[1], "dangling_colon"),
        (examples[2], "input_too_long"),
        (examples[3], "output_equals_input"),
        (examples[4], "label_not_listed"),
    ]


def test_truncated_comes_before_the_other_filters():
    kept, rejected = filter_instances([Example("a", "b"), Example("c", "")], EN, truncated=True)
    assert kept == [Example("a", "b")]
    assert [r.filter for r in rejected] == ["truncated"]


def test_duplicates_are_removed_before_conflicts_are_counted():
    examples = [Example("q", "a"), Example("q", "a"), Example("r", "b")]
    kept, rejected = filter_instances(examples, EN)
    assert kept == [examples[0], examples[2]]
    assert [r.filter for r in rejected] == ["duplicate"]


def test_label_normalisation_happens_before_duplicates_and_conflicts():
    examples = [Example("great", "positive"), Example("great", "**Positive**")]
    kept, rejected = filter_instances(examples, EN, labels=["Positive", "Negative"])
    assert kept == [Example("great", "Positive")]
    assert [(r.example, r.filter) for r in rejected] == [
        (Example("great", "Positive"), "duplicate")
    ]


def test_inputs_are_not_modified():
    examples = [Example("  spaced  ", "out")]
    before = list(examples)
    filter_instances(examples, EN, truncated=True)
    assert examples == before


# --------------------------------------------------------------------------- robustness

_TEXTS = st.one_of(st.sampled_from(["", " ", "a", "A", "a:", "是", "否", "Positive"]), st.text())
_EXAMPLES = st.lists(st.builds(Example, _TEXTS, _TEXTS), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    examples=_EXAMPLES,
    language=st.sampled_from(["en", "zh"]),
    labels=st.one_of(st.none(), st.lists(_TEXTS, max_size=4)),
    truncated=st.booleans(),
)
def test_every_example_is_kept_or_rejected_once(examples, language, labels, truncated):
    settings_ = InstanceSettings.for_language(language)
    kept, rejected = filter_instances(examples, settings_, labels=labels, truncated=truncated)
    assert len(kept) + len(rejected) == len(examples)
    assert all(rejection.detail for rejection in rejected)
    assert all(example.output.strip() for example in kept)
    if labels and kept:
        assert all(example.output in [label.strip() for label in labels] for example in kept)
