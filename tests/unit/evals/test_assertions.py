"""Every assertion type, reference scores for rougeL and bleu, and judge score parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.evals import Assertion
from llmops_operator.evals import assertions as a
from llmops_operator.evals.dataset import Case

CASE = Case(
    id="c1", vars={"question": "Refund?"}, expected="You can get a refund.", metadata={"alt": "Refunds ok"}
)


def check(
    spec: dict, answer: str, case: Case = CASE, latency_ms: float | None = 10.0, judge: str | None = None
):
    assertion = Assertion.model_validate(spec)
    a.check_assertion(assertion, "x")
    return a.evaluate(assertion, "x", answer, case, latency_ms, judge)


@pytest.mark.parametrize(
    ("spec", "answer", "passed"),
    [
        ({"type": "equals"}, "  You can get a refund.\n", True),
        ({"type": "equals"}, "you can get a refund.", False),
        ({"type": "equals", "caseInsensitive": True}, "YOU CAN GET A REFUND.", True),
        ({"type": "equals", "value": "42"}, "42", True),
        ({"type": "equals", "expectedField": "alt"}, "Refunds ok", True),
        ({"type": "contains", "value": "refund"}, "A refund is possible", True),
        ({"type": "contains", "value": "refund"}, "A REFUND is possible", False),
        ({"type": "contains", "value": "refund", "caseInsensitive": True}, "A REFUND is possible", True),
        ({"type": "contains", "values": ["refund", "days"], "mode": "any"}, "no refund", True),
        ({"type": "contains", "values": ["refund", "days"], "mode": "all"}, "no refund", False),
        ({"type": "contains", "values": ["refund", "days"], "mode": "all"}, "refund in 30 days", True),
        ({"type": "contains"}, "Sure: You can get a refund. Bye", True),
        ({"type": "contains", "value": "rude", "negate": True}, "polite answer", True),
        ({"type": "contains", "value": "rude", "negate": True}, "a rude answer", False),
        ({"type": "regex", "value": "^Dear "}, "Dear customer", True),
        ({"type": "regex", "value": "^Dear "}, "Hi, Dear customer", False),
        ({"type": "regex", "value": "^dear ", "caseInsensitive": True}, "Dear customer", True),
        ({"type": "regex", "values": [r"\d+ days", "^Yes"], "mode": "all"}, "Yes, 30 days", True),
        ({"type": "regex", "values": [r"\d+ days", "^Yes"], "mode": "all"}, "No, 30 days", False),
        (
            {"type": "jsonSchema", "value": {"type": "object", "required": ["answer"]}},
            '{"answer": "hi"}',
            True,
        ),
        ({"type": "jsonSchema", "value": {"type": "object", "required": ["answer"]}}, '{"other": 1}', False),
        ({"type": "jsonSchema", "value": {"type": "object"}}, "not json at all", False),
        ({"type": "jsonSchema", "value": '{"type": "array"}'}, "[1, 2]", True),
        ({"type": "equals", "field": "answer.text", "value": "hi"}, '{"answer": {"text": "hi"}}', True),
        ({"type": "equals", "field": "items.1", "value": "b"}, '{"items": ["a", "b"]}', True),
        ({"type": "equals", "field": "answer", "value": "hi"}, "plain text", False),
        ({"type": "similarity", "threshold": 0.9}, "You can get a refund!", True),
        ({"type": "similarity", "threshold": 0.9}, "No.", False),
        ({"type": "rougeL", "threshold": 0.5}, "you can get a refund", True),
        ({"type": "rougeL", "threshold": 0.5}, "shipping takes a week", False),
        ({"type": "bleu", "threshold": 0.9}, "You can get a refund.", True),
        ({"type": "bleu", "threshold": 0.3}, "Refunds are impossible here.", False),
        ({"type": "latency", "threshold": 10}, "x", True),
        ({"type": "latency", "threshold": 9.9}, "x", False),
    ],
)
def test_assertion_table(spec: dict, answer: str, passed: bool) -> None:
    outcome = check(spec, answer)
    assert outcome.error is None
    assert outcome.passed is passed
    assert 0.0 <= outcome.score <= 1.0


def test_failure_detail_says_what_is_wrong() -> None:
    assert (
        "missing ['days']"
        in check({"type": "contains", "values": ["refund", "days"], "mode": "all"}, "refund").detail
    )
    assert "answer" in check({"type": "jsonSchema", "value": {"required": ["answer"]}}, "{}").detail
    assert check({"type": "latency", "threshold": 5}, "x").detail == "latency 10ms > 5ms"


def test_missing_reference_is_an_error_not_a_failure() -> None:
    outcome = check({"type": "rougeL"}, "anything", case=Case(id="c9"))
    assert outcome.error is not None and "c9" in outcome.error and not outcome.passed


def test_latency_without_measurement_is_an_error() -> None:
    assert check({"type": "latency", "threshold": 5}, "x", latency_ms=None).error


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "regex", "value": "(unclosed"}, "invalid regex"),
        ({"type": "regex", "values": ["ok", "[z-a]"]}, "invalid regex"),
        ({"type": "jsonSchema", "value": {"type": "no-such-type"}}, "invalid JSON schema"),
        ({"type": "jsonSchema", "value": "{not json"}, "not valid JSON"),
        ({"type": "jsonSchema", "value": [1, 2]}, "must be an object"),
    ],
)
def test_bad_assertions_are_caught_before_running(spec: dict, message: str) -> None:
    with pytest.raises((a.AssertionConfigError, ValidationError), match=message):
        a.check_assertion(Assertion.model_validate(spec), "x")


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "llmJudge", "rubric": "polite?"},
        {"type": "llmJudge", "judge": {"model": "j"}},
        {"type": "llmJudge", "judge": {"model": "j", "endpoint": "http://x"}, "rubric": "r"},
        {"type": "latency"},
        {"type": "jsonSchema"},
        {"type": "rougeL", "threshold": 1.5},
        {"type": "similarity", "negate": True},
        {"type": "equals", "unknownField": 1},
    ],
)
def test_inconsistent_assertions_are_rejected_by_the_model(spec: dict) -> None:
    with pytest.raises(ValidationError):
        Assertion.model_validate(spec)


# Reference values -------------------------------------------------------------------------------


def test_rouge_l_matches_lin_2004_example() -> None:
    """Lin (2004), ROUGE paper section 3.1: reference 'police killed the gunman'.

    S2 'police kill the gunman' shares LCS 'police the gunman' (3 of 4): F = 0.75.
    S3 'the gunman kill police' shares LCS 'the gunman' (2 of 4): F = 0.5.
    """
    assert a.rouge_l_score("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    assert a.rouge_l_score("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)


def test_rouge_l_hand_computed_unequal_lengths() -> None:
    """LCS of 5 tokens: P = 5/5, R = 5/6, F = 2PR/(P+R) = 10/11."""
    assert a.rouge_l_score("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)


def test_bleu_hand_computed_with_exponential_smoothing() -> None:
    """'the cat is on the mat' vs 'the cat sat on the mat', equal lengths (BP = 1).

    n-gram precisions 5/6, 3/5, 1/4 and 0/3; sacrebleu's default 'exp' smoothing
    replaces the zero by 1/(2*3). BLEU = (5/6 * 3/5 * 1/4 * 1/6) ** (1/4) = 0.37992.
    """
    expected = (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert a.bleu_score("the cat is on the mat", ["the cat sat on the mat"]) == pytest.approx(
        expected, abs=1e-6
    )


def test_bleu_identical_and_disjoint() -> None:
    assert a.bleu_score("the quick brown fox jumps", ["the quick brown fox jumps"]) == pytest.approx(1.0)
    assert a.bleu_score("alpha beta gamma delta", ["one two three four"]) < 0.05


def test_bleu_brevity_penalty() -> None:
    """Hypothesis of 4 tokens against a 6-token reference: BP = exp(1 - 6/4)."""
    import math

    # all n-grams of the hypothesis match: precisions 1, so BLEU = BP
    score = a.bleu_score("the cat sat on", ["the cat sat on the mat"])
    assert score == pytest.approx(math.exp(1 - 6 / 4), abs=1e-6)


def test_similarity_is_indel_ratio() -> None:
    """Indel distance of 'abcd' and 'abce' is 2 over 8 characters: 1 - 2/8 = 0.75."""
    assert a.similarity_score("abcd", "abce") == pytest.approx(0.75)


# Judge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("Score: 0.8", 0.8),
        ("The answer is polite but misses the 30-day rule.\nScore: 0.4", 0.4),
        ("score=1", 1.0),
        ("**Score:** 7", 0.7),
        ("Score: 8/10", 0.8),
        ("8/10", 0.8),
        ("I'd give it 4 out of 5.", 0.8),
        ('{"score": 0.9, "reason": "good"}', 0.9),
        ('Reasoning... {"Score": "0.65"}', 0.65),
        ("Rating: 85%", 0.85),
        ("0.3", 0.3),
        ("9", 0.9),
        ("First I thought Score: 0.2 but on reflection Score: 0.6", 0.6),
    ],
)
def test_judge_scores_are_parsed(text: str, score: float) -> None:
    assert a.parse_judge_score(text) == pytest.approx(score)


@pytest.mark.parametrize(
    "text", ["", "Looks good to me!", "Score: high", "Score: 250", "11/10", '{"score": "n/a"}']
)
def test_unparseable_judge_answers_are_errors(text: str) -> None:
    with pytest.raises(a.JudgeParseError):
        a.parse_judge_score(text)


def test_unparseable_judge_is_error_not_failure() -> None:
    spec = {"type": "llmJudge", "judge": {"model": "j"}, "rubric": "polite?", "threshold": 0.5}
    assert check(spec, "hi", judge="no idea").error is not None
    assert check(spec, "hi", judge="Score: 0.4").passed is False
    assert check(spec, "hi", judge="Score: 0.5").passed is True


def test_judge_messages_include_rubric_question_reference_and_answer() -> None:
    messages = a.judge_messages("Be polite", "Refund?", "No.", "Yes within 30 days")
    text = messages[1]["content"]
    assert messages[0]["role"] == "system" and "Score:" in messages[0]["content"]
    assert all(part in text for part in ("Be polite", "Refund?", "No.", "Yes within 30 days"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_judge_parser_never_crashes_and_stays_in_range(text: str) -> None:
    try:
        score = a.parse_judge_score(text)
    except a.JudgeParseError:
        return
    assert 0.0 <= score <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10), st.sampled_from(["Score: {}/10", "{}/10", "{} out of 10"]))
def test_judge_fractions_round_trip(numerator: int, template: str) -> None:
    assert a.parse_judge_score("Reasoning.\n" + template.format(numerator)) == pytest.approx(numerator / 10)


@settings(max_examples=200, deadline=None)
@given(answer=st.text(max_size=120), needle=st.text(min_size=1, max_size=10))
def test_contains_agrees_with_python_and_negate_inverts(answer: str, needle: str) -> None:
    plain = a.check_contains(answer, [needle])
    assert plain.passed is (needle in answer)
    negated = check({"type": "contains", "value": needle, "negate": True}, answer)
    assert negated.passed is not plain.passed
