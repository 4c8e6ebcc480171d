"""Verdicts from confidence bounds (mode confidence): what is judged, from which window, and how."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.api.rollout import AnalysisStatus, MetricCounts, RolloutStatus
from llmops_operator.metrics_source.provider import QueryResult, SeriesResult
from llmops_operator.rollout.analysis.confidence import (
    Data,
    Rate,
    Window,
    judge,
    quantile_checks,
    rate_checks,
)
from llmops_operator.rollout.analysis.run import look_window, take_measurements
from llmops_operator.rollout.analysis.stats import Buckets
from llmops_sim.emitter import TTFT_BUCKETS

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ERRORS = {"name": "errors", "builtin": "errorRate", "max": 0.01}
TTFT = {"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2}


def spec(*metrics: dict, **fields: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"metrics": list(metrics), **fields})


def window(look: int = 1, since_s: float = 120, recent_s: float | None = None) -> Window:
    recent = NOW - timedelta(seconds=recent_s) if recent_s is not None else None
    return Window(since=NOW - timedelta(seconds=since_s), now=NOW, recent=recent, look=look)


def rate_verdict(events: int, total: int, look: int = 1, **fields: object) -> str:
    s = spec(ERRORS, **fields)
    m = judge(
        s.metrics[0], s, rate_checks(s.metrics[0]), Data(Rate(events, total)), None, window(look), "rate"
    )
    return m.phase


def test_the_issues_false_rollback_is_inconclusive() -> None:
    """One error in 90 requests is 1.1% > max 1%: a point estimate rolls back, a bound does not."""
    assert rate_verdict(1, 90) == "Inconclusive"


@pytest.mark.parametrize(
    ("events", "total", "phase"),
    [
        (0, 400, "Successful"),  # upper 95% bound 0.67%
        (1, 90, "Inconclusive"),
        (30, 600, "Failed"),  # 5%: lower bound far above 1%
        (0, 30, "Inconclusive"),  # upper bound 8%: too little evidence
    ],
)
def test_rate_verdicts(events: int, total: int, phase: str) -> None:
    assert rate_verdict(events, total) == phase


def test_default_is_mode_confidence_at_95_percent() -> None:
    assert (AnalysisSpec().mode, AnalysisSpec().confidence) == ("confidence", 0.95)


@settings(max_examples=150, deadline=None)
@given(
    events=st.integers(0, 60), total=st.integers(20, 3000), look=st.integers(1, 40), more=st.integers(0, 30)
)
def test_a_rollback_needs_more_evidence_at_later_looks_and_more_events_never_help(
    events: int, total: int, look: int, more: int
) -> None:
    events = min(events, total)
    order = {"Successful": 0, "Inconclusive": 1, "Failed": 2}
    now = order[rate_verdict(events, total, look)]
    assert order[rate_verdict(events, total, look + 1)] <= max(now, 1)  # later look: never more Failed
    if now == 2:
        assert rate_verdict(events, total, max(1, look - 1)) == "Failed"
    worse = min(total, events + more)
    assert order[rate_verdict(worse, total, look)] >= now  # more errors: never a better verdict


def binned(rng: np.random.Generator, median: float, n: int) -> Buckets:
    samples = rng.lognormal(math.log(median), 0.5, n)
    index = np.searchsorted(TTFT_BUCKETS, samples, side="left")
    return Buckets(TTFT_BUCKETS, tuple(float(c) for c in np.bincount(index, minlength=len(TTFT_BUCKETS) + 1)))


def ttft_verdict(canary: Buckets, stable: Buckets, w: Window, recent: tuple[Buckets, Buckets] | None = None):
    s = spec(TTFT)
    metric = s.metrics[0]
    c = Data(canary, recent[0] if recent else None)
    st_ = Data(stable, recent[1] if recent else None)
    return judge(metric, s, quantile_checks(metric, 0.95), c, st_, w, "p95")


def test_ttft_regression_is_failed_with_a_compact_message() -> None:
    rng = np.random.default_rng(4)
    m = ttft_verdict(binned(rng, 0.12, 2140), binned(rng, 0.08, 8530), window())
    assert m.phase == "Failed"
    assert re.match(
        r"ttft: p95 1\.\d+x stable \[1\.\d+, 1\.\d+\] at 95%, n=2,140/8,530: Failed \(lower bound", m.message
    ), m.message
    assert m.samples == 2140 and m.stable_samples == 8530 and m.confidence == 0.95
    assert m.lower is not None and m.upper is not None and m.lower < m.estimate < m.upper
    assert m.value is not None and m.stable_value is not None


def test_healthy_ttft_is_successful_and_few_samples_inconclusive() -> None:
    rng = np.random.default_rng(8)
    assert ttft_verdict(binned(rng, 0.08, 3000), binned(rng, 0.08, 9000), window()).phase == "Successful"
    assert ttft_verdict(binned(rng, 0.08, 60), binned(rng, 0.08, 180), window()).phase == "Inconclusive"


def test_a_regression_in_the_recent_window_fails_though_the_counts_since_the_change_are_diluted() -> None:
    rng = np.random.default_rng(6)
    healthy_c, healthy_s = binned(rng, 0.08, 3000), binned(rng, 0.08, 9000)
    recent_c, recent_s = binned(rng, 0.16, 500), binned(rng, 0.08, 1500)
    whole_c = Buckets(
        TTFT_BUCKETS, tuple(a + b for a, b in zip(healthy_c.counts, recent_c.counts, strict=True))
    )
    whole_s = Buckets(
        TTFT_BUCKETS, tuple(a + b for a, b in zip(healthy_s.counts, recent_s.counts, strict=True))
    )
    m = ttft_verdict(whole_c, whole_s, window(look=5, since_s=70, recent_s=10), (recent_c, recent_s))
    assert m.phase == "Failed" and "in the last 10s" in m.message, m.message


def test_coarse_buckets_say_so_and_never_succeed() -> None:
    coarse = (0.05, 0.5, 5.0)
    rng = np.random.default_rng(2)

    def bins(median: float, n: int) -> Buckets:
        index = np.searchsorted(coarse, rng.lognormal(math.log(median), 0.35, n), side="left")
        return Buckets(coarse, tuple(float(c) for c in np.bincount(index, minlength=4)))

    m = ttft_verdict(bins(0.15, 3000), bins(0.15, 9000), window())
    assert m.phase == "Inconclusive" and "buckets too coarse" in m.message, m.message


def test_too_little_traffic_and_no_data() -> None:
    s = spec(ERRORS)
    metric = s.metrics[0]
    few = judge(metric, s, rate_checks(metric), Data(Rate(0, 7)), None, window(), "rate")
    assert few.phase == "Inconclusive" and "canary served 7 requests in 120s (minRequests 20)" in few.message
    none = judge(metric, s, rate_checks(metric), Data(Rate(0, 0)), None, window(), "rate")
    assert none.phase == "Inconclusive" and "no data" in none.message


class CountsProvider:
    """Answers counter queries by revision: every series born in the window (no value when it
    began) with these counts at its end; records (revision, range, time) per window query."""

    def __init__(self, answers: dict[tuple[str, str], object]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, datetime]] = []
        self.started: list[tuple[str, datetime]] = []

    def query(self, promql: str) -> QueryResult:
        raise AssertionError(f"mode confidence must not run point queries: {promql}")

    def query_series(self, promql: str, at: datetime) -> SeriesResult:
        assert "increase(" not in promql and "rate(" not in promql, promql
        revision = re.search(r'llmops_revision="([^"]*)"', promql).group(1)  # type: ignore[union-attr]
        if "last_over_time" not in promql:
            self.started.append((revision, at))
            return SeriesResult("no_data")
        span = re.search(r"\[(\d+s)\]", promql).group(1)  # type: ignore[union-attr]
        self.asked.append((revision, span, at))
        end = {"pod": "p0", "llmops_at": "end"}
        if "_bucket" in promql:
            answer = self.answers.get((revision, "bucket"))
            if not isinstance(answer, Buckets):
                return SeriesResult("no_data")
            cumulative = np.cumsum(answer.counts)
            les = [f"{b:g}" for b in answer.bounds] + ["+Inf"]
            return SeriesResult(
                "value", tuple(({**end, "le": le}, float(c)) for le, c in zip(les, cumulative, strict=True))
            )
        events = self.answers.get((revision, "events"))
        total = self.answers.get((revision, "total"))
        if events is None or total is None:
            return SeriesResult("no_data")
        failed = 'status="5xx"' in promql
        value = float(events) if failed else float(total) - float(events)  # type: ignore[arg-type]
        return SeriesResult("value", (({**end, "status": "5xx" if failed else "2xx"}, value),))


def test_take_measurements_judges_counts_since_the_weight_change_and_the_recent_window() -> None:
    rng = np.random.default_rng(1)
    s = spec({**TTFT, "window": "20s"}, ERRORS, interval="10s")
    provider = CountsProvider(
        {
            ("new", "bucket"): binned(rng, 0.08, 900),
            ("old", "bucket"): binned(rng, 0.08, 2700),
            ("new", "events"): 0,
            ("new", "total"): 900,
        }
    )
    rollout = RolloutStatus(
        weight=25,
        weight_changed_at=NOW - timedelta(seconds=60),
        analysis=AnalysisStatus(
            last_measured_at=NOW - timedelta(seconds=10), counts={"ttft": MetricCounts(looks=4)}
        ),
    )
    out = take_measurements(s, ["ttft", "errors"], provider, "vllm", "ns", "m", "new", "old", NOW, rollout)
    assert [m.phase for m in out] == ["Successful", "Successful"], [m.message for m in out]
    # ttft: 60s since the weight change and its 20s window; errors: the 2m default window is
    # longer than the 60s since the change, so only the 60s
    assert {span for _, span, _ in provider.asked} == {"60s", "20s"}
    assert all(at == NOW for _, _, at in provider.asked)
    assert {at for _, at in provider.started} == {NOW - timedelta(seconds=60), NOW - timedelta(seconds=20)}
    assert out[0].since == NOW - timedelta(seconds=60)
    w = look_window(s, rollout, "ttft", NOW)
    assert (w.look, w.metrics, w.has_recent) == (5, 2, True)
    assert look_window(s, rollout, "errors", NOW).look == 1


def test_custom_queries_and_queue_depth_stay_point_estimates() -> None:
    s = spec({"name": "q", "builtin": "queueDepth", "max": 5})

    class Point:
        def query(self, promql: str) -> QueryResult:
            return QueryResult.of(9.0)

    [m] = take_measurements(s, ["q"], Point(), "vllm", "ns", "m", "new", "old", NOW)  # type: ignore[arg-type]
    assert m.phase == "Failed" and m.lower is None
