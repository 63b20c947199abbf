import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfinstruct.text.tasks import Candidate, parse_alpaca_tasks, parse_numbered_list

# --------------------------------------------------------------- realistic fixtures

# A completion model continuing "... Task 8: ...\nTask 9:" (text-davinci style).
DAVINCI_CONTINUATION = """ Generate five questions to ask in a job interview for a teacher.
Task 10: Rewrite the following sentence so that it sounds more formal: "Gonna be late, sorry."
Task 11: Which of these animals is a mammal? Options: shark, dolphin, trout.
Task 12: Explain the difference between weather and climate
in no more than three sentences.
Task 13: Suggest a catchy slogan for a bicycle repair shop.
Task 14:"""

# A chat model that writes its own list: preamble, bold numbers, blank lines, sign-off.
CHAT_BOLD_NUMBERS = """Sure! Here are some new tasks:

**1.** Write a limerick about a cat who loves lasagna.

**2.** Explain how compound interest works, using a savings account as an example.

**3.** Given a list of ingredients, suggest a vegetarian dinner recipe.

**4. Translate the sentence "Where is the train station?" into Spanish.**

I hope these help! Let me know if you'd like more tasks."""

# A chat model that numbers from 9, with bold titles in front of each task.
CHAT_TITLED = """Here are 4 more tasks, continuing the list:

9. **Creative writing**: Write a short story that begins with the line "The door was never locked."
10. **Math:** A shirt costs $25 after a 20% discount. What was the original price?
11. **Classification** - Decide whether the review below is positive or negative.
12. **Advice**: Give three tips for staying focused while working from home.

Feel free to ask for more!"""

CHAT_HEADINGS = """### Task 1: Planning
Plan a weekend itinerary for a first-time visitor to Lisbon.

### Task 2: Editing
Proofread the paragraph below and fix any spelling mistakes.

### Task 3
Explain what a hash table is to a new programmer.
"""

CHINESE_LIST = """以下是一些新任务：

1、写一首关于秋天的五言绝句。
2、解释一下为什么天空是蓝色的，
并用一个比喻帮助小学生理解。
3、把下面这句话翻译成英文：“今天天气真好。”
4、列出三种提高睡眠质量的方法。

希望这些任务对你有帮助！"""

CHINESE_CONTINUATION = """用一句话总结《西游记》的主要情节。
任务10：比较猫和狗作为宠物的优缺点。
任务 11: 为一家咖啡店写一句广告语。
任务１２：解释什么是通货膨胀。
任务13："""

ALPACA_CONTINUATION = """ Classify the sentiment of this tweet as positive, negative or neutral.
4. Input:
Just missed my bus again. Great start to the week...
4. Output:
Negative
###
5. Instruction: Give three tips for writing a clear email.
5. Input:
<noinput>
5. Output:
1. State your purpose in the first sentence.
2. Keep paragraphs short.
3. End with a clear request or next step.
###
6. Instruction: Rewrite the sentence in the passive voice.
6. Input:
The committee approved the new budget.
6. Output:
The new budget was approved by the committee.
###
7. Instruction:"""

ALPACA_CHAT = """Sure! Here are three new tasks:

**Instruction:** Summarize the paragraph in one sentence.
**Input:** The city council met on Tuesday to discuss the new park. After a long debate,
members voted 7-2 to approve the plan, which includes a playground and a community garden.
**Output:** The city council voted 7-2 to approve a new park with a playground and garden.

**Instruction:** Name three renewable sources of energy.
**Input:** None
**Output:**
- Solar power
- Wind power
- Hydroelectric power

**Instruction:** Convert 100 degrees Fahrenheit to Celsius.
**Input:** N/A
**Output:** 100°F is about 37.8°C."""

ALPACA_CHINESE = """###
1. 指令：把下面的句子改写得更礼貌一些。
1. 输入：
把文件发给我。
1. 输出：
麻烦您把文件发给我，谢谢！
###
2. 指令：列出三种常见的中国传统节日。
2. 输入：
<无输入>
2. 输出：
春节、端午节、中秋节。
###
3. 指令：解释“画蛇添足”的意思。
3. 输入：
无
3. 输出：
比喻做了多余的事，反而不恰当。
###"""


