"""The scan that finds where a model's JSON ends and writes it as strict JSON."""

from __future__ import annotations

import json

import pytest

from selfinstruct.text.json_scan import scan


@pytest.mark.parametrize(
    ("body", "as_json"),
    [
        ('[{"a": 1},\n]', '[{"a": 1}\n]'),
        ("{'a': True, 'b': [None, False,],}", '{"a": true, "b": [null, false]}'),
        ('[1, // one\n 2 /* two */]', "[1,  \n 2  ]"),
        ("['it\\'s', 'say \"hi\"', '\\x41']", '["it\'s", "say \\"hi\\"", "\\u0041"]'),
        ('{"Nonexistent": "True"}', '{"Nonexistent": "True"}'),
        ("[\"don't\", 'x']", "[\"don't\", \"x\"]"),
    ],
)
def test_the_value_written_as_strict_json(body, as_json):
    shape = scan(body + " and then prose")
    assert shape.end == len(body)
    assert shape.as_json == as_json
    json.loads(shape.as_json)


@pytest.mark.parametrize(
    ("body", "items"),
    [("[]", 0), ("[1]", 1), ("[1, 2,]", 2), ("[1, [2, 3], {'a': 4}]", 3),
     ("{'a': 1, 'b': 2}", 2), ("[1, , 2]", None), ("[,]", None)],
)
def test_items_written_counts_the_roots_commas(body, items):
    assert scan(body).items_written() == items


@pytest.mark.parametrize(
    ("body", "complete"),
    [('[{"a": 1}, {"a": 2}', True), ('["a", "b"', True), ("['a', 'b'", True),
     ('[{"a": 1}, {"a": 2', False), ('["a", "b', False), ("[1, 2", False),
     ('[{"a": 1}, ', False), ('[{"a": [1, 2]', False)],
)
def test_a_value_cut_off_says_whether_its_last_item_is_complete(body, complete):
    shape = scan(body)
    assert shape.end is None and shape.mismatch is None
    assert shape.tail_complete is complete


def test_a_bracket_that_does_not_match_ends_the_scan():
    shape = scan('[{"a": 1}, {"a": 2]]')
    assert (shape.end, shape.mismatch) == (None, 18)
    assert scan('["]", "}"]').end == 10  # brackets inside strings are text
    assert scan("[1, // ]\n 2]").end == 12  # and inside comments
