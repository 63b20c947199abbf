import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.text.instances import (
    Example,
    clean_label,
    parse_input_first,
    parse_output_first,
    parse_yes_no,
)

# ------------------------------------------------------------------------------ yes / no


@pytest.mark.parametrize(
    "text",
    [
        "Yes",
        " Yes",
        "yes.",
        "YES",
        "Yes, because the answer is one of three fixed labels.",
        "**Yes**",
        "**Yes.** The output is a sentiment label.",
        "Answer: Yes",
        "**Answer:** yes",
        "\n\n  Yes\n\nTask: Write a poem.\nIs it classification? No",
        "Is it classification? Yes",
        '"Yes"',
        "- Yes",
        "是",
        "是的",
        "是。它的输出只有正面和负面两种。",
        "是分类任务",
        "**是**",
        "答案：是",
        "是否为分类任务？是",
        "<think>The labels are fixed.</think>\n\nYes",
    ],
)
def test_yes(text):
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "No",
        " no",
        "No.",
        "No, the output is free text.",
        "**No**",
        "Answer: No",
        "A: no",
        "Decision: No",
        "Classification: no.",
        "结论：否",
        "Is it classification? No\n\nTask: Name a color.\nIs it classification? Yes",
        "否",
        "否。",
        "不是",
        "不是分类任务",
        "不是，这是一个写作任务。",
        "不，它需要写一段文字。",
        "不属于分类任务",
        "回答：否",
        "**否**",
        "是否为分类任务？否",
    ],
)
def test_no(text):
    assert parse_yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n  ",
        "Maybe",
        "It depends on the task.",
        "Yesterday I said no.",
        "Nothing to say",
        "Yes/No",
        "yes or no",
        "是否",
        "是否为分类任务？",
        "是否需要更多信息？",
        "这是一个分类任务",
        "可能是",
        "<think>Let me think about whether",
        "???",
    ],
)
def test_unreadable_answers(text):
    assert parse_yes_no(text) is None


def test_only_the_first_answer_counts():
    # A completion model answers, then invents the next task and answers that too.
    assert parse_yes_no(" No\n\nTask: Is this email spam?\nIs it classification? Yes") is False
    assert parse_yes_no("是\n\n任务：写一首诗。\n是否为分类任务？否") is True


# -------------------------------------------------------------------------- input-first

# A completion model continuing "...Task: <instruction>\n": it starts right at Example 1
# and, after its examples, begins a task of its own.
COMPLETION_CONTINUATION = """Example 1
Input: I can't make it to the meeting tomorrow.
Output: Unfortunately, I will be unable to attend tomorrow's meeting.
Example 2
Input: The report is late because the numbers came in late.
Output: The report has been delayed because the figures arrived later than expected.
Example 3
Input:
hey can u send me the slides from today? thx
Output:
Hello, could you please send me the slides from today's presentation? Thank you.

Task: Name three rivers in South America.
Example 1
Output: The Amazon, the Orinoco and the Paraná."""

# A chat model: preamble, bold headers and labels, rules, a fenced code output that itself
# prints "Output:", and a sign-off.
CHAT_BOLD = """Sure! Here are three examples for this task:

**Example 1:**
**Input:** [3, 1, 2]
**Output:** [1, 2, 3]

---

**Example 2:**
**Input:** []
**Output:** []

---

**Example 3**
**Input:** None
**Output:**
```python
def sort_numbers(numbers):
    result = sorted(numbers)
    print("Output:", result)
    return result
```

I hope these examples help! Let me know if you need more."""

# A chat model using headings, labels alone on their line, "Example 2 -", and
# multi-paragraph values.
CHAT_HEADINGS = """### Example 1
**Input:**
Dear team,

The office will be closed on Monday for the holiday. Please plan your deadlines around it.

Best,
Priya

**Output:**
The office is closed on Monday for the holiday, so plan deadlines accordingly.

### Example 2 -
Input:
Reminder: the parking lot will be repaved on Saturday. Cars left there will be towed.

Output:
Move your car out of the parking lot before Saturday, when it will be repaved."""

