"""The classify / input-first / output-first templates, and the parsers reading their demos.

A demonstration the parser cannot read back is one the model learns a shape from that
the pipeline then drops, so every demo's answer part is parsed here and compared with
what it says.
"""

import string
from pathlib import Path

import pytest

from selfinstruct.language import is_cjk_char
from selfinstruct.text.instances import (
    Example,
    parse_input_first,
    parse_output_first,
    parse_yes_no,
)
from selfinstruct.text.structured import read_input_first, read_output_first, read_yes_no

PROMPTS = Path(__file__).resolve().parent.parent.parent / "prompts"

PLACEHOLDERS = {
    "classify": {"instruction"},
    "input_first": {"instruction", "count"},
    "output_first": {"instruction", "count"},
    # The structured-output variants: the same demos, written in the schema's JSON.
    "classify_json": {"instruction"},
    "input_first_json": {"instruction", "count"},
    "output_first_json": {"instruction", "count"},
}
TASK_PREFIX = {"en": "Task: ", "zh": "任务："}
QUESTION = {"en": "Is it classification?", "zh": "是否为分类任务？"}
ANSWERS = {"en": {"Yes": True, "No": False}, "zh": {"是": True, "否": False}}
SENTINEL = "SENTINEL INSTRUCTION"

TEMPLATES = [(language, name) for language in ("en", "zh") for name in PLACEHOLDERS]


def template_text(language: str, name: str) -> str:
    return (PROMPTS / language / f"{name}.txt").read_text(encoding="utf-8")


def rendered(language: str, name: str) -> str:
    return template_text(language, name).format(instruction=SENTINEL, count=5)


def demos(language: str, name: str) -> list[tuple[str, str]]:
    """``(instruction, answer part)`` for each demonstration, in order.

    Demos are separated by a blank line and start with the task line; the last task line
    is the open one the model answers, so it is not a demo.
    """
    chunks = rendered(language, name).split("\n\n" + TASK_PREFIX[language])
    pairs = []
    for chunk in chunks[1:-1]:
        instruction, _, answer = chunk.partition("\n")
        pairs.append((instruction, answer))
    assert chunks[-1].startswith(SENTINEL)
    return pairs


# --------------------------------------------------------------------------- the files


@pytest.mark.parametrize(("language", "name"), TEMPLATES)
def test_placeholders_are_exactly_the_allowed_ones(language, name):
    fields = {
        field
        for _, field, _, _ in string.Formatter().parse(template_text(language, name))
        if field is not None
    }
    assert fields == PLACEHOLDERS[name]


@pytest.mark.parametrize(("language", "name"), TEMPLATES)
def test_renders_with_braces_in_the_instruction(language, name):
    text = template_text(language, name).format(instruction="Fill {this} in", count=3)
    assert "Fill {this} in" in text
    assert "{instruction}" not in text and "{count}" not in text


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("name", ["classify", "classify_json"])
def test_classify_ends_with_the_open_question(language, name):
    # No newline after the question: a completion model answers on the same line.
    ending = f"\n\n{TASK_PREFIX[language]}{{instruction}}\n{QUESTION[language]}"
    assert template_text(language, name).endswith(ending)


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize(
    "name", ["input_first", "output_first", "input_first_json", "output_first_json"]
)
def test_instance_templates_end_with_the_open_task(language, name):
    assert template_text(language, name).endswith(f"\n\n{TASK_PREFIX[language]}{{instruction}}\n")
    assert rendered(language, name).endswith(f"{TASK_PREFIX[language]}{SENTINEL}\n")


@pytest.mark.parametrize(("language", "name"), TEMPLATES)
def test_count_is_in_the_explanation(language, name):
    if "count" in PLACEHOLDERS[name]:
        explanation = template_text(language, name).split("\n\n")[0]
        assert "{count}" in explanation


@pytest.mark.parametrize("name", list(PLACEHOLDERS))
def test_chinese_demos_are_chinese(name):
    for instruction, _ in demos("zh", name):
        assert any(is_cjk_char(ch) for ch in instruction), instruction


# ------------------------------------------------------------------------------ classify

