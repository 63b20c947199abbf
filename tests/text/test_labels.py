"""The field label words are read the same by the task parser and the instance parser."""

from __future__ import annotations

import pytest

from selfinstruct.text.instances import Example, parse_input_first
from selfinstruct.text.labels import FIELD_OF_WORD, INPUT, INSTRUCTION, OUTPUT, label_pattern
from selfinstruct.text.tasks import Candidate, parse_alpaca_tasks


def words(field: str) -> list[str]:
    return [word for word, named in FIELD_OF_WORD.items() if named == field]


@pytest.mark.parametrize("input_word", words(INPUT))
@pytest.mark.parametrize("output_word", words(OUTPUT))
def test_every_input_and_output_word_is_read_by_both_parsers(input_word, output_word):
    body = f"{input_word.title()}：甲乙\n{output_word.title()}：丙丁"
    assert parse_input_first(body) == [Example("甲乙", "丙丁")]
    for instruction_word in words(INSTRUCTION):
        text = f"1. {instruction_word.title()}: 改写句子。\n1. {body}"
        assert parse_alpaca_tasks(text, 1) == [Candidate("改写句子。", "甲乙", "丙丁")]


def test_the_pattern_names_only_the_fields_asked_for():
    assert set(label_pattern([INPUT]).split("|")) == set(words(INPUT))
    assert "instruction" not in label_pattern([INPUT, OUTPUT])