CHINESE_CONTINUATION = """示例1
输入：今天的会议改到下午三点。
输出：Today's meeting has been moved to 3 p.m.
示例2
输入：请在周五之前提交报告。
输出：Please submit the report by Friday.

任务：列举三种常见的水果。
示例1
输出：苹果、香蕉、橙子。"""

CHINESE_CHAT = """好的，下面是几个例子：

**示例 1：**
**输入：** 春眠不觉晓
**输出：** 处处闻啼鸟

例2：
输入:
床前明月光
输出:
疑是地上霜

示例3：
输入：无
输出：
白日依山尽，
黄河入海流。

希望这些例子对你有帮助！"""


def test_completion_continuation_stops_at_the_next_task():
    assert parse_input_first(COMPLETION_CONTINUATION) == [
        Example(
            "I can't make it to the meeting tomorrow.",
            "Unfortunately, I will be unable to attend tomorrow's meeting.",
        ),
        Example(
            "The report is late because the numbers came in late.",
            "The report has been delayed because the figures arrived later than expected.",
        ),
        Example(
            "hey can u send me the slides from today? thx",
            "Hello, could you please send me the slides from today's presentation? Thank you.",
        ),
    ]


def test_chat_bold_headers_rules_code_fence_and_sign_off():
    assert parse_input_first(CHAT_BOLD) == [
        Example("[3, 1, 2]", "[1, 2, 3]"),
        Example("[]", "[]"),
        Example(
            "",
            "```python\n"
            "def sort_numbers(numbers):\n"
            "    result = sorted(numbers)\n"
            '    print("Output:", result)\n'
            "    return result\n"
            "```",
        ),
    ]


def test_chat_headings_and_multi_paragraph_values():
    assert parse_input_first(CHAT_HEADINGS) == [
        Example(
            "Dear team,\n\nThe office will be closed on Monday for the holiday. Please plan your "
            "deadlines around it.\n\nBest,\nPriya",
            "The office is closed on Monday for the holiday, so plan deadlines accordingly.",
        ),
        Example(
            "Reminder: the parking lot will be repaved on Saturday. Cars left there will be towed.",
            "Move your car out of the parking lot before Saturday, when it will be repaved.",
        ),
    ]


def test_chinese_continuation():
    assert parse_input_first(CHINESE_CONTINUATION) == [
        Example("今天的会议改到下午三点。", "Today's meeting has been moved to 3 p.m."),
        Example("请在周五之前提交报告。", "Please submit the report by Friday."),
    ]


def test_chinese_chat_with_bold_half_width_colons_and_sign_off():
    assert parse_input_first(CHINESE_CHAT) == [
        Example("春眠不觉晓", "处处闻啼鸟"),
        Example("床前明月光", "疑是地上霜"),
        Example("", "白日依山尽，\n黄河入海流。"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Example 1",
        "Example 1:",
        "Example 1.",
        "Example 1 -",
        "Example #1",
        "**Example 1**",
        "**Example 1:**",
        "**Example 1**:",
        "### Example 1",
        "## **Example 1**",
        "Example 1 (with input)",
        "**Example 1: A polite request**",
        "示例1",
        "示例 1：",
        "示例１：",
        "例1：",
        "例子1",
        "**示例1**",
    ],
)
def test_header_shapes(header):
    second = header.replace("1", "2").replace("１", "２")
    text = f"{header}\nInput: two plus two\nOutput: four\n\n{second}\nOutput: five"
    assert parse_input_first(text) == [Example("two plus two", "four"), Example("", "five")]