# ------------------------------------------------------------------- numbered lists


def test_davinci_continuation():
    assert parse_numbered_list(DAVINCI_CONTINUATION, 9) == [
        "Generate five questions to ask in a job interview for a teacher.",
        'Rewrite the following sentence so that it sounds more formal: "Gonna be late, sorry."',
        "Which of these animals is a mammal? Options: shark, dolphin, trout.",
        "Explain the difference between weather and climate in no more than three sentences.",
        "Suggest a catchy slogan for a bicycle repair shop.",
    ]


def test_chat_bold_numbers_preamble_and_sign_off():
    assert parse_numbered_list(CHAT_BOLD_NUMBERS, 9) == [
        "Write a limerick about a cat who loves lasagna.",
        "Explain how compound interest works, using a savings account as an example.",
        "Given a list of ingredients, suggest a vegetarian dinner recipe.",
        'Translate the sentence "Where is the train station?" into Spanish.',
    ]


def test_chat_bold_titles_are_dropped():
    assert parse_numbered_list(CHAT_TITLED, 9) == [
        'Write a short story that begins with the line "The door was never locked."',
        "A shirt costs $25 after a 20% discount. What was the original price?",
        "Decide whether the review below is positive or negative.",
        "Give three tips for staying focused while working from home.",
    ]


def test_chinese_bold_titles_are_dropped():
    text = "1. **写诗**：写一首关于秋天的诗。\n2. **翻译：** 把“你好”翻译成英文。\n3. **总结**"
    assert parse_numbered_list(text, 9) == ["写一首关于秋天的诗。", "把“你好”翻译成英文。", "总结"]


def test_open_task_may_start_with_a_word_a_preamble_would():
    assert parse_numbered_list("Great Gatsby: summarize its plot.\nTask 10: Ten", 9) == [
        "Great Gatsby: summarize its plot.",
        "Ten",
    ]
    assert parse_numbered_list("Sure-footed animals: name three.\nTask 10: Ten", 9) == [
        "Sure-footed animals: name three.",
        "Ten",
    ]


def test_markdown_headings_are_titles():
    assert parse_numbered_list(CHAT_HEADINGS, 9) == [
        "Plan a weekend itinerary for a first-time visitor to Lisbon.",
        "Proofread the paragraph below and fix any spelling mistakes.",
        "Explain what a hash table is to a new programmer.",
    ]


def test_chinese_list_with_enumeration_comma():
    assert parse_numbered_list(CHINESE_LIST, 9) == [
        "写一首关于秋天的五言绝句。",
        "解释一下为什么天空是蓝色的，并用一个比喻帮助小学生理解。",
        "把下面这句话翻译成英文：“今天天气真好。”",
        "列出三种提高睡眠质量的方法。",
    ]


def test_chinese_continuation_with_full_width_digits_and_colons():
    assert parse_numbered_list(CHINESE_CONTINUATION, 9) == [
        "用一句话总结《西游记》的主要情节。",
        "比较猫和狗作为宠物的优缺点。",
        "为一家咖啡店写一句广告语。",
        "解释什么是通货膨胀。",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1. Alpha task here\n2. Beta task here",
        "1) Alpha task here\n2) Beta task here",
        "1 . Alpha task here\n2 . Beta task here",
        "(1) Alpha task here\n(2) Beta task here",
        "（1）Alpha task here\n（2）Beta task here",
        "Task 1: Alpha task here\nTask 2: Beta task here",
        "Task 1. Alpha task here\nTask 2. Beta task here",
        "task 1 - Alpha task here\ntask 2 - Beta task here",
        "**Task 1:** Alpha task here\n**Task 2:** Beta task here",
        "**Task 1**: Alpha task here\n**Task 2**: Beta task here",
        "**1.** Alpha task here\n**2.** Beta task here",
        "**1. Alpha task here**\n**2. Beta task here**",
        "1. **Alpha task here**\n2. **Beta task here**",
        "1. *Alpha task here*\n2. *Beta task here*",
        "1. `Alpha task here`\n2. `Beta task here`",
        '1. "Alpha task here"\n2. "Beta task here"',
        "1. “Alpha task here”\n2. “Beta task here”",
        "１．Alpha task here\n２．Beta task here",
        "1: Alpha task here\n2: Beta task here",
        "1、Alpha task here\n2、Beta task here",
        "任务1：Alpha task here\n任务2：Beta task here",
        "任务 1: Alpha task here\n任务 2: Beta task here",
        "第1条：Alpha task here\n第2条：Beta task here",
        "## 1. Alpha task here\n## 2. Beta task here",
        "  1. Alpha task here\n  2. Beta task here",
        "1.\tAlpha task here\n2.\tBeta task here",
    ],
)
def test_marker_shapes(text):
    assert parse_numbered_list(text, 9) == ["Alpha task here", "Beta task here"]


