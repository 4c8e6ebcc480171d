"""Builtin analysis metrics as PromQL, per engine, from the engines' real metric names.

Every query selects one revision through the target labels `namespace`, `llmops_model` and
`llmops_revision`. Prometheus gets them from the pods' labels with this relabeling (the dev
cluster's metrics emitter already emits them)::

    - source_labels: [__meta_kubernetes_namespace]
      target_label: namespace
    - source_labels: [__meta_kubernetes_pod_name]
      target_label: pod
    - source_labels: [__meta_kubernetes_pod_label_llmops_dev_model]
      target_label: llmops_model
    - source_labels: [__meta_kubernetes_pod_label_llmops_dev_revision]
      target_label: llmops_revision

Choices (see docs/rollouts.md):

* vLLM errorRate is the share of HTTP 5xx answers on the OpenAI routes (`/v1/...`) from
  `http_requests_total`. `vllm:request_success_total{finished_reason="abort"}` is not counted:
  an abort is mostly a client that went away, which says nothing about the revision.
* Where an engine renamed a metric, the current and the previous name are joined with `or`
  (the current name wins where both exist).
* Every ratio is written so that no traffic gives 0/0 = NaN, i.e. "no data", never 0 errors.
* `request_count_query` says how many requests a builtin's value stands on (finished
  requests for latencies, the error rate's denominator for errorRate), so that a p95 of a
  handful of requests is Inconclusive (`minRequests`), never judged.
* A builtin the engine does not expose is reported by `unsupported_builtins` (a clear
  validation error), never silently measured as "no data".
* Cost builtins (`COST_BUILTINS`) combine the engine's token counters with what each serving
  revision spends per hour (price per GPU-hour x GPUs x ready replicas, from the operator's
  price table); without a price the spend is in GPU-hours, which ratio thresholds compare the
  same way. `costPerRequest` prices a revision's output tokens per request at the Model's
  current cost per output token, so answers twice as long cost twice as much even though
  the same GPUs serve them.
* `feedbackPositiveRate` reads the application's counter `llmops_feedback_total{vote}`, on
  the same target labels; too few votes (`minRequests` counts votes) is Inconclusive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from llmops_operator.api.analysis import BuiltinMetric, MetricSpec
from llmops_operator.api.durations import DURATION_PATTERN

Engine = Literal["vllm", "tensorrt-llm", "onnxruntime"]
ALL_ENGINES: tuple[Engine, ...] = ("vllm", "tensorrt-llm", "onnxruntime")
Signal = Literal["queueDepth", "kvCacheUtilization", "requestsPerSecond"]
DEFAULT_WINDOW = "2m"
PLACEHOLDERS = ("revision", "stableRevision", "namespace", "model", "window")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_LABEL_SAFE = re.compile(r"^[A-Za-z0-9._-]*$")


class QueryTemplateError(ValueError):
    """A custom query that cannot be rendered (unknown placeholder, missing or unsafe value)."""


@dataclass(frozen=True)
class Selector:
    """Which series belong to one revision of one model."""

    namespace: str
    model: str
    revision: str

    def labels(self) -> str:
        """The label matchers, without braces."""
        return (
            f'namespace="{_escape(self.namespace)}", llmops_model="{_escape(self.model)}", '
            f'llmops_revision="{_escape(self.revision)}"'
        )


@dataclass(frozen=True)
class CostRates:
    """What each serving revision of the Model spends per hour, for the cost builtins."""

    spend_per_hour: Mapping[str, float] = field(default_factory=dict)
    """Revision -> price x GPUs x ready replicas (GPU-hours per hour when unpriced)."""
    priced: bool = False
    """Whether the spend is money (every revision had a price) or GPU-hours."""

    def of(self, revision: str) -> float:
        return float(self.spend_per_hour.get(revision, 0.0))

    @property
    def total(self) -> float:
        return float(sum(self.spend_per_hour.values()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _p95(*histograms: str) -> Callable[[str, str], str]:
    """p95 over one histogram, or over the first of several names that exist (renamed metrics)."""

    def build(sel: str, window: str) -> str:
        rates = " or ".join(f"rate({name}_bucket{{{sel}}}[{window}])" for name in histograms)
        return f"histogram_quantile(0.95, sum by (le) ({rates}))"

    return build


def _share(bad: str, total: str) -> str:
    """bad / total where a missing bad series means 0 and no traffic means no data (NaN)."""
    return f"({bad} or vector(0)) / {total}"


def _vllm_routes(sel: str) -> str:
    """The OpenAI API routes, where users' requests are answered (not /health, /metrics)."""
    return f'{sel}, handler=~"/v1/.*"'