@pytest.mark.parametrize(
    ("input_label", "output_label"),
    [
        ("Input:", "Output:"),
        ("input:", "output:"),
        ("**Input:**", "**Output:**"),
        ("**Input**:", "**Output**:"),
        ("*Input:*", "*Output:*"),
        ("- **Input:**", "- **Output:**"),
        ("Input 1:", "Output 1:"),
        ("输入：", "输出："),
        ("输入:", "输出:"),
        ("**输入：**", "**输出：**"),
    ],
)
def test_label_shapes(input_label, output_label):
    text = f"Example 1\n{input_label} 12 + 30\n{output_label} 42"
    assert parse_input_first(text) == [Example("12 + 30", "42")]


def test_values_on_the_lines_after_their_labels():
    text = "Example 1\nInput:\n\nfirst line\nsecond line\n\nOutput:\n\n  answer  \n\n"
    assert parse_input_first(text) == [Example("first line\nsecond line", "answer")]


def test_an_indented_block_is_dedented_and_keeps_its_inner_indentation():
    text = "Example 1\nInput:\n    def f(x):\n        return x * 2\nOutput:\n    f(3) returns 6."
    assert parse_input_first(text) == [Example("def f(x):\n    return x * 2", "f(3) returns 6.")]


def test_no_headers_single_pair():
    text = "Input: The cat sat on the mat.\nOutput: El gato se sentó en la alfombra."
    assert parse_input_first(text) == [
        Example("The cat sat on the mat.", "El gato se sentó en la alfombra.")
    ]


def test_no_headers_output_only():
    assert parse_input_first("Output: Roses bloom in June,\nbees hum a lazy tune.") == [
        Example("", "Roses bloom in June,\nbees hum a lazy tune.")
    ]


def test_no_headers_several_pairs_and_a_preamble():
    text = "Here are two examples:\n\nInput: 3\nOutput: 9\n\nInput: 5\nOutput: 25"
    assert parse_input_first(text) == [Example("3", "9"), Example("5", "25")]


def test_no_headers_numbered_list_of_pairs():
    text = (
        "Here you go:\n\n1. **Input:** 2, 4, 6\n   **Output:** 12\n"
        "2. **Input:** 1, 1\n   **Output:** 2"
    )
    assert parse_input_first(text) == [Example("2, 4, 6", "12"), Example("1, 1", "2")]


def test_no_headers_chinese():
    assert parse_input_first("输入：你好\n输出：Hello") == [Example("你好", "Hello")]


@pytest.mark.parametrize(
    "no_input",
    ["None", "none", "N/A", "<noinput>", "<no input>", "(none)", "无", "<无输入>", "无输入", ""],
)
def test_no_input_values_become_empty(no_input):
    text = f"Example 1\nInput: {no_input}\nOutput: A short poem."
    assert parse_input_first(text) == [Example("", "A short poem.")]


def test_input_that_mentions_none_is_kept():
    text = "Example 1\nInput: None of the guests arrived on time.\nOutput: Everyone was late."
    assert parse_input_first(text) == [
        Example("None of the guests arrived on time.", "Everyone was late.")
    ]


def test_example_without_output_is_returned_with_empty_output():
    text = "Example 1\nInput: 7\nOutput: 49\nExample 2\nInput: 8"
    assert parse_input_first(text) == [Example("7", "49"), Example("8", "")]


def test_empty_header_blocks_are_dropped():
    assert parse_input_first("Example 1\nOutput: a\nExample 2\n\nExample 3") == [Example("", "a")]


def test_header_without_labels_is_an_output():
    text = "Example 1\nSilver rain on tin,\nthe gutter hums a soft song.\nExample 2\nOutput: Fog."
    assert parse_input_first(text) == [
        Example("", "Silver rain on tin,\nthe gutter hums a soft song."),
        Example("", "Fog."),
    ]


def test_unlabelled_text_before_output_is_the_input():
    text = "Example 1\nThe quick brown fox.\nOutput: 4 words"
    assert parse_input_first(text) == [Example("The quick brown fox.", "4 words")]