def test_marker_alone_with_text_on_the_next_line():
    assert parse_numbered_list("Task 1:\nAlpha task here\n\nTask 2:\nBeta task here", 9) == [
        "Alpha task here",
        "Beta task here",
    ]


def test_numbers_need_not_be_consecutive():
    assert parse_numbered_list("3. Gamma\n1. Alpha\n7. Eta\n7. Eta again", 1) == [
        "Gamma",
        "Alpha",
        "Eta",
        "Eta again",
    ]


def test_empty_last_marker_yields_nothing():
    assert parse_numbered_list("Task 10:", 9) == []
    assert parse_numbered_list(" Write a haiku.\nTask 10:", 9) == ["Write a haiku."]
    assert parse_numbered_list("1. One thing\n2.\n3. Three things", 9) == [
        "One thing",
        "Three things",
    ]


def test_leading_text_is_the_open_task_only_when_continuing():
    # Continuing: the first marker is past the open number.
    assert parse_numbered_list("Open task\nTask 10: Next", 9) == ["Open task", "Next"]
    # A chat model restarting at 1, or at the open number, wrote a preamble.
    assert parse_numbered_list("Sure, happy to help.\n1. One\n2. Two", 9) == ["One", "Two"]
    assert parse_numbered_list("Happy to help.\nTask 9: Nine\nTask 10: Ten", 9) == [
        "Nine",
        "Ten",
    ]
    # A lead-in that ends in a colon is never a task.
    assert parse_numbered_list("More tasks:\nTask 10: Ten", 9) == ["Ten"]
    assert parse_numbered_list("**New tasks:**\n10. Ten", 9) == ["Ten"]
    assert parse_numbered_list("以下是一些新任务：\n任务10：十", 9) == ["十"]
    # Blank leading text is nothing.
    assert parse_numbered_list("\n\n  \nTask 10: Ten", 9) == ["Ten"]


@pytest.mark.parametrize(
    "preamble",
    [
        "Sure! Continuing the list.",
        "Certainly. I kept them varied.",
        "OK, here you go.",
        "Here are 5 more tasks.",
        "Here's the rest of the list.",
        "好的，我会继续写。",
        "下面是新的任务。",
        # Several paragraphs are never the open task, which follows the prompt directly.
        "Thanks for the examples.\n\nI tried to vary the topics.",
    ],
)
def test_chat_preamble_before_a_continued_list(preamble):
    assert parse_numbered_list(f"{preamble}\nTask 10: Ten\nTask 11: Eleven", 9) == [
        "Ten",
        "Eleven",
    ]


def test_open_task_may_start_like_a_sentence_about_here():
    assert parse_numbered_list("Here is a riddle; solve it.\nTask 10: Ten", 9) == [
        "Here is a riddle; solve it.",
        "Ten",
    ]


def test_multi_line_items_join_with_a_space_or_nothing_between_cjk():
    text = (
        "1. Describe the water cycle\n   for a class of\n   nine-year-olds.\n"
        "2. 解释什么是\n   光合作用。"
    )
    assert parse_numbered_list(text, 9) == [
        "Describe the water cycle for a class of nine-year-olds.",
        "解释什么是光合作用。",
    ]
    assert parse_numbered_list("1. 把 Python\n代码翻译成中文\nplease", 9) == [
        "把 Python 代码翻译成中文 please"
    ]


