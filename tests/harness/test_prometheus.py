"""Prometheus scrapes the metrics emitter, and operator-style queries see the emitter's shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from llmops_sim.emitter import Emitter, SimPod

if TYPE_CHECKING:
    from tests.conftest import Prometheus

pytestmark = pytest.mark.cluster

P95_TTFT = (
    "histogram_quantile(0.95, sum by (le) ("
    'rate(vllm:time_to_first_token_seconds_bucket{{namespace="{ns}",llmops_revision="{rev}"}}[10s])))'
)
TTFT_COUNT = (
    'sum(increase(vllm:time_to_first_token_seconds_count{{namespace="{ns}",llmops_revision="{rev}"}}[10s]))'
)
STEADY_P95_BAND = (0.12, 0.25)
"""Where a steady revision's p95 TTFT lands: the true 0.18 s (the emitter's BASE_PARAMS median and
sigma), give or take the interpolation inside its bucket (0.15 to 0.2) and a window's noise."""


def wait_full_window(prometheus: Prometheus, rev: str) -> None:
    """A p95 read from the first scrapes rests on a handful of requests: wait for 200 in the window."""
    prometheus.wait_scalar(TTFT_COUNT.format(ns="canary", rev=rev), lambda v: v >= 200, timeout=40)


def pods(namespace: str) -> list[SimPod]:
    vllm = [
        SimPod(namespace=namespace, pod=f"llama-{rev}-{i}", engine="vllm", model="llama", revision=rev)
        for rev in ("r1", "r2")
        for i in range(2)
    ]
    return [
        *vllm,
        SimPod(namespace=namespace, pod="trt-0", engine="tensorrt-llm", model="llama", revision="r3"),
        SimPod(namespace=namespace, pod="onnx-0", engine="onnxruntime", model="bert", revision="r4"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('count(vllm:num_requests_running{namespace="demo",llmops_revision="r1"})', 2),
        ('count(trtllm_kv_cache_utilization{namespace="demo",llmops_revision="r3",llmops_model="llama"})', 1),
        ('count(nv_inference_request_success{namespace="demo",pod="onnx-0",model="bert",version="1"})', 1),
        ('count(http_requests_total{namespace="demo",llmops_revision="r2",status="2xx"})', 2),
        ('sum(rate(http_requests_total{namespace="demo",llmops_revision="r2"}[5s])) > 0', None),
    ],
)
def test_prometheus_scrapes_every_engine_with_target_labels(
    prometheus: Prometheus, emitter: Emitter, query: str, expected: float | None
) -> None:
    emitter.set_pods(pods("demo"))
    prometheus.wait_scalar(query, lambda v: expected is None or v == expected)


def test_latency_regression_moves_the_p95_of_that_revision_only(
    prometheus: Prometheus, emitter: Emitter
) -> None:
    emitter.set_pods(pods("canary"))
    emitter.set_shape("steady", revision="r1", rps=20.0)
    emitter.set_shape("steady", revision="r2", rps=20.0)
    r1, r2 = (P95_TTFT.format(ns="canary", rev=rev) for rev in ("r1", "r2"))
    wait_full_window(prometheus, "r1")
    wait_full_window(prometheus, "r2")
    baseline = prometheus.wait_scalar(r1, lambda v: 0 < v < 1, timeout=40)
    stable = prometheus.wait_scalar(r2, lambda v: 0 < v < 1, timeout=40)
    # Both revisions are steady: their p95 sits in the buckets around e^(1.645 sigma) x median.
    assert STEADY_P95_BAND[0] < baseline < STEADY_P95_BAND[1]
    assert STEADY_P95_BAND[0] < stable < STEADY_P95_BAND[1]

    emitter.set_shape("latency_regression", revision="r1", factor=4.0, rps=20.0)
    regressed = prometheus.wait_scalar(r1, lambda v: v > 2.5 * baseline, timeout=60)
    assert regressed > 2.5 * baseline
    wait_full_window(prometheus, "r2")
    untouched = prometheus.scalar(r2)
    assert untouched is not None
    assert STEADY_P95_BAND[0] < untouched < STEADY_P95_BAND[1]


def test_no_data_makes_the_revision_disappear(prometheus: Prometheus, emitter: Emitter) -> None:
    emitter.set_pods(pods("gone"))
    query = 'count(vllm:num_requests_running{namespace="gone",llmops_revision="r1"}) or vector(0)'
    prometheus.wait_scalar(query, lambda v: v == 2)
    emitter.set_shape("no_data", revision="r1")
    # Prometheus marks series stale as soon as a scrape no longer has them.
    prometheus.wait_scalar(query, lambda v: v == 0)