def test_label_like_lines_inside_an_output_stay_in_it():
    text = (
        "Example 1\nInput: a log line\nOutput:\nParsed fields:\nInput: none\nOutput: ok\n"
        "Example 2\nInput: b\nOutput: c"
    )
    assert parse_input_first(text) == [
        Example("a log line", "Parsed fields:\nInput: none\nOutput: ok"),
        Example("b", "c"),
    ]


def test_example_line_with_an_unexpected_number_stays_content():
    text = (
        "Example 1\nOutput: first\nExample 2\nOutput:\nTwo cases:\nExample 1: 2 + 2 = 4\n"
        "Example 3\nOutput: third"
    )
    assert parse_input_first(text) == [
        Example("", "first"),
        Example("", "Two cases:\nExample 1: 2 + 2 = 4"),
        Example("", "third"),
    ]


def test_header_with_text_on_its_line():
    text = "Example 1: Input: hi\nOutput: hello\nExample 2: Good night\nExample 3 - Output: x"
    assert parse_input_first(text) == [
        Example("hi", "hello"),
        Example("", "Good night"),
        Example("", "x"),
    ]


def test_task_echo_before_the_examples_is_skipped():
    text = "Task: Square the number.\n\nExample 1\nInput: 4\nOutput: 16\n\nTask: Next task"
    assert parse_input_first(text) == [Example("4", "16")]


def test_bold_task_line_ends_parsing():
    text = "Example 1\nOutput: a\n\n**Task:** Write a story.\nExample 1\nOutput: b"
    assert parse_input_first(text) == [Example("", "a")]


def test_chinese_task_line_ends_parsing():
    text = "示例1\n输出：甲\n任务：写一首诗。\n示例1\n输出：乙"
    assert parse_input_first(text) == [Example("", "甲")]


def test_code_fences_protect_label_and_header_lines():
    text = (
        "Example 1\nInput:\n```\nExample 2\nOutput: not a label\nTask: not a task\n```\n"
        "Output: ok\nExample 2\nOutput: second"
    )
    assert parse_input_first(text) == [
        Example("```\nExample 2\nOutput: not a label\nTask: not a task\n```", "ok"),
        Example("", "second"),
    ]


def test_a_fence_around_the_whole_answer_is_dropped():
    text = "```\nExample 1\nInput: 2\nOutput: 4\nExample 2\nInput: 3\nOutput: 9\n```"
    assert parse_input_first(text) == [Example("2", "4"), Example("3", "9")]


def test_a_fence_cut_off_by_the_length_limit_stays_in_the_value():
    text = "Example 1\nInput: sort it\nOutput:\n```python\ndef f(xs):\n    return sor"
    assert parse_input_first(text) == [Example("sort it", "```python\ndef f(xs):\n    return sor")]


def test_an_indented_paragraph_after_the_last_output_is_kept():
    text = "Example 1\nOutput: Tips:\n\n  I hope you like them."
    assert parse_input_first(text) == [Example("", "Tips:\n\n  I hope you like them.")]


def test_a_sign_off_that_is_the_whole_output_is_kept():
    assert parse_input_first("Example 1\nOutput: I hope you feel better soon!") == [
        Example("", "I hope you feel better soon!")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "I'm sorry, but I can't help with that.",
        "Here are some examples of good writing.",
        "Example\nnothing numbered here",
        "Input:\nOutput:",
        "Task: Do something.",
        "```\n```",
    ],
)
def test_input_first_garbage_gives_nothing(text):
    assert parse_input_first(text) == []


# ------------------------------------------------------------------------- output-first

OUTPUT_FIRST_CONTINUATION = """Class labels: Positive, Negative, Neutral
Class label: Positive
Input: Battery easily lasts two days and the screen is gorgeous.
Class label: Negative
Input: It froze twice on the first day and support never answered.
Class label: Neutral
Input: It is a phone. It makes calls and runs the usual apps.

Task: Is the number even or odd?
Class labels: Even, Odd"""