def test_blank_lines_inside_a_middle_item_are_continuation():
    assert parse_numbered_list("1. First part\n\nsecond part\n2. Two", 9) == [
        "First part second part",
        "Two",
    ]


def test_trailing_chatter_needs_a_blank_line():
    assert parse_numbered_list("1. One\n2. Two\nand more of two", 9) == [
        "One",
        "Two and more of two",
    ]
    assert parse_numbered_list("1. One\n2. Two\n\nI hope these help!\nBye.", 9) == ["One", "Two"]
    # An indented paragraph after the blank line still belongs to the item.
    assert parse_numbered_list("1. One\n2. Two\n\n   more of two", 9) == ["One", "Two more of two"]


def test_code_fence_around_the_list_is_ignored():
    text = "Here are the tasks:\n```text\n1. Alpha task here\n2. Beta task here\n```\nDone!"
    assert parse_numbered_list(text, 9) == ["Alpha task here", "Beta task here"]


def test_label_inside_an_item_is_dropped():
    assert parse_numbered_list("1. Instruction: Alpha\n2. Task: Beta\n3. 任务：丙", 9) == [
        "Alpha",
        "Beta",
        "丙",
    ]


def test_horizontal_rules_separate_like_blank_lines():
    assert parse_numbered_list("1. One\n---\n2. Two\n\n---\n\nThat's all!", 9) == ["One", "Two"]


def test_nested_lists_stay_inside_their_item():
    text = "1. Rank these fruits by sweetness:\n   1. apple\n   2. mango\n2. Explain gravity."
    assert parse_numbered_list(text, 9) == [
        "Rank these fruits by sweetness: 1. apple 2. mango",
        "Explain gravity.",
    ]
    text = "Task 1: Rank these:\n- apple\n- mango\nTask 2: Explain gravity."
    assert parse_numbered_list(text, 9) == ["Rank these: - apple - mango", "Explain gravity."]


def test_numbers_inside_text_are_not_markers():
    assert parse_numbered_list("1. Meet at\n10:30 tomorrow.\n2. Pi is\n3.14 roughly.", 9) == [
        "Meet at 10:30 tomorrow.",
        "Pi is 3.14 roughly.",
    ]
    assert parse_numbered_list("1. Describe the events of\n1989. in Berlin", 9) == [
        "Describe the events of 1989. in Berlin"
    ]


def test_quotes_and_emphasis_inside_are_kept():
    assert parse_numbered_list('1. "Hi," she said. "Bye," he said.', 9) == [
        '"Hi," she said. "Bye," he said.'
    ]
    assert parse_numbered_list("1. Write a **short** poem.\n2. Compute 2*3*4.", 9) == [
        "Write a **short** poem.",
        "Compute 2*3*4.",
    ]
    assert parse_numbered_list("1. **“Quoted and bold”**", 9) == ["Quoted and bold"]


def test_bullets_when_the_whole_answer_is_a_bullet_list():
    text = (
        "Here are some new tasks:\n- Write a poem about rain.\n* Explain gravity.\n"
        "• 解释重力。\n\nEnjoy!"
    )
    assert parse_numbered_list(text, 9) == [
        "Write a poem about rain.",
        "Explain gravity.",
        "解释重力。",
    ]
    assert parse_numbered_list("- Multi-line\n  bullet item\n- Second", 9) == [
        "Multi-line bullet item",
        "Second",
    ]


def test_bullets_are_not_tasks_inside_prose():
    assert (
        parse_numbered_list("I cannot do that because:\n- reason one\nAnd more prose.\n- x", 9)
        == []
    )
    assert parse_numbered_list("Some prose first.\n- a bullet\n- another", 9) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "I'm sorry, but I can't help with that.",
        "Task 10:",
        "1.\n2.\n3.",
        "**1.**\n**2.**",
        "Here are some new tasks:",
        "###\n---\n***",
        "- ",
    ],
)
def test_no_tasks(text):
    assert parse_numbered_list(text, 9) == []


# ---------------------------------------------------------------------- alpaca blocks


