"""The metrics emitter's exposition, parsed the way Prometheus would read it."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from llmops_sim.emitter import Emitter, Shape, SimPod

TARGET_LABELS = {"namespace", "pod", "llmops_model", "llmops_revision"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, revision: str = "r1", engine: str = "vllm", namespace: str = "ns") -> SimPod:
    return SimPod(namespace=namespace, pod=name, engine=engine, model="llama", revision=revision)


def samples(emitter: Emitter) -> list[tuple[str, dict[str, str], float]]:
    """Every sample as (name, labels, value), after a real parse of the text format.

    prometheus_client's parser appends ``_total`` to counters that lack it (Triton's do); Prometheus
    stores the name as exposed, so map those back to the exposed name.
    """
    text = emitter.render()
    exposed = {line.split("{")[0] for line in text.splitlines() if line and not line.startswith("#")}
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.name if s.name in exposed else s.name.removesuffix("_total")
            assert name in exposed
            out.append((name, dict(s.labels), s.value))
    return out


def value(emitter: Emitter, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for n, lab, v in samples(emitter) if n == name and labels.items() <= lab.items())


def quantile(emitter: Emitter, name: str, q: float, **labels: str) -> float:
    """histogram_quantile as Prometheus computes it (linear inside the bucket), over all time."""
    buckets: dict[float, float] = defaultdict(float)
    for n, lab, v in samples(emitter):
        if n == f"{name}_bucket" and labels.items() <= lab.items():
            buckets[float(lab["le"])] += v
    bounds = sorted(buckets)
    total = buckets[math.inf]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == math.inf:
                return lower_bound
            return lower_bound + (b - lower_bound) * (rank - lower_count) / (buckets[b] - lower_count)
        lower_bound, lower_count = b, buckets[b]
    raise AssertionError("empty histogram")


ENGINE_FAMILIES = [
    (
        "vllm",
        {
            "vllm:num_requests_waiting",
            "vllm:num_requests_running",
            "vllm:gpu_cache_usage_perc",
            "vllm:kv_cache_usage_perc",
            "vllm:time_to_first_token_seconds_bucket",
            "vllm:e2e_request_latency_seconds_bucket",
            "vllm:inter_token_latency_seconds_bucket",
            "vllm:time_per_output_token_seconds_bucket",
            "vllm:request_success_total",
            "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total",
            "http_requests_total",
        },
    ),
    (
        "tensorrt-llm",
        {
            "trtllm_num_requests_running",
            "trtllm_num_requests_waiting",
            "trtllm_kv_cache_utilization",
            "trtllm_time_to_first_token_seconds_bucket",
            "trtllm_e2e_request_latency_seconds_bucket",
            "trtllm_request_success_total",
        },
    ),
    (
        "onnxruntime",
        {
            "nv_inference_request_success",
            "nv_inference_request_failure",
            "nv_inference_count",
            "nv_inference_exec_count",
            "nv_inference_request_duration_us",
            "nv_inference_queue_duration_us",
            "nv_inference_compute_infer_duration_us",
            "nv_inference_pending_request_count",
        },
    ),
]


@pytest.mark.parametrize(("engine", "expected"), ENGINE_FAMILIES)
def test_each_engine_exposes_its_real_metric_names_with_target_labels(
    engine: str, expected: set[str]
) -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p-0", engine=engine)], clock=clock)
    clock.now += 30
    got = samples(emitter)
    names = {n for n, _, _ in got}
    assert expected <= names
    for _, labels, _ in got:
        assert labels.keys() >= TARGET_LABELS
        assert labels["llmops_revision"] == "r1"
        assert labels["namespace"] == "ns"


def test_engine_native_labels() -> None:
    emitter = Emitter(
        [pod("v", engine="vllm"), pod("t", engine="tensorrt-llm"), pod("o", engine="onnxruntime")]
    )
    by_pod = {lab["pod"]: lab for n, lab, _ in samples(emitter) if not n.startswith("http_")}
    assert by_pod["v"]["model_name"] == "llama"
    assert by_pod["t"]["engine_type"] == "trtllm"
    assert (by_pod["o"]["model"], by_pod["o"]["version"]) == ("llama", "1")
    http = [lab for n, lab, _ in samples(emitter) if n == "http_requests_total"]
    assert {lab["status"] for lab in http} == {"2xx", "5xx"}
    assert all(lab["handler"] == "/v1/chat/completions" and lab["method"] == "POST" for lab in http)


def test_counters_follow_the_clock_at_the_shape_rate() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p-0")], clock=clock)
    emitter.set_shape("steady", revision="r1", rps=4.0)
    clock.now += 100
    # Poisson arrivals: 400 expected, standard deviation 20; four of them is the tolerance.
    first = value(emitter, "http_requests_total", status="2xx")
    assert first == pytest.approx(400, abs=80)
    assert value(emitter, "vllm:request_success_total") == pytest.approx(first, abs=1)
    clock.now += 50
    assert value(emitter, "http_requests_total", status="2xx") - first == pytest.approx(200, abs=57)


def test_latency_regression_multiplies_quantiles_of_that_revision_only() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a", revision="r1"), pod("b", revision="r2")], clock=clock)
    clock.now += 600
    name = "vllm:time_to_first_token_seconds"
    before = quantile(emitter, name, 0.95, llmops_revision="r1")
    emitter.set_shape("latency_regression", revision="r1", factor=3.0)
    # A fresh emitter window: only requests after the switch (Prometheus' rate() does the same).
    emitter.set_pods([])
    emitter.set_pods([pod("a", revision="r1"), pod("b", revision="r2")])
    clock.now += 600
    after = quantile(emitter, name, 0.95, llmops_revision="r1")
    other = quantile(emitter, name, 0.95, llmops_revision="r2")
    assert after / before == pytest.approx(3.0, rel=0.2)
    assert other == pytest.approx(before, rel=0.05)


def test_error_spike_sends_that_share_to_5xx_and_triton_failures() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("v"), pod("o", engine="onnxruntime")], clock=clock)
    emitter.set_shape("error_spike", revision="r1", rate=0.25)
    clock.now += 200
    ok = value(emitter, "http_requests_total", status="2xx")
    bad = value(emitter, "http_requests_total", status="5xx")
    # 1000 Bernoulli draws: standard deviation 0.014.
    assert bad / (ok + bad) == pytest.approx(0.25, abs=0.055)
    failed = value(emitter, "nv_inference_request_failure", reason="BACKEND")
    succeeded = value(emitter, "nv_inference_request_success")
    assert failed / (failed + succeeded) == pytest.approx(0.25, abs=0.055)


@pytest.mark.parametrize(
    ("direction", "expected_requests"),
    [
        # rps starts at 5 and moves by 0.1/s for 40s: mean 7 (rising) or 3 (falling).
        ("rising", 280),
        ("falling", 120),
    ],
)
def test_load_ramps_the_request_rate(direction: str, expected_requests: int) -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p")], clock=clock)
    emitter.set_shape("load", revision="r1", direction=direction, rate=0.1, rps=5.0)
    clock.now += 40
    got = value(emitter, "http_requests_total", status="2xx")
    assert got == pytest.approx(expected_requests, abs=4 * expected_requests**0.5)  # Poisson


def test_falling_load_stops_at_zero() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p")], clock=clock)
    emitter.set_shape("load", revision="r1", direction="falling", rate=1.0, rps=5.0)
    clock.now += 10
    first = value(emitter, "http_requests_total", status="2xx")
    clock.now += 100
    assert value(emitter, "http_requests_total", status="2xx") == first
    assert value(emitter, "vllm:num_requests_running") == 0


def test_no_data_absent_removes_the_revision_and_frozen_stops_it() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a", revision="r1"), pod("b", revision="r2")], clock=clock)
    clock.now += 10
    emitter.set_shape("no_data", revision="r1")
    revisions = {lab["llmops_revision"] for _, lab, _ in samples(emitter)}
    assert revisions == {"r2"}

    emitter.set_shape("no_data", revision="r1", mode="frozen")
    frozen = value(emitter, "http_requests_total", llmops_revision="r1")
    clock.now += 100
    assert value(emitter, "http_requests_total", llmops_revision="r1") == frozen > 0
    assert value(emitter, "http_requests_total", llmops_revision="r2") > frozen


def test_pod_shape_wins_over_revision_shape() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a"), pod("b")], clock=clock)
    emitter.set_shape("error_spike", revision="r1", rate=1.0)
    emitter.set_shape("steady", pod="b")
    clock.now += 10
    assert value(emitter, "http_requests_total", pod="a", status="2xx") == 0
    assert value(emitter, "http_requests_total", pod="b", status="5xx") == 0


def test_namespace_scoped_shape_leaves_same_revision_name_elsewhere_alone() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a", namespace="one"), pod("a", namespace="two")], clock=clock)
    emitter.set_shape("error_spike", revision="r1", namespace="one", rate=1.0)
    clock.now += 10
    assert value(emitter, "http_requests_total", namespace="one", status="2xx") == 0
    assert value(emitter, "http_requests_total", namespace="two", status="5xx") == 0


def test_token_counters_are_requests_times_tokens_per_request() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p-0")], clock=clock)
    emitter.set_shape("steady", revision="r1", rps=4.0, output_tokens=100.0, prompt_tokens=300.0)
    clock.now += 100
    served = value(emitter, "http_requests_total")  # requests arrive at random (Poisson)
    assert served == pytest.approx(400, rel=0.25)
    assert value(emitter, "vllm:generation_tokens_total") == pytest.approx(served * 100, abs=1)
    assert value(emitter, "vllm:prompt_tokens_total") == pytest.approx(served * 300, abs=1)


def test_token_shift_doubles_output_tokens_per_request_at_flat_latency() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a", revision="r1"), pod("b", revision="r2")], clock=clock)
    emitter.set_shape("token_shift", revision="r2", output_factor=2.0)
    clock.now += 600
    tokens = {r: value(emitter, "vllm:generation_tokens_total", llmops_revision=r) for r in ("r1", "r2")}
    requests = {r: value(emitter, "vllm:request_success_total", llmops_revision=r) for r in ("r1", "r2")}
    per_request = {r: tokens[r] / requests[r] for r in tokens}
    assert per_request["r2"] / per_request["r1"] == pytest.approx(2.0, rel=0.01)
    name = "vllm:e2e_request_latency_seconds"
    r1, r2 = (quantile(emitter, name, 0.95, llmops_revision=r) for r in ("r1", "r2"))
    assert r2 == pytest.approx(r1, rel=0.01)


def test_feedback_counter_only_when_the_application_votes() -> None:
    clock = FakeClock()
    emitter = Emitter([pod("a", revision="r1"), pod("b", revision="r2")], clock=clock)
    emitter.set_shape("steady", revision="r2", feedback_rate=2.0, feedback_positive=0.25)
    clock.now += 100
    assert value(emitter, "llmops_feedback_total", llmops_revision="r2", vote="up") == 50
    assert value(emitter, "llmops_feedback_total", llmops_revision="r2", vote="down") == 150
    assert not [n for n, lab, _ in samples(emitter) if n == "llmops_feedback_total" and lab["pod"] == "a"]


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        ("spiky", {}),
        ("latency_regression", {"factor": 0}),
        ("error_spike", {"rate": 1.5}),
        ("load", {"direction": "sideways"}),
        ("no_data", {"mode": "gone"}),
        ("steady", {"colour": "red"}),
        ("token_shift", {"output_factor": 0}),
        ("steady", {"feedback_positive": 1.5}),
        ("steady", {"feedback_rate": -1}),
    ],
)
def test_bad_shapes_are_rejected(shape: str, params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Shape(shape, params)


def test_set_shape_needs_exactly_one_selector() -> None:
    emitter = Emitter()
    with pytest.raises(ValueError):
        emitter.set_shape("steady")
    with pytest.raises(ValueError):
        emitter.set_shape("steady", revision="r1", pod="p")


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError):
        pod("p", engine="llama.cpp")


def test_http_metrics_and_control() -> None:
    with Emitter([pod("p")]) as emitter:
        with urllib.request.urlopen(emitter.url + "/metrics", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            families = {f.name for f in text_string_to_metric_families(resp.read().decode())}
        assert "vllm:time_to_first_token_seconds" in families

        body = json.dumps({"op": "set_shape", "revision": "r1", "shape": "no_data"}).encode()
        req = urllib.request.Request(emitter.url + "/control", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            state = json.load(resp)
        assert state["shapes"] == [{"revision": "r1", "namespace": None, "shape": "no_data", "params": {}}]
        with urllib.request.urlopen(emitter.url + "/metrics", timeout=5) as resp:
            assert resp.read() == b""

        bad = urllib.request.Request(emitter.url + "/control", data=b'{"op": "explode"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=5)
        assert err.value.code == 400


def test_control_replaces_and_extends_pods() -> None:
    emitter = Emitter()
    emitter.control({"op": "set_pods", "pods": [pod("a").to_dict()]})
    emitter.control({"op": "add_pods", "pods": [pod("b", engine="onnxruntime").to_dict()]})
    assert sorted(p.pod for p in emitter.pods) == ["a", "b"]
    emitter.control({"op": "remove_pods", "namespace": "ns", "pods": ["a"]})
    assert [p.pod for p in emitter.pods] == ["b"]


label_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(namespace=label_text, name=label_text, model=label_text, revision=label_text)
def test_any_label_value_round_trips_through_the_text_format(
    namespace: str, name: str, model: str, revision: str
) -> None:
    emitter = Emitter([SimPod(namespace=namespace, pod=name, engine="vllm", model=model, revision=revision)])
    for _, labels, _ in samples(emitter):
        assert (labels["namespace"], labels["pod"], labels["llmops_model"], labels["llmops_revision"]) == (
            namespace,
            name,
            model,
            revision,
        )


@settings(max_examples=50, deadline=None)
@given(
    shape=st.sampled_from(["steady", "latency_regression", "error_spike", "load", "token_shift"]),
    steps=st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=5),
)
def test_histograms_are_cumulative_and_counters_never_decrease(shape: str, steps: list[float]) -> None:
    clock = FakeClock()
    emitter = Emitter([pod("p")], clock=clock)
    emitter.set_shape(shape, revision="r1")
    previous: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for step in steps:
        clock.now += step
        current = {(n, tuple(sorted(lab.items()))): v for n, lab, v in samples(emitter)}
        buckets = sorted(
            (float(dict(k[1])["le"]), v)
            for k, v in current.items()
            if k[0].endswith("_bucket") and k[0].startswith("vllm:time_to_first")
        )
        counts = [v for _, v in buckets]
        assert counts == sorted(counts)
        assert counts[-1] == value(emitter, "vllm:time_to_first_token_seconds_count")
        for key, v in current.items():
            if key[0].endswith(("_total", "_bucket", "_count", "_sum")) and key in previous:
                assert v >= previous[key]
        previous = current


def test_pending_requests_for_a_model_at_zero_are_the_flow_control_queue() -> None:
    emitter = Emitter([])  # no pods: the Model is at zero
    assert "inference_extension_flow_control_queue_size" not in emitter.render()
    emitter.control({"op": "set_pending", "namespace": "ns", "pool": "chat-aaaaaaaaaa", "requests": 3})
    families = {f.name: f for f in text_string_to_metric_families(emitter.render())}
    [sample] = families["inference_extension_flow_control_queue_size"].samples
    assert sample.labels == {"namespace": "ns", "inference_pool": "chat-aaaaaaaaaa", "priority": "0"}
    assert sample.value == 3
    assert emitter.state()["pending"] == [{"namespace": "ns", "pool": "chat-aaaaaaaaaa", "requests": 3.0}]
    emitter.set_pending("ns", "chat-aaaaaaaaaa", 0)
    assert "inference_extension_flow_control_queue_size" not in emitter.render()
    with pytest.raises(ValueError):
        emitter.set_pending("ns", "p", -1)


def test_noise_is_per_request_poisson_bernoulli_and_long_tailed() -> None:
    """Counts vary like Poisson arrivals, errors like Bernoulli draws, TTFT has a long right tail."""
    windows, errors = [], []
    for seed in range(30):
        clock = FakeClock()
        emitter = Emitter([pod("p")], clock=clock, seed=seed)
        emitter.set_shape("steady", revision="r1", rps=10.0, error_rate=0.1)
        clock.now += 10
        ok = value(emitter, "http_requests_total", status="2xx")
        bad = value(emitter, "http_requests_total", status="5xx")
        windows.append(ok + bad)
        errors.append(bad)
    mean = sum(windows) / len(windows)
    variance = sum((w - mean) ** 2 for w in windows) / (len(windows) - 1)
    assert mean == pytest.approx(100, abs=8)
    assert 40 < variance < 200  # Poisson: variance = mean (a deterministic emitter has 0)
    assert sum(errors) / sum(windows) == pytest.approx(0.1, abs=0.02)
    assert len(set(errors)) > 3
    clock = FakeClock()
    emitter = Emitter([pod("p")], clock=clock)
    emitter.set_shape("steady", revision="r1", rps=50.0)
    clock.now += 200
    name = "vllm:time_to_first_token_seconds"
    p50, p95 = quantile(emitter, name, 0.5), quantile(emitter, name, 0.95)
    assert p95 / p50 == pytest.approx(2.3, rel=0.2)


def test_same_seed_same_counts_other_seed_other_counts() -> None:
    def run(seed: int) -> float:
        clock = FakeClock()
        emitter = Emitter([pod("p")], clock=clock, seed=seed)
        clock.now += 60
        return value(emitter, "vllm:time_to_first_token_seconds_bucket", le="0.1")

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_an_older_render_never_replaces_a_newer_page() -> None:
    """The pre-render thread rendered, a scrape after a change rendered anew and was answered,
    then the pre-render thread offered its (older) page: it must not be served, or Prometheus
    sees some counters go back (a reset of the `le` series that gained in between, only)."""
    clock = FakeClock()
    emitter = Emitter([pod("p")], clock=clock)
    emitter.set_shape("steady", revision="r1", rps=200.0)
    clock.now += 1
    generation = emitter._generation
    older = emitter._fresh_page()  # the pre-render thread's render...
    clock.now += 0.5
    served = emitter.page()  # ...a scrape renders (no page since the change) and is answered...
    emitter._keep(*older, generation=generation)  # ...then the pre-render thread offers its page
    assert emitter.page() == served

    def count(page: bytes) -> float:
        families = text_string_to_metric_families(page.decode())
        by_name = {s.name: s.value for f in families for s in f.samples}
        return by_name["vllm:e2e_request_latency_seconds_count"]

    assert count(served) > count(older[1])