OUTPUT_FIRST_CHAT = """Sure! Here are the labels and examples:

**Class labels:** Spam, Not spam

**Class label:** Spam
**Input:** CONGRATULATIONS! You have won a $500 gift card. Reply YES to claim it now.

**Class label:** Not spam
**Input:**
Hi Sam,
Are we still on for lunch on Thursday? I booked a table for 12:30.
Lee

Hope this helps!"""

OUTPUT_FIRST_CHINESE = """类别列表：正面、负面、中性
类别：正面
输入：快递第二天就到了，质量很好，下次还会买。
类别：负面
输入：
尺码偏小，穿上很紧。
申请退货也没有人处理。
类别：中性
输入：衣服收到了，还没有穿。

任务：判断下面的动物是否会飞。"""


def test_output_first_completion_continuation():
    assert parse_output_first(OUTPUT_FIRST_CONTINUATION) == (
        ["Positive", "Negative", "Neutral"],
        [
            Example("Battery easily lasts two days and the screen is gorgeous.", "Positive"),
            Example("It froze twice on the first day and support never answered.", "Negative"),
            Example("It is a phone. It makes calls and runs the usual apps.", "Neutral"),
        ],
    )


def test_output_first_chat_bold_multi_line_and_sign_off():
    assert parse_output_first(OUTPUT_FIRST_CHAT) == (
        ["Spam", "Not spam"],
        [
            Example(
                "CONGRATULATIONS! You have won a $500 gift card. Reply YES to claim it now.",
                "Spam",
            ),
            Example(
                "Hi Sam,\nAre we still on for lunch on Thursday? I booked a table for 12:30.\nLee",
                "Not spam",
            ),
        ],
    )


def test_output_first_chinese():
    assert parse_output_first(OUTPUT_FIRST_CHINESE) == (
        ["正面", "负面", "中性"],
        [
            Example("快递第二天就到了，质量很好，下次还会买。", "正面"),
            Example("尺码偏小，穿上很紧。\n申请退货也没有人处理。", "负面"),
            Example("衣服收到了，还没有穿。", "中性"),
        ],
    )


@pytest.mark.parametrize(
    "line",
    [
        "Class labels: Red, Green, Blue",
        "Class labels: Red，Green，Blue",
        "Class labels: Red、Green、Blue",
        "Class labels: Red / Green / Blue",
        "Class labels: Red or Green or Blue",
        "Class labels: Red, Green, or Blue.",
        "Class labels: Red, Green and Blue",
        "Class labels: Red; Green; Blue",
        'Class labels: "Red", "Green", "Blue"',
        "Class labels: **Red**, **Green**, **Blue**",
        "**Class labels:** Red, Green, Blue",
        "Labels: Red, Green, Blue",
        "Possible labels: Red, Green, Blue",
        "类别列表：Red、Green、Blue",
        "类别列表: Red，Green或Blue",
        "标签列表：Red、Green、Blue",
        "Class labels: Red, Green, Blue, Red",
    ],
)
def test_label_list_shapes(line):
    labels, _ = parse_output_first(f"{line}\nClass label: Red\nInput: a ripe tomato")
    assert labels == ["Red", "Green", "Blue"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Class label: Positive, Negative\nClass label: Positive\nInput: Great!",
            (["Positive", "Negative"], [Example("Great!", "Positive")]),
        ),
        (
            "类别：正面、负面和中性\n类别：负面\n输入：太差了。",
            (["正面", "负面", "中性"], [Example("太差了。", "负面")]),
        ),
    ],
)
def test_a_first_single_label_line_with_several_labels_is_the_list(text, expected):
    assert parse_output_first(text) == expected