def _vllm_error_rate(sel: str, window: str) -> str:
    routes = _vllm_routes(sel)
    bad = f'sum(rate(http_requests_total{{{routes}, status="5xx"}}[{window}]))'
    total = f"sum(rate(http_requests_total{{{routes}}}[{window}]))"
    return _share(bad, total)


def _triton_error_rate(sel: str, window: str) -> str:
    failed = f"sum(rate(nv_inference_request_failure{{{sel}}}[{window}]))"
    ok = f"sum(rate(nv_inference_request_success{{{sel}}}[{window}]))"
    return _share(failed, f"({ok} + ({failed} or vector(0)))")


def _per_pod_avg(*gauges: str, agg: str = "sum") -> Callable[[str, str], str]:
    """Average over the revision's pods of a per-pod gauge (summed over engines in one pod)."""

    def build(sel: str, window: str) -> str:
        series = " or ".join(f"{agg} by (pod) ({name}{{{sel}}})" for name in gauges)
        return f"avg({series})"

    return build


def _rate_sum(*counters: str) -> Callable[[str, str], str]:
    def build(sel: str, window: str) -> str:
        return " + ".join(f"sum(rate({name}{{{sel}}}[{window}]))" for name in counters)

    return build


FEEDBACK_METRIC = "llmops_feedback_total"
"""The application's thumbs up/down counter: labels `vote` (up|down) plus the target labels."""


def _feedback_positive_rate(sel: str, window: str) -> str:
    up = f'sum(rate({FEEDBACK_METRIC}{{{sel}, vote="up"}}[{window}]))'
    return _share(up, f"sum(rate({FEEDBACK_METRIC}{{{sel}}}[{window}]))")


def _votes(sel: str, window: str) -> str:
    return f"sum(increase({FEEDBACK_METRIC}{{{sel}}}[{window}]))"


QueryBuilder = Callable[[str, str], str]

