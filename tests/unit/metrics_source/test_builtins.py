"""Builtin metrics as PromQL per engine, custom query rendering, unsupported builtins."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.analysis import MetricSpec
from llmops_operator.metrics_source.builtins import (
    QueryTemplateError,
    Selector,
    builtin_query,
    metric_query,
    render_query,
    signal_query,
    unsupported_builtins,
)

SEL = Selector(namespace="team-a", model="support", revision="abc123")
LABELS = 'namespace="team-a", llmops_model="support", llmops_revision="abc123"'


@pytest.mark.parametrize(
    ("engine", "builtin", "must_contain"),
    [
        (
            "vllm",
            "errorRate",
            ["http_requests_total{" + LABELS + ', handler=~"/v1/.*", status="5xx"}[2m]', "or vector(0)"],
        ),
        (
            "vllm",
            "timeToFirstTokenP95",
            ["histogram_quantile(0.95", "vllm:time_to_first_token_seconds_bucket{" + LABELS],
        ),
        ("vllm", "e2eLatencyP95", ["vllm:e2e_request_latency_seconds_bucket"]),
        (
            "vllm",
            "interTokenLatencyP95",
            [
                "rate(vllm:inter_token_latency_seconds_bucket",
                " or rate(vllm:time_per_output_token_seconds_bucket",
            ],
        ),
        ("vllm", "queueDepth", ["avg(sum by (pod) (vllm:num_requests_waiting{" + LABELS + "}))"]),
        ("tensorrt-llm", "timeToFirstTokenP95", ["trtllm_time_to_first_token_seconds_bucket"]),
        ("tensorrt-llm", "e2eLatencyP95", ["trtllm_e2e_request_latency_seconds_bucket"]),
        ("tensorrt-llm", "queueDepth", ["trtllm_num_requests_waiting"]),
        ("onnxruntime", "errorRate", ["nv_inference_request_failure{", "nv_inference_request_success{"]),
        ("onnxruntime", "queueDepth", ["nv_inference_pending_request_count"]),
    ],
)
def test_builtin_queries_use_the_engines_real_names_and_select_one_revision(
    engine: str, builtin: str, must_contain: list[str]
) -> None:
    q = builtin_query(engine, builtin, SEL)  # type: ignore[arg-type]
    for part in must_contain:
        assert part in q
    assert q.count("(") == q.count(")") and q.count("{") == q.count("}")
    # every selector in the query is scoped to the revision
    for selector in re.findall(r"\{([^}]*)\}", q):
        assert 'llmops_revision="abc123"' in selector


def test_histograms_aggregate_by_le_over_the_window() -> None:
    q = builtin_query("vllm", "timeToFirstTokenP95", SEL, window="5m")
    assert q == (
        "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{"
        + LABELS
        + "}[5m])))"
    )


@pytest.mark.parametrize(
    ("engine", "builtin", "why"),
    [
        ("onnxruntime", "timeToFirstTokenP95", "Triton has no time-to-first-token histogram"),
        ("onnxruntime", "e2eLatencyP95", "cumulative durations only"),
        ("onnxruntime", "interTokenLatencyP95", "Triton"),
        ("tensorrt-llm", "errorRate", "no failed-request counter"),
        ("tensorrt-llm", "interTokenLatencyP95", "no inter-token latency"),
    ],
)
def test_a_builtin_the_engine_lacks_is_a_clear_error(engine: str, builtin: str, why: str) -> None:
    metric = MetricSpec.model_validate({"name": "lat", "builtin": builtin, "max": 1})
    ok = MetricSpec.model_validate({"name": "q", "builtin": "queueDepth", "max": 1})
    [message] = unsupported_builtins(engine, [metric, ok])  # type: ignore[arg-type]
    assert message.startswith("metric 'lat': builtin " + builtin) and engine in message and why in message
    assert "custom query" in message
    with pytest.raises(ValueError, match=why):
        builtin_query(engine, builtin, SEL)  # type: ignore[arg-type]


def test_vllm_supports_every_builtin() -> None:
    metrics = [
        MetricSpec.model_validate({"name": b, "builtin": b, "max": 1})
        for b in ("errorRate", "timeToFirstTokenP95", "e2eLatencyP95", "interTokenLatencyP95", "queueDepth")
    ]
    assert unsupported_builtins("vllm", metrics) == []


def test_signals_for_the_autoscaler() -> None:
    kv = signal_query("vllm", "kvCacheUtilization", SEL)
    assert kv is not None and "vllm:kv_cache_usage_perc" in kv and "vllm:gpu_cache_usage_perc" in kv
    assert signal_query("onnxruntime", "kvCacheUtilization", SEL) is None
    rps = signal_query("onnxruntime", "requestsPerSecond", SEL)
    assert rps is not None and "nv_inference_request_success" in rps


def test_custom_query_placeholders() -> None:
    metric = MetricSpec.model_validate(
        {
            "name": "c",
            "query": 'sum(rate(x{llmops_revision="{{revision}}", namespace="{{ namespace }}"}[{{window}}]))'
            ' / sum(rate(x{llmops_revision="{{stableRevision}}"}[{{window}}]))',
            "max": 2,
            "window": "5m",
        }
    )
    q = metric_query(metric, "vllm", "team-a", "support", "new1", "old1")
    assert q == (
        'sum(rate(x{llmops_revision="new1", namespace="team-a"}[5m]))'
        ' / sum(rate(x{llmops_revision="old1"}[5m]))'
    )


@pytest.mark.parametrize(
    ("template", "values", "message"),
    [
        ("x{{rev}}", {"revision": "a"}, "unknown placeholder {{rev}}"),
        ("x{{revision}}", {"revision": None}, "has no value here"),
        ("x{{stableRevision}}", {}, "has no value here"),
        ("x{{revision}}", {"revision": 'a"} or up{x="'}, "is not a plain name"),
        ("x{{revision}", {"revision": "a"}, "unbalanced"),
    ],
)
def test_bad_custom_queries_are_rejected(template: str, values: dict, message: str) -> None:
    with pytest.raises(QueryTemplateError, match=re.escape(message)):
        render_query(template, values)


@given(st.text(max_size=20))
def test_rendering_never_lets_a_value_break_out_of_a_label(value: str) -> None:
    try:
        out = render_query('up{r="{{revision}}"}', {"revision": value})
    except QueryTemplateError:
        assert not re.fullmatch(r"[A-Za-z0-9._-]*", value)
    else:
        assert out == f'up{{r="{value}"}}' and '"' not in value and "\\" not in value
