"""`minRequests`: a metric judged on too little traffic is Inconclusive, never Failed.

A canary a few seconds old serving a handful of requests has a p95 that is noise; judging it
rolled healthy canaries back. These tests drive `take_measurements` through a fake provider
(answers chosen per query, every query recorded) and the pure `traffic_gate` directly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.metrics_source.builtins import BUILTINS, Selector, request_count_query
from llmops_operator.metrics_source.provider import QueryResult
from llmops_operator.rollout.analysis.assess import served, traffic_gate
from llmops_operator.rollout.analysis.run import take_measurements
from llmops_sim.emitter import Emitter, SimPod

NOW = datetime(2025, 1, 1, tzinfo=UTC)
V, ND, ERR = QueryResult.of, QueryResult.no_data, QueryResult.error


class FakeProvider:
    """Answers by kind of query (request count or metric) and revision; records every query."""

    def __init__(self, answers: dict[tuple[str, str], QueryResult]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def query(self, promql: str) -> QueryResult:
        kind = "count" if "increase(" in promql else "metric"
        revisions = set(re.findall(r'llmops_revision="([^"]*)"', promql))
        assert len(revisions) == 1, promql
        key = (kind, revisions.pop())
        self.asked.append(key)
        return self.answers.get(key, QueryResult.no_data())


def spec(metric: dict, **analysis: object) -> AnalysisSpec:
    """Point-estimate analysis (mode threshold): the gate in front of a single-number query."""
    return AnalysisSpec.model_validate(
        {"mode": "threshold", "metrics": [{"name": "ttft-p95", **metric}], **analysis}
    )


TTFT_MAX = {"builtin": "timeToFirstTokenP95", "max": 2.0}
TTFT_RATIO = {"builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2, "window": "30s"}
CUSTOM = {"query": 'histogram_quantile(0.95, x{llmops_revision="{{revision}}"})', "max": 2.0}


@pytest.mark.parametrize(
    ("metric", "analysis", "answers", "phase", "in_message", "asked"),
    [
        pytest.param(
            TTFT_MAX,
            {},
            {("count", "new"): V(7), ("metric", "new"): V(5.0)},
            "Inconclusive",
            "ttft-p95: too little traffic: canary served 7 requests in 2m (minRequests 20)",
            [("count", "new")],
            id="below: not judged, metric not even queried",
        ),
        pytest.param(
            TTFT_MAX,
            {},
            {("count", "new"): V(19.97), ("metric", "new"): V(5.0)},
            "Inconclusive",
            "canary served 19 requests",
            [("count", "new")],
            id="increase() fractions round down",
        ),
        pytest.param(
            TTFT_MAX,
            {},
            {("count", "new"): V(20), ("metric", "new"): V(5.0)},
            "Failed",
            "5 > max 2",
            [("count", "new"), ("metric", "new")],
            id="at threshold: judged",
        ),
        pytest.param(
            TTFT_MAX,
            {},
            {("count", "new"): V(500), ("metric", "new"): V(1.0)},
            "Successful",
            "within max 2",
            [("count", "new"), ("metric", "new")],
            id="above threshold: judged",
        ),
        pytest.param(
            TTFT_MAX,
            {"minRequests": 100},
            {("count", "new"): V(99), ("metric", "new"): V(1.0)},
            "Inconclusive",
            "(minRequests 100)",
            [("count", "new")],
            id="threshold from the spec",
        ),
        pytest.param(
            TTFT_MAX,
            {},
            {("metric", "new"): V(5.0)},
            "Inconclusive",
            "no data: the canary served no requests",
            [("count", "new")],
            id="no count data is no traffic",
        ),
        pytest.param(
            TTFT_MAX,
            {"onNoData": "Failed"},
            {("count", "new"): V(0)},
            "Failed",
            "no data: the canary served no requests",
            [("count", "new")],
            id="no traffic at all follows onNoData",
        ),
        pytest.param(
            TTFT_MAX,
            {"onNoData": "Failed"},
            {("count", "new"): V(3)},
            "Inconclusive",
            "canary served 3 requests",
            [("count", "new")],
            id="little traffic is Inconclusive even with onNoData Failed",
        ),
        pytest.param(
            TTFT_RATIO,
            {},
            {
                ("count", "new"): V(50),
                ("count", "old"): V(4),
                ("metric", "new"): V(0.3),
                ("metric", "old"): V(0.1),
            },
            "Inconclusive",
            "stable revision served 4 requests in 30s (minRequests 20)",
            [("count", "new"), ("count", "old")],
            id="stable below threshold with a ratio threshold",
        ),
        pytest.param(
            TTFT_RATIO,
            {"onNoData": "Failed"},
            {("count", "new"): V(50), ("count", "old"): V(0)},
            "Inconclusive",
            "stable revision served 0 requests",
            [("count", "new"), ("count", "old")],
            id="a thin baseline is never the canary's failure",
        ),
        pytest.param(
            TTFT_RATIO,
            {},
            {
                ("count", "new"): V(50),
                ("count", "old"): V(400),
                ("metric", "new"): V(0.3),
                ("metric", "old"): V(0.1),
            },
            "Failed",
            "3x stable 0.1 > maxRatioToStable 1.2",
            [("count", "new"), ("count", "old"), ("metric", "new"), ("metric", "old")],
            id="both above threshold: ratio judged",
        ),
        pytest.param(
            TTFT_MAX,
            {},
            {("count", "new"): ERR("Prometheus at x is unreachable"), ("metric", "new"): V(1.0)},
            "Error",
            "ttft-p95: request count query error: Prometheus at x is unreachable",
            [("count", "new")],
            id="count query error is an Error, never a pass",
        ),
        pytest.param(
            TTFT_RATIO,
            {},
            {("count", "new"): V(50), ("count", "old"): ERR("bad query"), ("metric", "new"): V(0.1)},
            "Error",
            "stable request count query error: bad query",
            [("count", "new"), ("count", "old")],
            id="stable count query error is an Error",
        ),
        pytest.param(
            TTFT_MAX,
            {"minRequests": 0},
            {("count", "new"): V(1), ("metric", "new"): V(5.0)},
            "Failed",
            "5 > max 2",
            [("metric", "new")],
            id="minRequests 0 disables the check",
        ),
        pytest.param(
            CUSTOM,
            {"minRequests": 1000},
            {("count", "new"): V(1), ("metric", "new"): V(5.0)},
            "Failed",
            "5 > max 2",
            [("metric", "new")],
            id="custom query not gated",
        ),
        pytest.param(
            {"builtin": "queueDepth", "max": 2.0},
            {"minRequests": 1000},
            {("count", "new"): V(1), ("metric", "new"): V(0.5)},
            "Successful",
            "within max 2",
            [("metric", "new")],
            id="queueDepth not gated",
        ),
        pytest.param(
            {"builtin": "errorRate", "max": 0.01},
            {},
            {("count", "new"): V(3), ("metric", "new"): V(1.0)},
            "Inconclusive",
            "canary served 3 requests",
            [("count", "new")],
            id="errorRate gated too",
        ),
    ],
)
def test_take_measurements_gates_on_traffic(
    metric: dict,
    analysis: dict,
    answers: dict[tuple[str, str], QueryResult],
    phase: str,
    in_message: str,
    asked: list[tuple[str, str]],
) -> None:
    provider = FakeProvider(answers)
    out = take_measurements(
        spec(metric, **analysis), ["ttft-p95"], provider, "vllm", "ns", "m", "new", "old", NOW
    )
    assert len(out) == 1
    assert out[0].phase == phase, out[0].message
    assert in_message in out[0].message
    assert provider.asked == asked


def test_min_requests_defaults_to_20_and_rejects_negatives() -> None:
    assert AnalysisSpec().min_requests == 20
    assert AnalysisSpec.model_validate({"minRequests": 0}).min_requests == 0
    with pytest.raises(ValueError, match="minRequests"):
        AnalysisSpec.model_validate({"minRequests": -1})


def test_the_regression_from_the_issue_is_inconclusive_not_a_rollback() -> None:
    """A healthy canary a few seconds old: 1.2x+ stable p95 on 7 requests must not roll back."""
    provider = FakeProvider(
        {
            ("count", "new"): V(7),
            ("count", "old"): V(900),
            ("metric", "new"): V(0.36),
            ("metric", "old"): V(0.25),
        }
    )
    analysis = AnalysisSpec.model_validate(
        {
            "mode": "threshold",
            "failureLimit": 0,
            "metrics": [
                {
                    "name": "ttft-p95",
                    "builtin": "timeToFirstTokenP95",
                    "maxRatioToStable": 1.2,
                    "window": "30s",
                }
            ],
        }
    )
    [m] = take_measurements(analysis, ["ttft-p95"], provider, "vllm", "ns", "m", "new", "old", NOW)
    assert m.phase == "Inconclusive"
    assert m.message == "ttft-p95: too little traffic: canary served 7 requests in 30s (minRequests 20)"
    assert m.value is None and m.threshold == "maxRatioToStable 1.2"


@pytest.mark.parametrize(
    ("engine", "builtin", "series"),
    [
        ("vllm", "timeToFirstTokenP95", ["vllm:e2e_request_latency_seconds_count"]),
        ("vllm", "e2eLatencyP95", ["vllm:e2e_request_latency_seconds_count"]),
        ("vllm", "interTokenLatencyP95", ["vllm:e2e_request_latency_seconds_count"]),
        ("vllm", "errorRate", ["http_requests_total"]),
        ("tensorrt-llm", "timeToFirstTokenP95", ["trtllm_e2e_request_latency_seconds_count"]),
        ("tensorrt-llm", "e2eLatencyP95", ["trtllm_e2e_request_latency_seconds_count"]),
        ("onnxruntime", "errorRate", ["nv_inference_request_success", "nv_inference_request_failure"]),
    ],
)
def test_request_counts_read_series_the_engine_exports(engine: str, builtin: str, series: list[str]) -> None:
    """Every series a count query reads is in the emitter's exposition for that engine, with the
    revision's labels; the query selects exactly that revision over the window."""
    sel = Selector("ns", "llama", "r1")
    q = request_count_query(engine, builtin, sel, "30s")  # type: ignore[arg-type]
    assert q is not None
    read = set(re.findall(r"increase\(([a-zA-Z0-9_:]+)\{" + re.escape(sel.labels()), q))
    assert read == set(series)
    assert q.count("[30s]") == len(series)
    exposed = Emitter([SimPod("ns", "p0", engine, "llama", "r1")], clock=lambda: 1000.0).render()
    for name in series:
        assert re.search(rf'^{re.escape(name)}\{{[^}}]*llmops_revision="r1"', exposed, re.M), name