# Y for a Yes demo, N for a No demo, in the order they appear.
CLASSIFY_EXPECTED = {
    language: [answer == "Y" for answer in answers]
    for language, answers in {"en": "YNYNYNYNYNYNYN", "zh": "YNYNYNYNYNYNYN"}.items()
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_classify_demo_format(language):
    pairs = demos(language, "classify")
    assert 12 <= len(pairs) <= 16
    for _, answer in pairs:
        question, _, word = answer.partition(QUESTION[language])
        assert question == ""
        assert word.strip() in ANSWERS[language]
        assert word == (" " if language == "en" else "") + word.strip()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_classify_demos_parse_back(language):
    parsed = [
        parse_yes_no(answer.partition(QUESTION[language])[2])
        for _, answer in demos(language, "classify")
    ]
    assert parsed == CLASSIFY_EXPECTED[language]
    # The whole answer part, question echo included, reads the same.
    assert [parse_yes_no(answer) for _, answer in demos(language, "classify")] == parsed


@pytest.mark.parametrize("language", ["en", "zh"])
def test_classify_demos_are_roughly_half_yes(language):
    answers = CLASSIFY_EXPECTED[language]
    assert 0.4 <= sum(answers) / len(answers) <= 0.6


# --------------------------------------------------------------------------- input-first

INPUT_FIRST_EXPECTED = {
    "en": [
        [
            Example("98.6°F", "37.0°C"),
            Example("32°F", "0.0°C"),
            Example("-4°F", "-20.0°C"),
        ],
        [
            Example(
                "",
                "Flat tire, loose chain, a squeaky brake?\n"
                "Roll it in, we'll fix it while you wait.",
            ),
            Example(
                "",
                "From rusty gears to wobbly wheels,\nwe bring back the joy a good ride feels.",
            ),
        ],
        [
            Example(
                "def count_vowels(text):\n"
                "    count = 0\n"
                "    for ch in text.lower():\n"
                '        if ch in "aeiou":\n'
                "            count += 1\n"
                "        return count",
                "The return statement is indented inside the loop, so the function returns "
                "after looking at the first character only. Move it out of the loop:\n"
                "\n"
                "def count_vowels(text):\n"
                "    count = 0\n"
                "    for ch in text.lower():\n"
                '        if ch in "aeiou":\n'
                "            count += 1\n"
                "    return count",
            )
        ],
        [
            Example(
                "Starting next month, the Riverside public library will stay open until 9 p.m. "
                "on weekdays. The change follows a survey in which many residents said they "
                "could only visit after work. To cover the extra hours, the library is hiring "
                "two part-time staff and recruiting volunteers for the evening shifts.",
                "Riverside's library will open until 9 p.m. on weekdays from next month because "
                "residents asked for evening hours, and it is adding part-time staff and "
                "volunteers to cover them.",
            ),
            Example(
                "Octopuses can change both the color and the texture of their skin in a "
                "fraction of a second. Special cells called chromatophores expand or shrink to "
                "show different pigments, while muscles raise small bumps on the skin. Together "
                "these let an octopus blend into rocks, sand or coral.",
                "Using pigment cells and skin muscles, an octopus can change its color and "
                "texture almost instantly to blend into its surroundings.",
            ),
        ],
        [
            Example(
                "",
                "Metal conducts heat much faster than wood, so it draws warmth away from your "
                "hand quickly. Your skin senses that loss of heat as cold, even though both "
                "spoons are at the same temperature.",
            )
        ],
        [
            Example(
                "You can reach Dana Whitfield at dana.w@example.org or on 555-0142.",
                '{"name": "Dana Whitfield", "email": "dana.w@example.org", "phone": "555-0142"}',
            ),
            Example(
                "Phone: 555-0199 / Email: omar.haddad@example.com (Omar Haddad, sales)",
                '{"name": "Omar Haddad", "email": "omar.haddad@example.com", "phone": "555-0199"}',
            ),
        ],
    ],
    "zh": [
        [
            Example("把文件发给我。", "麻烦您有空的时候把文件发给我，谢谢！"),
            Example("你说得不对。", "我觉得这里也许还有可以商量的地方，我们再一起核对一下好吗？"),
        ],
        [
            Example("", "书页轻翻，脚步放轻。"),
            Example("", "走进来，安静地遇见另一个世界。"),
        ],
        [
            Example("3x + 5 = 20", "移项得 3x = 20 - 5 = 15，\n两边同时除以 3，得 x = 5。"),
            Example("2(x - 4) = 10", "两边同时除以 2，得 x - 4 = 5，\n移项得 x = 9。"),
        ],
        [
            Example(
                "从下个月起，市图书馆将在工作日延长开放时间至晚上九点。馆方表示，此前的问卷调查"
                "显示，不少读者只有下班后才有空来借书。为此，图书馆将新招两名兼职馆员，并招募"
                "志愿者负责晚间值班。",
                "根据读者意见，市图书馆下月起工作日开放到晚上九点，并为此增加兼职馆员和志愿者。",
            )
        ],
        [
            Example(
                "def average(scores):\n"
                "    total = 0\n"
                "    for s in scores:\n"
                "        total += s\n"
                "    return total / len(score)",
                "最后一行把参数名 scores 误写成了 score，运行时会报 NameError。改正如下：\n"
                "\n"
                "def average(scores):\n"
                "    total = 0\n"
                "    for s in scores:\n"
                "        total += s\n"
                "    return total / len(scores)",
            )
        ],
        [
            Example("小王今年二十八岁，住在杭州。", '{"name": "小王", "city": "杭州", "age": 28}'),
            Example(
                "住在成都的李阿姨今年六十五岁了。", '{"name": "李阿姨", "city": "成都", "age": 65}'
            ),
        ],
        [
            Example(
                "",
                "复利就是“利滚利”：每一期产生的利息会加进本金里，下一期连同这些利息一起再计算"
                "利息。所以时间越长，钱增长得越快。比如存 100 元、年利率 10%，第一年后是 110 元，"
                "第二年按 110 元计息，变成 121 元。",
            )
        ],
    ],
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_input_first_demos_parse_back(language):
    parsed = [parse_input_first(answer) for _, answer in demos(language, "input_first")]
    assert parsed == INPUT_FIRST_EXPECTED[language]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_input_first_demo_mix(language):
    expected = INPUT_FIRST_EXPECTED[language]
    assert 5 <= len(expected) <= 7
    with_input = [all(example.input for example in demo) for demo in expected]
    without_input = [not any(example.input for example in demo) for demo in expected]
    assert any(with_input) and any(without_input)
    assert any("\n" in example.input for demo in expected for example in demo)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_input_first_demo_headers_are_numbered_from_one(language):
    header = "Example " if language == "en" else "示例"
    for _, answer in demos(language, "input_first"):
        numbers = [
            line.removeprefix(header) for line in answer.splitlines() if line.startswith(header)
        ]
        assert numbers == [str(n) for n in range(1, len(numbers) + 1)]
        assert answer.startswith(f"{header}1\n")


# -------------------------------------------------------------------------- output-first

OUTPUT_FIRST_EXPECTED = {
    "en": [
        (
            ["Positive", "Negative", "Neutral"],
            [
                Example(
                    "The dumplings were juicy, the staff remembered our names, and we were out in "
                    "under an hour. Already planning our next visit.",
                    "Positive",
                ),
                Example(
                    "We waited forty minutes for cold noodles, and nobody apologized when we "
                    "pointed it out.",
                    "Negative",
                ),
                Example(
                    "The menu is mostly noodle soups and dumplings, and the prices are about the "
                    "same as at the other places on this street.",
                    "Neutral",
                ),
            ],
        ),
        (["Yes", "No"], [Example("97", "Yes"), Example("91", "No")]),
        (
            ["Python", "JavaScript", "SQL"],
            [
                Example('for name in sorted(guests):\n    print("Welcome,", name)', "Python"),
                Example(
                    "const total = prices.reduce((sum, p) => sum + p, 0);\n"
                    "console.log(total.toFixed(2));",
                    "JavaScript",
                ),
                Example("SELECT city, COUNT(*) AS customers\nFROM accounts\nGROUP BY city;", "SQL"),
            ],
        ),
        (
            ["Fact", "Opinion"],
            [
                Example("The Pacific is the largest ocean on Earth.", "Fact"),
                Example("Jazz is the most relaxing kind of music to study to.", "Opinion"),
            ],
        ),
        (
            ["Billing", "Technical Support", "Sales"],
            [
                Example(
                    "Hi,\nSince yesterday's update the app logs me out every time I switch "
                    "screens. I have already reinstalled it twice.\nThanks,\nMarco",
                    "Technical Support",
                ),
                Example(
                    "Hello, I was charged twice for my March subscription. Could you refund one "
                    "of the payments?",
                    "Billing",
                ),
                Example(
                    "We are a team of 40 people and would like a quote for the business plan "
                    "with yearly billing.",
                    "Sales",
                ),
            ],
        ),
    ],
    "zh": [
        (
            ["正面", "负面", "中性"],
            [
                Example("耳机音质比我想象的好很多，降噪也给力，地铁上终于能安静听歌了。", "正面"),
                Example("用了不到一周左耳就没声音了，联系客服三天都没人回复。", "负面"),
                Example("东西昨天收到了，包装是普通纸盒，还没开始用。", "中性"),
            ],
        ),
        (["褒义", "贬义"], [Example("锲而不舍", "褒义"), Example("好高骛远", "贬义")]),
        (
            ["体育", "财经", "科技"],
            [
                Example("央行宣布下调存款准备金率0.5个百分点", "财经"),
                Example("国产新型锂电池充电十分钟可续航四百公里", "科技"),
                Example("女排联赛总决赛今晚开打，卫冕冠军主场迎战老对手", "体育"),
            ],
        ),
        (
            ["事实", "观点"],
            [
                Example("夏天最好的消暑方式就是吃一碗凉面。", "观点"),
                Example("水在一个标准大气压下的沸点是一百摄氏度。", "事实"),
            ],
        ),
        (
            ["医院", "餐厅", "银行"],
            [
                Example(
                    "甲：您好，我想把这张存折里的钱转到新卡上。\n乙：好的，请出示一下您的身份证。",
                    "银行",
                ),
                Example(
                    "甲：医生，我这两天一直咳嗽，晚上更厉害。\n乙：先量一下体温，我再听听肺部。",
                    "医院",
                ),
                Example(
                    "甲：服务员，这道菜能做得不辣一点吗？\n乙：可以的，我跟后厨说一声。", "餐厅"
                ),
            ],
        ),
    ],
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_output_first_demos_parse_back(language):
    parsed = [parse_output_first(answer) for _, answer in demos(language, "output_first")]
    assert parsed == OUTPUT_FIRST_EXPECTED[language]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_output_first_demos_are_balanced_over_listed_labels(language):
    expected = OUTPUT_FIRST_EXPECTED[language]
    assert 4 <= len(expected) <= 7
    for labels, examples in expected:
        assert sorted(example.output for example in examples) == sorted(labels)
    assert any("\n" in example.input for _, examples in expected for example in examples)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_output_first_demo_lines(language):
    list_prefix, label_prefix, input_prefix = {
        "en": ("Class labels: ", "Class label: ", "Input:"),
        "zh": ("类别列表：", "类别：", "输入："),
    }[language]
    for _, answer in demos(language, "output_first"):
        lines = answer.splitlines()
        assert lines[0].startswith(list_prefix)
        assert lines[1].startswith(label_prefix)
        labels = [line for line in lines if line.startswith(label_prefix)]
        inputs = [line for line in lines if line.startswith(input_prefix)]
        assert len(labels) == len(inputs)


# ------------------------------------------------------------------ structured variants


@pytest.mark.parametrize("language", ["en", "zh"])
def test_json_variants_show_the_text_demos_in_json(language):
    """Each JSON demo is its text twin written in the schema's shape: the same tasks,
    and the JSON reader gives exactly what the text parser gives for the text demo."""
    pairs = [("input_first", read_input_first, parse_input_first),
             ("output_first", read_output_first, parse_output_first)]
    for name, reader, parser in pairs:
        text_demos, json_demos = demos(language, name), demos(language, f"{name}_json")
        assert [task for task, _ in json_demos] == [task for task, _ in text_demos]
        assert [reader(answer) for _, answer in json_demos] == [
            parser(answer) for _, answer in text_demos]
    text_demos, json_demos = demos(language, "classify"), demos(language, "classify_json")
    assert [task for task, _ in json_demos] == [task for task, _ in text_demos]
    question = QUESTION[language]
    assert [read_yes_no(answer.partition(question)[2]) for _, answer in json_demos] == [
        parse_yes_no(answer.partition(question)[2]) for _, answer in text_demos]