def test_alpaca_completion_continuation():
    assert parse_alpaca_tasks(ALPACA_CONTINUATION, 4) == [
        Candidate(
            "Classify the sentiment of this tweet as positive, negative or neutral.",
            "Just missed my bus again. Great start to the week...",
            "Negative",
        ),
        Candidate(
            "Give three tips for writing a clear email.",
            "",
            "1. State your purpose in the first sentence.\n"
            "2. Keep paragraphs short.\n"
            "3. End with a clear request or next step.",
        ),
        Candidate(
            "Rewrite the sentence in the passive voice.",
            "The committee approved the new budget.",
            "The new budget was approved by the committee.",
        ),
    ]


def test_alpaca_chat_bold_labels_without_separators():
    assert parse_alpaca_tasks(ALPACA_CHAT, 4) == [
        Candidate(
            "Summarize the paragraph in one sentence.",
            "The city council met on Tuesday to discuss the new park. After a long debate,\n"
            "members voted 7-2 to approve the plan, which includes a playground and a "
            "community garden.",
            "The city council voted 7-2 to approve a new park with a playground and garden.",
        ),
        Candidate(
            "Name three renewable sources of energy.",
            "",
            "- Solar power\n- Wind power\n- Hydroelectric power",
        ),
        Candidate("Convert 100 degrees Fahrenheit to Celsius.", "", "100°F is about 37.8°C."),
    ]


def test_alpaca_chinese():
    assert parse_alpaca_tasks(ALPACA_CHINESE, 4) == [
        Candidate("把下面的句子改写得更礼貌一些。", "把文件发给我。", "麻烦您把文件发给我，谢谢！"),
        Candidate("列出三种常见的中国传统节日。", "", "春节、端午节、中秋节。"),
        Candidate("解释“画蛇添足”的意思。", "", "比喻做了多余的事，反而不恰当。"),
    ]


def test_alpaca_chinese_continuation_with_full_width_colons():
    text = (
        " 写一首关于春天的短诗。\n4. 输入：\n<无输入>\n4. 输出：\n"
        "春风吹绿柳，\n细雨润新花。\n###\n5. 指令："
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("写一首关于春天的短诗。", "", "春风吹绿柳，\n细雨润新花。")
    ]


@pytest.mark.parametrize(
    "no_input",
    [
        "<noinput>",
        "<No Input>",
        "noinput",
        "No input.",
        "No input required",
        "None",
        "none.",
        "(none)",
        "N/A",
        "n/a",
        "null",
        "",
        "<无输入>",
        "无输入",
        "无",
        "空",
        "（无）",
        "`<noinput>`",
        "**None**",
    ],
)
def test_alpaca_no_input_variants(no_input):
    text = f"Instruction: Name three primary colors.\nInput: {no_input}\nOutput: Red, yellow, blue."
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Name three primary colors.", "", "Red, yellow, blue.")
    ]


def test_alpaca_input_that_mentions_none_is_kept():
    text = "Instruction: Explain this code.\nInput: x = None\nOutput: It sets x to None."
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Explain this code.", "x = None", "It sets x to None.")
    ]


def test_alpaca_restarting_at_one_with_a_preamble():
    text = (
        "Here are the tasks.\n\n###\n1. Instruction: Name a prime number.\n1. Input:\n<noinput>\n"
        "1. Output:\n7\n###\n2. Instruction: Reverse the word.\n2. Input:\nstressed\n2. Output:\n"
        "desserts\n###"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Name a prime number.", "", "7"),
        Candidate("Reverse the word.", "stressed", "desserts"),
    ]


@pytest.mark.parametrize(
    "labels",
    [
        ("Instruction:", "Input:", "Output:"),
        ("1. Instruction:", "1. Input:", "1. Output:"),
        ("**Instruction:**", "**Input:**", "**Output:**"),
        ("**Instruction**:", "**Input**:", "**Output**:"),
        ("### Instruction:", "### Input:", "### Output:"),
        ("Instruction 1:", "Input 1:", "Output 1:"),
        ("INSTRUCTION:", "INPUT:", "OUTPUT:"),
        ("指令：", "输入：", "输出："),
        ("1. 指令:", "1. 输入:", "1. 输出:"),
        ("**指令**：", "**输入**：", "**输出**："),
    ],
)
def test_alpaca_label_shapes(labels):
    instruction, task_input, output = labels
    text = f"{instruction} Count the vowels.\n{task_input} banana\n{output} 3"
    assert parse_alpaca_tasks(text, 4) == [Candidate("Count the vowels.", "banana", "3")]