def test_request_counts_cover_exactly_the_gated_builtins() -> None:
    """Every engine that has a latency builtin or errorRate can count its requests; the gauge
    queueDepth has no count (never gated)."""
    sel = Selector("ns", "m", "r")
    for builtin, engines in BUILTINS.items():
        for engine in engines:
            q = request_count_query(engine, builtin, sel)  # type: ignore[arg-type]
            assert (q is None) == (builtin == "queueDepth"), (engine, builtin)


def test_vllm_error_rate_counts_failed_requests_too() -> None:
    """A canary failing every request must still be judged on errorRate, not skipped as idle."""
    q = request_count_query("vllm", "errorRate", Selector("ns", "m", "r"))
    assert q is not None and 'handler=~"/v1/.*"' in q and "status=" not in q


@given(
    min_requests=st.integers(min_value=0, max_value=10_000),
    canary=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    stable=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
)
def test_gate_passes_exactly_when_every_revision_served_enough(
    min_requests: int, canary: float, stable: float | None
) -> None:
    metric = MetricSpec.model_validate({"name": "x", "builtin": "e2eLatencyP95", "maxRatioToStable": 1.5})
    gate = traffic_gate(
        metric, min_requests, V(canary), None if stable is None else V(stable), "Inconclusive", NOW
    )
    counts = [canary] if stable is None else [canary, stable]
    enough = min_requests == 0 or all(served(V(c)) >= min_requests for c in counts)
    assert (gate is None) == enough
    if gate is not None:
        expected = "no data" if served(V(canary)) == 0 else "too little traffic"
        assert gate.phase == "Inconclusive" and expected in gate.message


@pytest.mark.parametrize(
    ("result", "count"),
    [(V(7.0), 7), (V(19.999999), 19), (V(20.0), 20), (ND(), 0), (ERR("x"), 0), (V(0.4), 0)],
)
def test_served_counts_whole_requests(result: QueryResult, count: int) -> None:
    assert served(result) == count