def test_a_later_label_with_a_separator_is_one_label():
    text = (
        "Class labels: Rock/Pop, Jazz\nClass label: Jazz\nInput: a\nClass label: Rock/Pop\nInput: b"
    )
    assert parse_output_first(text) == (
        ["Rock", "Pop", "Jazz"],
        [Example("a", "Jazz"), Example("b", "Rock/Pop")],
    )


def test_label_list_as_bullets_under_an_empty_list_line():
    text = (
        "Labels:\n- Spam\n- Not spam\nHere are the examples:\nClass label: Spam\nInput: WIN A PRIZE"
    )
    assert parse_output_first(text) == (["Spam", "Not spam"], [Example("WIN A PRIZE", "Spam")])


def test_label_list_on_the_line_after_an_empty_list_line():
    text = "类别列表：\n正面、负面\n\n类别：正面\n输入：好用"
    assert parse_output_first(text) == (["正面", "负面"], [Example("好用", "正面")])


@pytest.mark.parametrize(
    "label_line",
    [
        "Class label: Positive",
        "class label: Positive",
        "Label: Positive",
        "**Class label:** Positive",
        "**Class label**: **Positive**",
        'Class label: "Positive"',
        "Class label: Positive.",
        "Class label: `Positive`",
        "Class label: [Positive]",
        "- Class label: Positive",
    ],
)
def test_single_label_shapes(label_line):
    text = f"Class labels: Positive, Negative\n{label_line}\nInput: Loved it."
    assert parse_output_first(text) == (
        ["Positive", "Negative"],
        [Example("Loved it.", "Positive")],
    )


@pytest.mark.parametrize(
    "label_line", ["类别：正面", "类别:正面", "标签：正面", "**类别：**「正面」。"]
)
def test_chinese_single_label_shapes(label_line):
    text = f"类别列表：正面、负面\n{label_line}\n输入：很好用。"
    assert parse_output_first(text) == (["正面", "负面"], [Example("很好用。", "正面")])


def test_missing_label_list_gives_no_labels():
    text = "Class label: Yes\nInput: 7\nClass label: No\nInput: 8"
    assert parse_output_first(text) == ([], [Example("7", "Yes"), Example("8", "No")])


def test_input_without_prefix_on_the_lines_after_the_label():
    text = (
        "Class labels: Question, Statement\nClass label: Question\nIs the shop open today?\n\n"
        "Class label: Statement\nThe shop opens at nine.\nIt closes at six."
    )
    assert parse_output_first(text) == (
        ["Question", "Statement"],
        [
            Example("Is the shop open today?", "Question"),
            Example("The shop opens at nine.\nIt closes at six.", "Statement"),
        ],
    )


def test_label_on_the_line_after_its_prefix():
    text = "Class labels: Cat, Dog\nClass label:\n**Dog**\nInput: It barks at the mail carrier."
    assert parse_output_first(text) == (
        ["Cat", "Dog"],
        [Example("It barks at the mail carrier.", "Dog")],
    )


def test_empty_label_followed_by_an_input_label_stays_empty():
    text = "Class labels: A, B\nClass label:\nInput:\nfirst line\nsecond line"
    assert parse_output_first(text) == (["A", "B"], [Example("first line\nsecond line", "")])


def test_input_written_before_its_label():
    text = "Class labels: Even, Odd\nInput: 4\nClass label: Even\nInput: 7\nClass label: Odd"
    assert parse_output_first(text) == (
        ["Even", "Odd"],
        [Example("4", "Even"), Example("7", "Odd")],
    )


def test_several_inputs_under_one_label():
    text = (
        "Class labels: Even, Odd\nClass label: Even\nInput: 4\nInput: 10\n"
        "Class label: Odd\nInput: 3"
    )
    assert parse_output_first(text) == (
        ["Even", "Odd"],
        [Example("4", "Even"), Example("10", "Even"), Example("3", "Odd")],
    )


