"""Reading the autoscaling signal over a Model's revisions, against a fake MetricProvider."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.autoscaling.decide import Signals
from llmops_operator.autoscaling.signals import (
    UnsupportedSignalError,
    pod_count_query,
    read_signals,
    unsupported_signal,
)
from llmops_operator.metrics_source.builtins import Selector, signal_query
from llmops_operator.metrics_source.provider import QueryResult

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
NS, MODEL = "team-a", "llama"


@dataclass
class FakeProvider:
    """Answers the exact queries of one engine and metric per revision; anything else is no data."""

    engine: str
    metric: str
    pods: dict[str, QueryResult] = field(default_factory=dict)
    values: dict[str, QueryResult] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        for revision, result in self.pods.items():
            if promql == pod_count_query(self.engine, Selector(NS, MODEL, revision)):  # type: ignore[arg-type]
                return result
        for revision, result in self.values.items():
            if promql == signal_query(self.engine, self.metric, Selector(NS, MODEL, revision)):  # type: ignore[arg-type]
                return result
        return QueryResult.no_data()


def v(x: float) -> QueryResult:
    return QueryResult.of(x)


def read(provider: FakeProvider, revisions: list[str]) -> Signals | None:
    return read_signals(provider, provider.engine, NS, MODEL, revisions, provider.metric, NOW)


@pytest.mark.parametrize(
    ("engine", "metric", "pods", "values", "want_value", "want_ready"),
    [
        # queueDepth: per-pod mean x pods, summed over revisions
        ("vllm", "queueDepth", {"a": v(2)}, {"a": v(3.5)}, 7.0, 2),
        ("vllm", "queueDepth", {"a": v(3), "b": v(1)}, {"a": v(2), "b": v(6)}, 12.0, 4),
        ("tensorrt-llm", "queueDepth", {"a": v(2)}, {"a": v(1)}, 2.0, 2),
        ("onnxruntime", "queueDepth", {"a": v(4)}, {"a": v(0.5)}, 2.0, 4),
        # kvCacheUtilization: mean weighted by pods
        ("vllm", "kvCacheUtilization", {"a": v(3), "b": v(1)}, {"a": v(0.8), "b": v(0.4)}, 0.7, 4),
        ("tensorrt-llm", "kvCacheUtilization", {"a": v(2)}, {"a": v(0.5)}, 0.5, 2),
        # requestsPerSecond: already a sum per revision
        ("vllm", "requestsPerSecond", {"a": v(3), "b": v(1)}, {"a": v(9), "b": v(1.5)}, 10.5, 4),
        ("onnxruntime", "requestsPerSecond", {"a": v(2)}, {"a": v(4)}, 4.0, 2),
        # no finished request yet: the counters do not exist, which is 0 requests/s
        ("vllm", "requestsPerSecond", {"a": v(2)}, {}, 0.0, 2),
        # a revision scaled to zero reports nothing and carries no load
        ("vllm", "queueDepth", {"a": v(2)}, {"a": v(1), "gone": v(99)}, 2.0, 2),
    ],
)
def test_combines_revisions(
    engine: str,
    metric: str,
    pods: dict[str, QueryResult],
    values: dict[str, QueryResult],
    want_value: float,
    want_ready: int,
) -> None:
    revisions = list(dict.fromkeys([*pods, *values]))
    signals = read(FakeProvider(engine, metric, pods, values), revisions)
    assert signals is not None
    assert signals.value == pytest.approx(want_value)
    assert (signals.ready_replicas, signals.measured_at, signals.message) == (want_ready, NOW, "")


@pytest.mark.parametrize(
    ("pods", "values", "why"),
    [
        ({}, {}, "no pod of revisions a, b reports metrics"),
        ({"a": QueryResult.error("Prometheus at http://p is unreachable")}, {}, "unreachable"),
        ({"a": v(2), "b": v(1)}, {"a": v(1), "b": QueryResult.error("bad query")}, "revision b: bad query"),
        ({"a": v(2)}, {}, "2 pods of revision a report no queueDepth"),
    ],
)
def test_no_data_says_why(pods: dict[str, QueryResult], values: dict[str, QueryResult], why: str) -> None:
    """A partial reading would look like less load, so any failure is no data for the Model."""
    signals = read(FakeProvider("vllm", "queueDepth", pods, values), ["a", "b"])
    assert signals is not None
    assert signals.value is None
    assert why in signals.message


def test_no_revisions_is_nothing_to_measure() -> None:
    provider = FakeProvider("vllm", "queueDepth")
    assert read(provider, []) is None
    assert provider.asked == []


def test_revision_listed_twice_counts_once() -> None:
    signals = read(FakeProvider("vllm", "queueDepth", {"a": v(2)}, {"a": v(3)}), ["a", "a"])
    assert signals is not None
    assert (signals.value, signals.ready_replicas) == (6.0, 2)


def test_queries_select_namespace_model_and_revision() -> None:
    provider = FakeProvider("vllm", "kvCacheUtilization", {"r1": v(1)}, {"r1": v(0.3)})
    read(provider, ["r1"])
    assert provider.asked == [
        'count(sum by (pod) (vllm:num_requests_waiting{namespace="team-a", llmops_model="llama", '
        'llmops_revision="r1"}))',
        'avg(max by (pod) (vllm:kv_cache_usage_perc{namespace="team-a", llmops_model="llama", '
        'llmops_revision="r1"}) or max by (pod) (vllm:gpu_cache_usage_perc{namespace="team-a", '
        'llmops_model="llama", llmops_revision="r1"}))',
    ]


@pytest.mark.parametrize(
    ("engine", "metric", "supported"),
    [
        ("vllm", "kvCacheUtilization", True),
        ("tensorrt-llm", "requestsPerSecond", True),
        ("onnxruntime", "queueDepth", True),
        ("onnxruntime", "kvCacheUtilization", False),
        ("vllm", "tokensPerSecond", False),
    ],
)
def test_unsupported_signal(engine: str, metric: str, supported: bool) -> None:
    problem = unsupported_signal(engine, metric)
    assert (problem is None) == supported
    if not supported:
        assert metric in problem  # type: ignore[operator]
        with pytest.raises(UnsupportedSignalError, match=metric):
            read(FakeProvider(engine, metric), ["a"])


@given(
    st.sampled_from(["queueDepth", "kvCacheUtilization", "requestsPerSecond"]),
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.tuples(st.integers(0, 20), st.floats(0, 1)),
        min_size=1,
    ),
)
def test_value_is_consistent_with_pods(metric: str, revisions: dict[str, tuple[int, float]]) -> None:
    """Ready pods are the pods that report; the kv mean stays within its per-revision range."""
    pods = {r: v(n) for r, (n, _) in revisions.items()}
    values = {r: v(x) for r, (_, x) in revisions.items()}
    signals = read(FakeProvider("vllm", metric, pods, values), list(revisions))
    assert signals is not None
    reporting = {r: x for r, (n, x) in revisions.items() if n > 0}
    assert signals.ready_replicas == sum(n for n, _ in revisions.values())
    if not reporting:
        assert signals.value is None
    elif metric == "kvCacheUtilization":
        assert min(reporting.values()) - 1e-9 <= signals.value <= max(reporting.values()) + 1e-9  # type: ignore[operator]
    else:
        assert signals.value == pytest.approx(
            sum(x * (n if metric == "queueDepth" else 1) for n, x in revisions.values() if n > 0)
        )
