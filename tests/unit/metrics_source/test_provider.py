"""The Prometheus provider against a real HTTP server on loopback, and result parsing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from llmops_operator.metrics_source.provider import (
    MetricProvider,
    PrometheusProvider,
    QueryResult,
    parse_result,
    redact_url,
)

# query -> (HTTP status, body)
ANSWERS: dict[str, tuple[int, dict]] = {
    "one": (
        200,
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]},
        },
    ),
    "empty": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "nan": (
        200,
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]},
        },
    ),
    "two": (
        200,
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"a": "1"}, "value": [1, "1"]},
                    {"metric": {"a": "2"}, "value": [1, "2"]},
                ],
            },
        },
    ),
    "scalar": (200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}),
    "bad(": (
        400,
        {"status": "error", "errorType": "bad_data", "error": "parse error: unclosed left parenthesis"},
    ),
}


class FakePrometheus(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query).get("query", [""])[0]
        code, body = ANSWERS.get(query, (500, {"status": "error", "error": "unknown"}))
        if url.path != "/api/v1/query":
            code, body = 404, {}
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("query", "kind", "value", "message"),
    [
        ("one", "value", 0.25, ""),
        ("empty", "no_data", None, "no data"),
        ("nan", "no_data", None, "nan"),
        ("scalar", "value", 3.0, ""),
        ("two", "error", None, "2 series"),
        ("bad(", "error", None, "bad query"),
    ],
)
def test_prometheus_provider_over_http(
    prometheus: str, query: str, kind: str, value: float | None, message: str
) -> None:
    provider: MetricProvider = PrometheusProvider(prometheus, timeout_seconds=5, retries=0)
    result = provider.query(query)
    assert result.kind == kind and result.value == value and message in result.message


def test_unreachable_prometheus_is_an_error_never_a_value() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = PrometheusProvider(f"http://user:secret@127.0.0.1:{port}", timeout_seconds=2, retries=0)
    result = provider.query("up")
    assert result.kind == "error" and "unreachable" in result.message
    assert "secret" not in result.message


def test_parse_result_rejects_garbage() -> None:
    assert parse_result({"weird": 1}).kind == "error"
    assert parse_result([{"metric": {}, "value": [1, "abc"]}]).kind == "error"
    assert parse_result([{"metric": {}}]).kind == "error"
    assert parse_result([{"metric": {}, "value": [1, "+Inf"]}]).kind == "no_data"


def test_redact_url() -> None:
    assert redact_url("https://u:p@prom:9090/x") == "https://***@prom:9090/x"
    assert redact_url("http://prom:9090") == "http://prom:9090"


def test_query_result_of_nan_is_no_data() -> None:
    assert QueryResult.of(float("nan")).kind == "no_data"
    assert QueryResult.of(0.0) == QueryResult("value", 0.0)


class FakeProvider:
    """Answers by substring of the query; records what was asked."""

    def __init__(self, answers: dict[str, QueryResult]) -> None:
        self.answers, self.asked = answers, []

    def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        for key, result in self.answers.items():
            if key in promql:
                return result
        return QueryResult.no_data()


def test_take_measurements_queries_canary_and_stable_for_ratios_only() -> None:
    from datetime import UTC, datetime

    from llmops_operator.api.analysis import AnalysisSpec
    from llmops_operator.rollout.analysis.run import take_measurements

    spec = AnalysisSpec.model_validate(
        {
            "metrics": [
                {"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2},
                {"name": "errors", "builtin": "errorRate", "max": 0.01},
                {"name": "itl", "builtin": "interTokenLatencyP95", "max": 0.1},
            ],
            "minRequests": 0,
            "mode": "threshold",
        }
    )
    provider = FakeProvider(
        {
            'llmops_revision="new"}[2m])))': QueryResult.of(0.3),
            'llmops_revision="old"}[2m])))': QueryResult.of(0.1),
        }
    )
    now = datetime(2025, 1, 1, tzinfo=UTC)
    out = take_measurements(spec, ["ttft", "errors"], provider, "vllm", "ns", "m", "new", "old", now)
    assert [(m.metric, m.phase) for m in out] == [("ttft", "Failed"), ("errors", "Inconclusive")]
    assert "3x stable 0.1" in out[0].message
    assert len(provider.asked) == 3  # ttft canary + stable, errors canary only
    onnx = take_measurements(spec, ["ttft"], provider, "onnxruntime", "ns", "m", "new", "old", now)
    assert onnx[0].phase == "Error" and "not available for engine onnxruntime" in onnx[0].message


def test_reachability_is_reported_after_each_query(prometheus: str) -> None:
    """A rejected query still reached Prometheus (llmops_prometheus_up stays 1); a refused
    connection did not."""
    heard: list[bool] = []
    PrometheusProvider(prometheus, timeout_seconds=5, retries=0, reachable=heard.append).query("bad(")
    PrometheusProvider(prometheus, timeout_seconds=5, retries=0, reachable=heard.append).query("one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    PrometheusProvider(
        f"http://127.0.0.1:{port}", timeout_seconds=2, retries=0, reachable=heard.append
    ).query("up")
    assert heard == [True, True, False]
