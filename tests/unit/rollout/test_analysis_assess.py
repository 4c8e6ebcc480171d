"""Pure verdicts: one measurement per metric, one verdict per analysis, a limit per outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.api.rollout import AnalysisStatus, Measurement
from llmops_operator.metrics_source.provider import QueryResult
from llmops_operator.rollout.analysis.assess import assess, measure, record

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def metric(**kw: object) -> MetricSpec:
    return MetricSpec.model_validate({"name": "m", "builtin": "errorRate", **kw})


V, ND, ERR = QueryResult.of, QueryResult.no_data, QueryResult.error


@pytest.mark.parametrize(
    ("spec", "canary", "stable", "on_no_data", "phase", "in_message"),
    [
        ({"max": 0.01}, V(0.005), None, "Inconclusive", "Successful", "within max 0.01"),
        ({"max": 0.01}, V(0.02), None, "Inconclusive", "Failed", "0.02 > max 0.01"),
        ({"min": 5}, V(4), None, "Inconclusive", "Failed", "4 < min 5"),
        (
            {"maxRatioToStable": 1.2},
            V(0.15),
            V(0.1),
            "Inconclusive",
            "Failed",
            "1.5x stable 0.1 > maxRatioToStable 1.2",
        ),
        ({"maxRatioToStable": 1.2}, V(0.11), V(0.1), "Inconclusive", "Successful", "m: 0.11"),
        (
            {"minRatioToStable": 0.8},
            V(5),
            V(10),
            "Inconclusive",
            "Failed",
            "0.5x stable 10 < minRatioToStable 0.8",
        ),
        ({"maxRatioToStable": 1.2}, V(0.0), V(0.0), "Inconclusive", "Successful", ""),
        ({"maxRatioToStable": 1.2}, V(0.1), V(0.0), "Inconclusive", "Failed", "inf"),
        ({"maxRatioToStable": 1.2}, V(0.1), ND(), "Failed", "Inconclusive", "no stable value"),
        ({"maxRatioToStable": 1.2}, V(0.1), None, "Failed", "Inconclusive", "no stable revision"),
        ({"maxRatioToStable": 1.2}, V(0.1), ERR("boom"), "Inconclusive", "Error", "stable query error: boom"),
        ({"max": 1}, ND(), None, "Inconclusive", "Inconclusive", "no data"),
        ({"max": 1}, ND(), None, "Failed", "Failed", "no data"),
        ({"max": 1}, ERR("Prometheus at x is unreachable"), None, "Inconclusive", "Error", "unreachable"),
        (
            {"max": 1, "maxRatioToStable": 2},
            V(3),
            V(1),
            "Inconclusive",
            "Failed",
            "3 > max 1; 3 is 3x stable",
        ),
    ],
)
def test_measure(spec, canary, stable, on_no_data, phase, in_message) -> None:  # type: ignore[no-untyped-def]
    m = measure(metric(**spec), canary, stable, on_no_data, NOW)
    assert m.phase == phase and in_message in m.message and m.metric == "m" and m.measured_at == NOW
    if canary.kind == "value":
        assert m.value == canary.value


def test_threshold_text_names_what_the_user_wrote() -> None:
    m = measure(metric(max=0.01, maxRatioToStable=1.2), V(0.5), V(0.1), "Inconclusive", NOW)
    assert m.threshold == "max 0.01, maxRatioToStable 1.2"
    assert m.stable_value == 0.1


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False))
def test_an_error_or_missing_value_is_never_successful(value: float, threshold: float) -> None:
    spec = metric(max=threshold)
    assert measure(spec, ERR("x"), V(value), "Inconclusive", NOW).phase == "Error"
    assert measure(spec, ND(), V(value), "Inconclusive", NOW).phase == "Inconclusive"
    assert measure(spec, V(float("nan")), None, "Inconclusive", NOW).phase == "Inconclusive"
    ok = measure(spec, V(value), None, "Inconclusive", NOW)
    assert (ok.phase == "Successful") == (value <= threshold)


def analysis(**kw: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"metrics": [{"name": "m", "builtin": "errorRate", "max": 1}], **kw})


def run(phases: str, **kw: object) -> str:
    """Record one measurement per letter (S/F/I/E) and return the verdict phase after the last."""
    status = AnalysisStatus()
    now = NOW
    for p in phases:
        full = {"S": "Successful", "F": "Failed", "I": "Inconclusive", "E": "Error"}[p]
        status = record(
            status, [Measurement(metric="m", phase=full, measured_at=now, message=f"m {full}")], now
        )
        now += timedelta(seconds=30)
    return assess(analysis(**kw), status).phase


@pytest.mark.parametrize(
    ("phases", "limits", "verdict"),
    [
        ("", {}, "Running"),
        ("S", {}, "Successful"),
        ("F", {"failureLimit": 1}, "Running"),
        ("FF", {"failureLimit": 1}, "Failed"),
        ("FSF", {"failureLimit": 1}, "Failed"),
        ("F", {"failureLimit": 0}, "Failed"),
        ("III", {"inconclusiveLimit": 3}, "Running"),
        ("IIII", {"inconclusiveLimit": 3}, "Inconclusive"),
        ("EEEE", {"consecutiveErrorLimit": 4}, "Running"),
        ("EEEEE", {"consecutiveErrorLimit": 4}, "Error"),
        ("EEEESEEEE", {"consecutiveErrorLimit": 4}, "Running"),
        ("IIIIFF", {"failureLimit": 1}, "Failed"),
        ("SE", {}, "Running"),
    ],
)
def test_assess_has_a_separate_limit_per_outcome(phases: str, limits: dict, verdict: str) -> None:
    assert run(phases, **limits) == verdict


def test_failed_verdict_reason_names_metric_value_and_threshold() -> None:
    spec = AnalysisSpec.model_validate(
        {"failureLimit": 0, "metrics": [{"name": "ttft", "builtin": "timeToFirstTokenP95", "max": 0.5}]}
    )
    m = measure(spec.metrics[0], V(0.9), None, "Inconclusive", NOW)
    verdict = assess(spec, record(AnalysisStatus(), [m], NOW))
    assert verdict.phase == "Failed" and verdict.metric == "ttft" and verdict.aborts
    assert (
        "ttft" in verdict.reason and "0.9 > max 0.5" in verdict.reason and "failureLimit 0" in verdict.reason
    )


def test_record_keeps_at_most_ten_measurements_per_metric() -> None:
    status = AnalysisStatus()
    for i in range(25):
        ms = [
            Measurement(metric=name, phase="Successful", value=i, measured_at=NOW + timedelta(seconds=i))
            for name in ("a", "b")
        ]
        status = record(status, ms, NOW + timedelta(seconds=i))
    assert len(status.measurements) == 20
    assert [m.value for m in status.measurements if m.metric == "a"] == list(range(15, 25))
    assert status.counts["a"].successful == 25
    assert status.started_at == NOW and status.last_measured_at == NOW + timedelta(seconds=24)