# builtin -> engine -> builder(selector, window). Missing entries are unsupported.
BUILTINS: dict[str, dict[Engine, QueryBuilder]] = {
    "errorRate": {
        "vllm": _vllm_error_rate,
        "onnxruntime": _triton_error_rate,
    },
    "timeToFirstTokenP95": {
        "vllm": _p95("vllm:time_to_first_token_seconds"),
        "tensorrt-llm": _p95("trtllm_time_to_first_token_seconds"),
    },
    "e2eLatencyP95": {
        "vllm": _p95("vllm:e2e_request_latency_seconds"),
        "tensorrt-llm": _p95("trtllm_e2e_request_latency_seconds"),
    },
    "interTokenLatencyP95": {
        "vllm": _p95("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    },
    "queueDepth": {
        "vllm": _per_pod_avg("vllm:num_requests_waiting"),
        "tensorrt-llm": _per_pod_avg("trtllm_num_requests_waiting"),
        "onnxruntime": _per_pod_avg("nv_inference_pending_request_count"),
    },
    "feedbackPositiveRate": {engine: _feedback_positive_rate for engine in ALL_ENGINES},
}

# Autoscaling signals (not analysis builtins), same selectors.
SIGNALS: dict[str, dict[Engine, QueryBuilder]] = {
    "queueDepth": BUILTINS["queueDepth"],
    "kvCacheUtilization": {
        "vllm": _per_pod_avg("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", agg="max"),
        "tensorrt-llm": _per_pod_avg("trtllm_kv_cache_utilization", agg="max"),
    },
    "requestsPerSecond": {
        "vllm": _rate_sum("vllm:request_success_total"),
        "tensorrt-llm": _rate_sum("trtllm_request_success_total"),
        "onnxruntime": lambda sel, w: (
            f"sum(rate(nv_inference_request_success{{{sel}}}[{w}])) + "
            f"(sum(rate(nv_inference_request_failure{{{sel}}}[{w}])) or vector(0))"
        ),
    },
}


def _finished(histogram: str) -> QueryBuilder:
    """Requests that finished in the window: the observations of their end-to-end histogram."""

    def build(sel: str, window: str) -> str:
        return f"sum(increase({histogram}_count{{{sel}}}[{window}]))"

    return build


def _vllm_answered(sel: str, window: str) -> str:
    return f"sum(increase(http_requests_total{{{_vllm_routes(sel)}}}[{window}]))"


def _triton_answered(sel: str, window: str) -> str:
    ok = f"sum(increase(nv_inference_request_success{{{sel}}}[{window}]))"
    return f"{ok} + (sum(increase(nv_inference_request_failure{{{sel}}}[{window}])) or vector(0))"


_VLLM_FINISHED = _finished("vllm:e2e_request_latency_seconds")
_TRTLLM_FINISHED = _finished("trtllm_e2e_request_latency_seconds")

CostBuilder = Callable[[Selector, str, CostRates], str]
_VLLM_OUTPUT_TOKENS = "vllm:generation_tokens_total"


def _number(value: float) -> str:
    return f"{value:.12g}"


def _vllm_cost_per_million(selector: Selector, window: str, cost: CostRates) -> str:
    tokens_per_hour = f"(sum(rate({_VLLM_OUTPUT_TOKENS}{{{selector.labels()}}}[{window}])) * 3600)"
    return f"{_number(cost.of(selector.revision))} / {tokens_per_hour} * 1000000"


def _vllm_cost_per_request(selector: Selector, window: str, cost: CostRates) -> str:
    sel = selector.labels()
    model_sel = f'namespace="{_escape(selector.namespace)}", llmops_model="{_escape(selector.model)}"'
    per_request = (
        f"(sum(rate({_VLLM_OUTPUT_TOKENS}{{{sel}}}[{window}])) / "
        f"sum(rate(vllm:request_success_total{{{sel}}}[{window}])))"
    )
    per_token = (
        f"({_number(cost.total)} / (sum(rate({_VLLM_OUTPUT_TOKENS}{{{model_sel}}}[{window}])) * 3600))"
    )
    return f"{per_request} * {per_token}"


# builtin -> engine -> builder(selector, window, spend). Only vLLM exports token counters among
# the engines' documented metrics (docs/monitoring.md).
COST_BUILTINS: dict[str, dict[Engine, CostBuilder]] = {
    "costPerMillionOutputTokens": {"vllm": _vllm_cost_per_million},
    "costPerRequest": {"vllm": _vllm_cost_per_request},
}

# builtin -> engine -> how many requests the builtin's value stands on, over its window.
# Latency builtins count finished requests (a p95 of 5 requests is noise); errorRate counts its
# own denominator, failed requests included, so a canary that fails everything is still judged.
# queueDepth is a gauge that means something at any traffic, so it has no entry (not gated).
REQUEST_COUNTS: dict[str, dict[Engine, QueryBuilder]] = {
    "errorRate": {
        "vllm": _vllm_answered,
        "onnxruntime": _triton_answered,
    },
    "timeToFirstTokenP95": {"vllm": _VLLM_FINISHED, "tensorrt-llm": _TRTLLM_FINISHED},
    "e2eLatencyP95": {"vllm": _VLLM_FINISHED, "tensorrt-llm": _TRTLLM_FINISHED},
    "interTokenLatencyP95": {"vllm": _VLLM_FINISHED},
    "costPerMillionOutputTokens": {"vllm": _VLLM_FINISHED},
    "costPerRequest": {"vllm": _VLLM_FINISHED},
    "feedbackPositiveRate": {engine: _votes for engine in ALL_ENGINES},
}
VOTE_COUNTED = frozenset({"feedbackPositiveRate"})
"""Builtins whose `minRequests` gate counts feedback votes, not requests."""

_WHY_MISSING: dict[tuple[str, str], str] = {
    ("errorRate", "tensorrt-llm"): "trtllm-serve exports no failed-request counter",
    ("timeToFirstTokenP95", "onnxruntime"): "Triton has no time-to-first-token histogram",
    (
        "e2eLatencyP95",
        "onnxruntime",
    ): "Triton exports cumulative durations only, no histogram to take a p95 of",
    ("interTokenLatencyP95", "tensorrt-llm"): "trtllm-serve exports no inter-token latency histogram",
    ("interTokenLatencyP95", "onnxruntime"): "Triton has no inter-token latency metric",
    ("costPerMillionOutputTokens", "tensorrt-llm"): "no documented trtllm-serve token counter",
    ("costPerMillionOutputTokens", "onnxruntime"): "Triton exports no token counters",
    ("costPerRequest", "tensorrt-llm"): "no documented trtllm-serve token counter",
    ("costPerRequest", "onnxruntime"): "Triton exports no token counters",
}


def builtin_query(
    engine: Engine,
    builtin: BuiltinMetric,
    selector: Selector,
    window: str = DEFAULT_WINDOW,
    cost: CostRates | None = None,
) -> str:
    """The PromQL for one builtin metric of one revision. Raises ValueError if unsupported."""
    _check_window(window)
    if builtin in COST_BUILTINS:
        cost_builder = COST_BUILTINS[builtin].get(engine)
        if cost_builder is None:
            raise ValueError(_unsupported_message(engine, builtin))
        if cost is None:
            raise ValueError(f"builtin {builtin} needs what each revision spends; none was given")
        return cost_builder(selector, window, cost)
    builder = BUILTINS.get(builtin, {}).get(engine)
    if builder is None:
        raise ValueError(_unsupported_message(engine, builtin))
    return builder(selector.labels(), window)


def request_count_query(
    engine: Engine, builtin: BuiltinMetric, selector: Selector, window: str = DEFAULT_WINDOW
) -> str | None:
    """PromQL for how many requests one revision served in `window`, as far as `builtin` is
    concerned; None when the builtin is not gated on traffic (queueDepth) or the engine lacks it."""
    _check_window(window)
    builder = REQUEST_COUNTS.get(builtin, {}).get(engine)
    return builder(selector.labels(), window) if builder else None


def signal_query(engine: Engine, signal: Signal, selector: Selector, window: str = "1m") -> str | None:
    """The PromQL for an autoscaling signal, or None when the engine does not export it."""
    _check_window(window)
    builder = SIGNALS.get(signal, {}).get(engine)
    return builder(selector.labels(), window) if builder else None


def _unsupported_message(engine: str, builtin: str) -> str:
    why = _WHY_MISSING.get((builtin, engine), "no such builtin for this engine")
    return f"builtin {builtin} is not available for engine {engine} ({why}); use a custom query instead"


def unsupported_builtins(engine: Engine, metrics: Iterable[MetricSpec]) -> list[str]:
    """One message per metric whose builtin the engine does not have (empty: all fine)."""
    return [
        f"metric {m.name!r}: {_unsupported_message(engine, m.builtin)}"
        for m in metrics
        if m.builtin is not None and engine not in {**BUILTINS, **COST_BUILTINS}.get(m.builtin, {})
    ]


def _check_window(window: str) -> None:
    if not re.fullmatch(DURATION_PATTERN, window):
        raise ValueError(f"invalid window {window!r}: use e.g. 1m, 2m, 30s")


def render_query(template: str, values: Mapping[str, str | None]) -> str:
    """Fill `{{name}}` placeholders. Unknown names, values not given and values that could
    break out of a label matcher are errors, never rendered."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            raise QueryTemplateError(
                f"unknown placeholder {{{{{name}}}}}; known: "
                + ", ".join(f"{{{{{p}}}}}" for p in PLACEHOLDERS)
            )
        value = values.get(name)
        if value is None:
            raise QueryTemplateError(
                f"placeholder {{{{{name}}}}} has no value here (e.g. no stable revision)"
            )
        if not _LABEL_SAFE.fullmatch(value):
            raise QueryTemplateError(f"value {value!r} for {{{{{name}}}}} is not a plain name")
        return value

    rendered = _PLACEHOLDER.sub(fill, template)
    if "{{" in rendered or "}}" in rendered:
        raise QueryTemplateError("unbalanced {{ or }} in query")
    return rendered


def metric_query(
    metric: MetricSpec,
    engine: Engine,
    namespace: str,
    model: str,
    revision: str,
    stable_revision: str | None = None,
    cost: CostRates | None = None,
) -> str:
    """The PromQL measuring `metric` for `revision` (the canary, or the stable for ratios)."""
    window = metric.window or DEFAULT_WINDOW
    if metric.builtin is not None:
        return builtin_query(engine, metric.builtin, Selector(namespace, model, revision), window, cost)
    assert metric.query is not None
    return render_query(
        metric.query,
        {
            "revision": revision,
            "stableRevision": stable_revision,
            "namespace": namespace,
            "model": model,
            "window": window,
        },
    )


# ---------------------------------------------------------------------------------------------
# counts for confidence bounds (AnalysisSpec.mode confidence)
# ---------------------------------------------------------------------------------------------

QUANTILE_BUILTINS: dict[str, tuple[float, dict[Engine, tuple[str, ...]]]] = {
    "timeToFirstTokenP95": (
        0.95,
        {
            "vllm": ("vllm:time_to_first_token_seconds",),
            "tensorrt-llm": ("trtllm_time_to_first_token_seconds",),
        },
    ),
    "e2eLatencyP95": (
        0.95,
        {
            "vllm": ("vllm:e2e_request_latency_seconds",),
            "tensorrt-llm": ("trtllm_e2e_request_latency_seconds",),
        },
    ),
    "interTokenLatencyP95": (
        0.95,
        {"vllm": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")},
    ),
}
"""Latency builtins judged from bucket counts: builtin -> (quantile, engine -> histograms)."""


def _vllm_answers(sel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    routes = _vllm_routes(sel)
    failed = f'http_requests_total{{{routes}, status="5xx"}}'
    return (failed,), (f'http_requests_total{{{routes}, status!="5xx"}}',)


def _triton_answers(sel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (f"nv_inference_request_failure{{{sel}}}",), (f"nv_inference_request_success{{{sel}}}",)


# builtin -> engine -> selector -> (counters of the events, counters of the other requests): the
# raw counters a rate builtin is a share of; mode confidence reads their values, not increase()
# (rollout/analysis/counts.py says why).
RATE_COUNTERS: dict[str, dict[Engine, Callable[[str], tuple[tuple[str, ...], tuple[str, ...]]]]] = {
    "errorRate": {"vllm": _vllm_answers, "onnxruntime": _triton_answers},
}


def rate_counters(
    engine: Engine, builtin: BuiltinMetric, selector: Selector
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Series selectors of (events, other requests) behind a rate builtin; None if not a rate."""
    builder = RATE_COUNTERS.get(builtin, {}).get(engine)
    return builder(selector.labels()) if builder is not None else None


def bucket_counters(engine: Engine, builtin: BuiltinMetric, selector: Selector) -> tuple[str, ...] | None:
    """Series selectors of the `_bucket` counters behind a latency builtin, one per histogram
    name in order of preference (a pod exporting both names is read from the first); None if
    the builtin is not a histogram quantile."""
    entry = QUANTILE_BUILTINS.get(builtin)
    names = entry[1].get(engine) if entry else None
    if not names:
        return None
    return tuple(f"{name}_bucket{{{selector.labels()}}}" for name in names)