def test_example_headers_between_pairs():
    text = (
        "Class labels: Fact, Opinion\n\n**Example 1**\nClass label: Fact\nInput: Water boils at "
        "100 °C at sea level.\n\n**Example 2**\nClass label: Opinion\nInput: Tea beats coffee."
    )
    assert parse_output_first(text) == (
        ["Fact", "Opinion"],
        [
            Example("Water boils at 100 °C at sea level.", "Fact"),
            Example("Tea beats coffee.", "Opinion"),
        ],
    )


def test_label_without_input_for_a_task_without_input():
    text = "Class labels: Heads, Tails\nClass label: Heads\nClass label: Tails"
    assert parse_output_first(text) == (
        ["Heads", "Tails"],
        [Example("", "Heads"), Example("", "Tails")],
    )


def test_no_input_values_in_output_first():
    text = "类别列表：是、否\n类别：是\n输入：无\n类别：否\n输入：<noinput>"
    assert parse_output_first(text) == (["是", "否"], [Example("", "是"), Example("", "否")])


def test_multi_line_code_input_keeps_its_indentation():
    text = (
        "Class labels: Python, SQL\nClass label: Python\nInput:\n```python\nfor x in xs:\n"
        "    print(x)\n```\nClass label: SQL\nInput:\nSELECT *\nFROM users;"
    )
    assert parse_output_first(text) == (
        ["Python", "SQL"],
        [
            Example("```python\nfor x in xs:\n    print(x)\n```", "Python"),
            Example("SELECT *\nFROM users;", "SQL"),
        ],
    )


def test_label_with_empty_input_that_was_cut_off():
    text = "Class labels: A, B\nClass label: A\nInput: first\nClass label: B\nInput:"
    assert parse_output_first(text) == (["A", "B"], [Example("first", "A"), Example("", "B")])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I'm sorry, I can't do that.",
        "Input: something without a label",
        "Positive, Negative",
        "```\n```",
    ],
)
def test_output_first_garbage_gives_nothing(text):
    assert parse_output_first(text) == ([], [])


def test_label_list_alone():
    assert parse_output_first("Class labels: Yes, No") == (["Yes", "No"], [])


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("Positive", "Positive"),
        ("  **Positive**  ", "Positive"),
        ('"Positive".', "Positive"),
        ("'Positive'", "Positive"),
        ("`Positive`", "Positive"),
        ("[Positive]", "Positive"),
        ("「正面」。", "正面"),
        ("“正面”", "正面"),
        ("Neutral (mixed)", "Neutral (mixed)"),
        ("(a) or (b)", "(a) or (b)"),
        ("***", ""),
    ],
)
def test_clean_label(raw, label):
    assert clean_label(raw) == label


# --------------------------------------------------------------------------- robustness

# Pieces of the shapes the parsers look for, so generated text often half-matches them.
_PIECES = [
    *"abc XYZ 0123456789.:)(*#-_`\"'\n\t",
    *["：", "、", "，", "１", "示例", "例", "Example ", "Input:", "Output:", "输入：", "输出："],
    *["Task:", "任务：", "Class labels:", "Class label:", "Labels:", "类别列表：", "类别："],
    *["```", "---", "**", "None", "<noinput>", "无", "Yes", "No", "是", "否", "不", "</think>"],
]
_MARKDOWNISH = st.lists(st.sampled_from(_PIECES), max_size=120).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=500), _MARKDOWNISH))
def test_parsers_never_raise(text):
    assert parse_yes_no(text) in (True, False, None)
    examples = parse_input_first(text)
    assert all(isinstance(example, Example) for example in examples)
    assert all(example.input or example.output for example in examples)
    assert all(example.input == example.input.strip() for example in examples)
    assert all(example.output == example.output.strip() for example in examples)
    labels, classified = parse_output_first(text)
    assert all(isinstance(label, str) and label for label in labels)
    assert len(set(labels)) == len(labels)
    assert all(isinstance(example, Example) for example in classified)
    assert all(example.input or example.output for example in classified)
