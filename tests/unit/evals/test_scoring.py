"""Pure scoring: case verdicts, weights, pass rate, baseline regression, latency, Error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.evals import PassCriteria
from llmops_operator.evals import scoring
from llmops_operator.evals.assertions import Outcome


def ok(name: str = "contains[0]", weight: float = 1.0, score: float = 1.0) -> scoring.AssertionOutcome:
    return scoring.AssertionOutcome(name, name.split("[")[0], weight, Outcome(True, score))


def bad(name: str = "contains[0]", weight: float = 1.0, score: float = 0.0) -> scoring.AssertionOutcome:
    return scoring.AssertionOutcome(name, name.split("[")[0], weight, Outcome(False, score))


def case(cid: str, *items: scoring.AssertionOutcome, latency: float = 100.0, error: str | None = None):
    return scoring.CaseOutcome(cid, list(items), error, latency if error is None else None, "answer")


def run(cases: list[scoring.CaseOutcome], criteria: dict, baseline: list[scoring.CaseOutcome] | None = None):
    crit = PassCriteria.model_validate(criteria)
    verdicts = [scoring.judge_case(c, crit.case_score) for c in cases]
    scores = scoring.side_scores(cases, verdicts)
    base_scores = base_verdicts = None
    if baseline is not None:
        base_verdicts = [scoring.judge_case(c, crit.case_score) for c in baseline]
        base_scores = scoring.side_scores(baseline, base_verdicts)
    return scoring.verdict(
        scores, verdicts, scoring.summarise_assertions(cases), crit, base_scores, base_verdicts
    )


def test_case_passes_only_when_every_weighted_assertion_passes() -> None:
    v = scoring.judge_case(case("a", ok("contains[0]"), bad("regex[1]", score=0.0)))
    assert not v.passed and v.failed == ["regex[1]"] and v.score == pytest.approx(0.5)


def test_zero_weight_assertions_are_recorded_but_do_not_gate() -> None:
    v = scoring.judge_case(case("a", ok("contains[0]"), bad("regex[1]", weight=0)))
    assert v.passed and v.score == 1.0


def test_case_score_threshold_uses_weights() -> None:
    c = case("a", ok("contains[0]", weight=3), bad("regex[1]", weight=1))
    assert scoring.judge_case(c, case_score=0.75).passed
    assert not scoring.judge_case(c, case_score=0.8).passed


def test_assertion_error_makes_the_case_an_error() -> None:
    broken = scoring.AssertionOutcome("llmJudge[0]", "llmJudge", 1, Outcome.failed_to_evaluate("no score"))
    v = scoring.judge_case(case("a", ok(), broken))
    assert not v.passed and v.error == "llmJudge[0]: no score"


@pytest.mark.parametrize(
    ("cases", "criteria", "baseline", "phase", "failing"),
    [
        # all pass
        ([case("a", ok()), case("b", ok())], {"passRate": 1.0}, None, "Passed", []),
        # pass rate 0.5 below 0.9, the contains assertion is named
        ([case("a", ok()), case("b", bad())], {"passRate": 0.9}, None, "Failed", ["contains[0]"]),
        # pass rate exactly at the bar passes
        ([case("a", ok()), case("b", bad())], {"passRate": 0.5}, None, "Passed", []),
        # every weighted assertion that failed a case is named, in declaration order
        (
            [case(str(i), ok("contains[0]"), ok("regex[1]") if i else bad("regex[1]")) for i in range(10)]
            + [case("x", bad("contains[0]"), bad("regex[1]"))],
            {"passRate": 0.95},
            None,
            "Failed",
            ["contains[0]", "regex[1]"],
        ),
        # a weight-0 assertion failing everywhere decided nothing: never named
        (
            [case(str(i), ok("pii[0]") if i else bad("pii[0]"), bad("s[1]", weight=0)) for i in range(5)],
            {"passRate": 0.9},
            None,
            "Failed",
            ["pii[0]"],
        ),
        # latency p95 over the bound
        ([case("a", ok(), latency=5000)], {"latencyP95Ms": 4000}, None, "Failed", ["latencyP95Ms"]),
        ([case("a", ok(), latency=3000)], {"latencyP95Ms": 4000}, None, "Passed", []),
        # regression vs baseline
        (
            [case("a", ok()), case("b", ok()), case("c", bad()), case("d", ok())],
            {"passRate": 0.5, "maxRegressionVsBaseline": 0.25},
            [case("a", ok()), case("b", ok()), case("c", ok()), case("d", ok())],
            "Passed",
            [],
        ),
        (
            [case("a", ok()), case("b", bad()), case("c", bad()), case("d", ok())],
            {"passRate": 0.5, "maxRegressionVsBaseline": 0.2},
            [case("a", ok()), case("b", ok()), case("c", ok()), case("d", ok())],
            "Failed",
            ["maxRegressionVsBaseline"],
        ),
        # a better candidate than baseline is never a regression
        (
            [case("a", ok()), case("b", ok())],
            {"passRate": 0.5, "maxRegressionVsBaseline": 0.0},
            [case("a", bad()), case("b", bad())],
            "Passed",
            [],
        ),
        # errors within budget count as failures
        (
            [case(str(i), ok()) for i in range(19)] + [case("e", error="timeout")],
            {"passRate": 0.9, "maxErrorRate": 0.05},
            None,
            "Passed",
            [],
        ),
        # errors beyond budget: Error, never Failed or Passed
        ([case("a", ok()), case("e", error="connection refused")], {"passRate": 0.0}, None, "Error", []),
        ([case("e1", error="down"), case("e2", error="down")], {"passRate": 0.0, "maxErrorRate": 0.5}, None,
         "Error", []),
        # baseline errors beyond budget: Error too
        (
            [case("a", ok()), case("b", ok())],
            {"maxRegressionVsBaseline": 0.1},
            [case("a", error="down"), case("b", ok())],
            "Error",
            [],
        ),
        # no cases
        ([], {}, None, "Error", []),
    ],
)  # fmt: skip
def test_verdicts(cases, criteria, baseline, phase, failing) -> None:
    result = run(cases, criteria, baseline)
    assert result.phase == phase, result.message
    assert result.failing_assertions == failing


def test_error_message_names_the_first_failing_case() -> None:
    result = run([case("ok", ok()), case("q7", error="HTTP 500")], {"maxErrorRate": 0})
    assert result.phase == "Error"
    assert "case q7: HTTP 500" in result.message and "1 of 2" in result.message


def test_failed_message_explains_each_criterion() -> None:
    result = run([case("a", bad(), latency=9000)], {"passRate": 1, "latencyP95Ms": 100})
    assert "pass rate 0.000 < 1" in result.message
    assert "latency p95 9000ms > 100ms" in result.message


def test_latency_percentile_nearest_rank() -> None:
    assert scoring.percentile([], 95) is None
    assert scoring.percentile([5.0], 95) == 5.0
    assert scoring.percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert scoring.percentile([float(i) for i in range(1, 21)], 95) == 19.0


def test_per_assertion_summary() -> None:
    lat = scoring.AssertionOutcome("latency[1]", "latency", 1, Outcome(True, 1.0, measured=120.0))
    lat2 = scoring.AssertionOutcome("latency[1]", "latency", 1, Outcome(False, 0.0, measured=80.0))
    summary = scoring.summarise_assertions(
        [case("a", ok(), lat), case("b", bad(), lat2), case("c", error="x")]
    )
    assert [(s.name, s.passed, s.failed) for s in summary] == [("contains[0]", 1, 1), ("latency[1]", 1, 1)]
    assert summary[0].pass_rate == 0.5 and summary[1].mean_score == pytest.approx(100.0)


outcome_lists = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.floats(min_value=1, max_value=10_000)), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(rows=outcome_lists, pass_rate=st.floats(min_value=0, max_value=1), max_error=st.floats(0, 1))
def test_verdict_properties(rows, pass_rate: float, max_error: float) -> None:
    """Errors beyond budget are always Error; otherwise Passed iff the pass rate reaches the bar."""
    cases = [
        case(str(i), ok() if passed else bad(), latency=lat) if not errored else case(str(i), error="boom")
        for i, (errored, passed, lat) in enumerate(rows)
    ]
    result = run(cases, {"passRate": pass_rate, "maxErrorRate": max_error})
    errors = sum(e for e, _, _ in rows)
    passed = sum(p and not e for e, p, _ in rows)
    if errors and errors / len(rows) > max_error + 1e-9:
        assert result.phase == "Error"
    else:
        assert result.phase == ("Passed" if passed / len(rows) + 1e-9 >= pass_rate else "Failed")