def test_alpaca_labels_with_text_on_the_next_line():
    text = (
        "**Instruction:**\nCount the vowels\nin the word.\n**Input:**\n  banana\n**Output:**\n3\n"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Count the vowels in the word.", "banana", "3")
    ]


def test_alpaca_block_without_instruction_is_dropped():
    text = (
        "###\n5. Input:\nsomething\n5. Output:\nelse\n###\n6. Instruction: Keep me.\n6. Output: ok"
    )
    assert parse_alpaca_tasks(text, 4) == [Candidate("Keep me.", "", "ok")]


def test_alpaca_block_without_output_gets_empty_output():
    text = (
        "Instruction: Name a color.\nInput: <noinput>\n\nInstruction: Name a fruit.\nOutput: Apple"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Name a color.", "", ""),
        Candidate("Name a fruit.", "", "Apple"),
    ]


def test_alpaca_output_may_contain_label_like_lines():
    text = (
        "1. Instruction: Show a sample program run.\n1. Input:\n<noinput>\n1. Output:\n"
        "Input: 5\nOutput: 120\nInstruction: done\n###\n"
        "2. Instruction: Next task here.\n2. Input:\n<noinput>\n2. Output:\nok"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Show a sample program run.", "", "Input: 5\nOutput: 120\nInstruction: done"),
        Candidate("Next task here.", "", "ok"),
    ]


def test_alpaca_new_numbered_instruction_splits_without_separator():
    text = (
        "5. Instruction: First.\n5. Input:\n<noinput>\n5. Output:\nOne\n"
        "6. Instruction: Second.\n6. Input:\nx\n6. Output:\nTwo"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("First.", "", "One"),
        Candidate("Second.", "x", "Two"),
    ]


def test_alpaca_task_headings_separate_blocks():
    text = (
        "**Task 1**\nInstruction: Name an ocean.\nInput: None\nOutput: Pacific\n\n"
        "### Example 2:\nInstruction: Name a desert.\nInput: None\nOutput: Sahara"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate("Name an ocean.", "", "Pacific"),
        Candidate("Name a desert.", "", "Sahara"),
    ]


def test_alpaca_outputs_are_verbatim_apart_from_stripping():
    text = (
        "Instruction: Write Python that prints hi.\nInput: <noinput>\nOutput:\n"
        "```python\ndef main():\n    print('hi')\n```\n\n42\n"
    )
    assert parse_alpaca_tasks(text, 4) == [
        Candidate(
            "Write Python that prints hi.", "", "```python\ndef main():\n    print('hi')\n```\n\n42"
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  \n ",
        "Just some random prose without any labels at all.",
        "###\n###\n###",
        "7. Instruction:",
        "###\n7. Instruction:\n###\n8. Instruction:   ",
        "Input:\nOutput:",
        "**Instruction:**",
    ],
)
def test_alpaca_garbage_gives_nothing(text):
    assert parse_alpaca_tasks(text, 4) == []


# ----------------------------------------------------------------------- robustness

# Pieces of the shapes the parsers look for, so generated text often half-matches them.
_PIECES = [
    *"abc XYZ 0123456789.:)(*#-_`\"'\n\t",
    *["：", "、", "（", "）", "１", "任务", "第", "条", "中", "Task ", "Instruction:", "Input:"],
    *["Output:", "指令：", "输入：", "输出：", "###", "**", "<noinput>", "<无输入>"],
]
_MARKDOWNISH = st.lists(st.sampled_from(_PIECES), max_size=120).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=500), _MARKDOWNISH), first_number=st.integers(0, 30))
def test_parsers_never_raise(text, first_number):
    instructions = parse_numbered_list(text, first_number)
    assert all(isinstance(item, str) and item and item == item.strip() for item in instructions)
    candidates = parse_alpaca_tasks(text, first_number)
    assert all(isinstance(c, Candidate) and c.instruction for c in candidates)
