"""`spec.rollout.canary.analysis` of a Model: the metrics a canary is judged on and how.

Rules the OpenAPI schema cannot express are CEL rules (enforced by the API server) mirrored by
pydantic validators. The verdicts themselves are in `rollout/analysis/`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.common import ApiModel, cel_rules, require_unique
from llmops_operator.api.durations import bounded_duration, parse_duration

MAX_METRICS = 16
MAX_INTERVAL = "1h"
MAX_WINDOW = "24h"
MAX_LIMIT = 1000
"""Upper bound of every analysis count limit (failures, inconclusives, errors)."""
METRIC_NAME_PATTERN = r"^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"

BuiltinMetric = Literal[
    "errorRate",
    "timeToFirstTokenP95",
    "e2eLatencyP95",
    "interTokenLatencyP95",
    "queueDepth",
    "costPerMillionOutputTokens",
    "costPerRequest",
    "feedbackPositiveRate",
]
AnalysisMode = Literal["confidence", "threshold"]
SERIES_SELECTOR_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([^{}]|\{\{ *[a-zA-Z]+ *\}\})*\})?$"
"""A metric name with optional label matchers whose values may hold `{{placeholders}}`."""
SELECTOR_PLACEHOLDERS = ("revision", "namespace", "model")
_PLACEHOLDER = re.compile(r"\{\{ *([a-zA-Z]+) *\}\}")
_REVISION_CEL = "[{][{] *revision *[}][}]"
IntervalDuration = bounded_duration(MAX_INTERVAL)
WindowDuration = bounded_duration(MAX_WINDOW)


class CounterRatio(ApiModel):
    """A metric that is a ratio of two counters, e.g. refusals out of answers: `events` /
    `total` over the window. In mode confidence it is judged like errorRate, with exact bounds
    on the counts (docs/rollouts.md); `minRequests` counts `total`."""

    model_config = cel_rules(
        (
            f"self.events.matches('{_REVISION_CEL}') && self.total.matches('{_REVISION_CEL}')",
            'events and total must each select one revision: add llmops_revision="{{revision}}"',
        ),
    )

    events: str = Field(min_length=1, max_length=1024, pattern=SERIES_SELECTOR_PATTERN)
    """Series selector of the counters of the events, e.g. `llm_refusals_total{namespace="{{namespace}}",
    llmops_model="{{model}}", llmops_revision="{{revision}}"}`: a counter name and label
    matchers, no functions (the operator reads the counters' values itself). Placeholders:
    `{{revision}}` (required: the revision measured), `{{namespace}}`, `{{model}}`."""
    total: str = Field(min_length=1, max_length=1024, pattern=SERIES_SELECTOR_PATTERN)
    """Series selector of the counters of all requests the events are a share of (events
    included); same form and placeholders as `events`."""

    @field_validator("events", "total")
    @classmethod
    def _selects_one_revision(cls, selector: str) -> str:
        names = _PLACEHOLDER.findall(selector)
        unknown = sorted(set(names) - set(SELECTOR_PLACEHOLDERS))
        if unknown:
            known = ", ".join(f"{{{{{p}}}}}" for p in SELECTOR_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{{{unknown[0]}}}}} in {selector!r}; known: {known}")
        if "revision" not in names:
            hint = 'llmops_revision="{{revision}}"'
            raise ValueError(f"{selector!r} must select one revision: add {hint}")
        return selector


class MetricSpec(ApiModel):
    """One analysis metric: a builtin LLM signal or a custom PromQL query, plus thresholds.

    A measurement is Failed when any set threshold is violated. Ratio thresholds compare the
    canary against the stable revision measured over the same window.
    """

    model_config = cel_rules(
        (
            "[has(self.builtin), has(self.query), has(self.ratio)].filter(x, x).size() == 1",
            "set exactly one of builtin, query or ratio",
        ),
        (
            "has(self.min) || has(self.max) || has(self.maxRatioToStable) || has(self.minRatioToStable)",
            "set at least one threshold: min, max, maxRatioToStable or minRatioToStable",
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=METRIC_NAME_PATTERN)
    """Metric name, unique within the analysis; used in status, Events and conditions."""
    builtin: BuiltinMetric | None = None
    """A builtin LLM signal mapped to the engine's own metric names: errorRate (share of
    failed requests, 0-1), timeToFirstTokenP95, e2eLatencyP95, interTokenLatencyP95
    (seconds), queueDepth (waiting requests per pod), costPerMillionOutputTokens (GPU spend per
    million generated tokens), costPerRequest (output tokens per request times the Model's
    cost per output token) and feedbackPositiveRate (share of thumbs-up votes, 0-1, from the
    application's `llmops_feedback_total`; see docs/monitoring.md)."""
    query: str | None = Field(default=None, min_length=1, max_length=4096)
    """Custom PromQL returning one number. Placeholders: `{{revision}}` (the revision being
    measured), `{{stableRevision}}`, `{{namespace}}`, `{{model}}`, `{{window}}`. Ratio
    thresholds run the query a second time with `{{revision}}` set to the stable revision."""
    ratio: CounterRatio | None = None
    """A ratio of two counters (events out of total), judged with confidence bounds on the
    counts like errorRate; for signals the builtins lack (refusals, tool-call failures, cache
    misses out of lookups)."""
    min: float | None = None
    """Fail when the canary's value is below this."""
    max: float | None = None
    """Fail when the canary's value is above this."""
    max_ratio_to_stable: float | None = Field(default=None, gt=0)
    """Fail when canary / stable is above this (e.g. 1.2 = at most 20% worse)."""
    min_ratio_to_stable: float | None = Field(default=None, gt=0)
    """Fail when canary / stable is below this."""
    window: WindowDuration | None = None
    """Range of the rate()/histogram window for builtins and `{{window}}`. Default: 2m; at most 24h."""

    @model_validator(mode="after")
    def _one_source_and_a_threshold(self) -> MetricSpec:
        if sum(x is not None for x in (self.builtin, self.query, self.ratio)) != 1:
            raise ValueError(f"metric {self.name!r}: set exactly one of builtin, query or ratio")
        if all(t is None for t in (self.min, self.max, self.max_ratio_to_stable, self.min_ratio_to_stable)):
            raise ValueError(
                f"metric {self.name!r}: set at least one threshold: min, max, maxRatioToStable "
                "or minRatioToStable"
            )
        return self


class AnalysisSpec(ApiModel):
    """Metrics judged through the whole canary (background) and at `analysis` steps."""

    model_config = cel_rules(
        (
            "self.metrics.all(m, self.metrics.exists_one(x, x.name == m.name))",
            "metric names must be unique",
        ),
    )

    interval: IntervalDuration = "30s"
    """Time between two measurements of every metric (at most 1h)."""
    failure_limit: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    """Abort when more than this many measurements of one metric Failed. Default: 0 in mode
    confidence (a Failed measurement is already evidence at the rollout's false-rollback
    budget), 1 in mode threshold (one noisy point estimate is forgiven)."""
    inconclusive_limit: int = Field(default=3, ge=0, le=MAX_LIMIT)
    """Pause (condition Inconclusive) when more than this many measurements of one metric were
    Inconclusive. The rollout goes on by itself once a round of measurements succeeds."""
    consecutive_error_limit: int = Field(default=4, ge=0, le=MAX_LIMIT)
    """How many measurements of one metric in a row may be Errors (Prometheus unreachable or
    hung, bad query) before `errorPolicy` applies. Before that, the rollout holds: an error
    never promotes and never rolls back."""
    error_policy: Literal["Pause", "Abort"] = "Pause"
    """What happens past `consecutiveErrorLimit`. Pause: the rollout holds at its step with
    pause condition AnalysisError (the Analysis condition says why, e.g. Prometheus is
    unreachable) and resumes by itself once a round of measurements succeeds, so a monitoring
    outage never rolls back the fleet. Abort: roll the canary back."""
    mode: AnalysisMode = "confidence"
    """confidence (default): judge confidence bounds, so that a verdict holds at any traffic
    level. Failed only when a bound is past a threshold, Successful only when the opposite
    bound is inside, else Inconclusive (too little evidence, never a rollback). Rates and
    latency quantiles are judged on the counts since the current weight was set, and the
    false-rollback probability is bounded over the whole rollout (see docs/rollouts.md).
    threshold: the point estimate over `window` against the thresholds, as before."""
    confidence: float = Field(default=0.95, ge=0.5, le=0.9999)
    """Confidence of the bounds (mode confidence). 1 - confidence bounds the probability that
    a healthy canary is rolled back over the whole rollout, and is the per-look risk of
    calling a canary Successful that is not."""
    on_no_data: Literal["Inconclusive", "Failed"] = "Inconclusive"
    """What a query that returns no data counts as."""
    min_requests: int = Field(default=20, ge=0, le=1_000_000_000)
    """Fewest requests the canary (and, for ratio thresholds, the stable revision) must have
    served in a metric's window for its measurement to count; fewer is Inconclusive (a canary
    that served none at all counts as `onNoData`). Applies to errorRate, the latency builtins
    and `ratio` metrics (counting `total`); queueDepth and custom queries are not gated. 0
    turns the check off."""
    metrics: list[MetricSpec] = Field(default_factory=list, max_length=MAX_METRICS)
    """The metrics. Empty: no background analysis (and no analysis steps allowed)."""

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, metrics: list[MetricSpec]) -> list[MetricSpec]:
        require_unique([m.name for m in metrics], "metric names must be unique, repeated")
        return metrics

    @property
    def failures_allowed(self) -> int:
        """`failureLimit`, or its default for the mode."""
        if self.failure_limit is not None:
            return self.failure_limit
        return 0 if self.mode == "confidence" else 1

    @property
    def interval_delta(self) -> timedelta:
        """The interval as a timedelta."""
        return parse_duration(self.interval)
