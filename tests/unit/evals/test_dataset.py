"""Dataset parsing (JSONL, CSV, inline), bad datasets, and the dataset hash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.evals import EvalCase
from llmops_operator.evals import dataset


def test_jsonl_with_and_without_vars() -> None:
    text = "\n".join(
        [
            json.dumps({"id": "a", "vars": {"q": "hi"}, "expected": "hello", "source": "faq"}),
            "",
            json.dumps({"q": "bye", "expected": {"answer": "x"}}),
        ]
    )
    first, second = dataset.parse_jsonl(text)
    assert first == dataset.Case("a", {"q": "hi"}, "hello", {"source": "faq"})
    assert second.id == "case-2" and second.vars == {"q": "bye"}
    assert json.loads(second.expected or "") == {"answer": "x"}
    assert first.field_value("source") == "faq" and second.field_value("q") == "bye"


def test_csv_columns() -> None:
    text = "id,question,expected,metadata.topic\nr1,Refund?,Yes,refunds\n,Hours?,9-5,hours\n"
    cases = dataset.parse_text(text, "cases.csv")
    assert cases[0] == dataset.Case("r1", {"question": "Refund?"}, "Yes", {"topic": "refunds"})
    assert cases[1].id == "case-2"


def test_inline_cases() -> None:
    cases = dataset.from_inline([EvalCase(vars={"q": "x"}, expected="y"), EvalCase(id="named", vars={})])
    assert [c.id for c in cases] == ["case-1", "named"]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("", "cases.jsonl", "empty"),
        ("\n\n", "cases.jsonl", "empty"),
        ("id,question\n", "cases.csv", "empty"),
        ("", "cases.csv", "empty"),
        ('{"q": 1}\n{not json', "cases.jsonl", "line 2: not valid JSON"),
        ("[1, 2]", "cases.jsonl", "line 1: expected a JSON object"),
        ('{"id": "a"}\n{"id": "a"}', "cases.jsonl", "'a' appears more than once"),
        ('{"id": "a", "vars": [1]}', "cases.jsonl", "vars must be an object"),
        ("q\nx,y\n", "cases.csv", "more columns than the header"),
    ],
)
def test_bad_datasets_say_what_is_wrong(text: str, key: str, message: str) -> None:
    with pytest.raises(dataset.DatasetError, match=message):
        dataset.parse_text(text, key)


def test_hash_ignores_format_and_key_order() -> None:
    jsonl = '{"id": "a", "question": "Refund?", "expected": "Yes"}\n'
    csv_text = "expected,id,question\nYes,a,Refund?\n"
    assert dataset.dataset_hash(dataset.parse_jsonl(jsonl)) == dataset.dataset_hash(
        dataset.parse_csv(csv_text)
    )
    changed = dataset.parse_jsonl('{"id": "a", "question": "Refund?", "expected": "No"}\n')
    assert dataset.dataset_hash(changed) != dataset.dataset_hash(dataset.parse_jsonl(jsonl))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_raises_dataset_error(text: str) -> None:
    for key in ("cases.jsonl", "cases.csv"):
        try:
            cases = dataset.parse_text(text, key)
        except dataset.DatasetError:
            continue
        assert cases and len({c.id for c in cases}) == len(cases)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4), min_size=1, max_size=8
    )
)
def test_jsonl_rows_round_trip(rows: list[dict]) -> None:
    text = "\n".join(json.dumps(r) for r in rows)
    try:
        cases = dataset.parse_jsonl(text)
    except dataset.DatasetError as exc:
        assert "more than once" in str(exc) or "vars must be an object" in str(exc)
        return
    assert len(cases) == len(rows)
