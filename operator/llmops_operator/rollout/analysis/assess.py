"""Pure analysis verdicts: one measurement from query results, one verdict from the counts.

Each outcome has its own limit (Argo Rollouts' `assessMetricStatus`): Failed aborts once a
metric failed more than `failureLimit` times; Inconclusive pauses once a metric was
inconclusive more than `inconclusiveLimit` times; Error aborts only after more than
`consecutiveErrorLimit` errors in a row. A query error never counts as success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.api.rollout import MAX_MEASUREMENTS_PER_METRIC, AnalysisStatus, Measurement, MetricCounts
from llmops_operator.metrics_source.builtins import DEFAULT_WINDOW
from llmops_operator.metrics_source.provider import QueryResult

VerdictPhase = Literal["Successful", "Running", "Inconclusive", "Failed", "Error"]


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def thresholds_text(metric: MetricSpec) -> str:
    """`max 0.01, maxRatioToStable 1.2`: the thresholds as users wrote them."""
    parts = [
        f"{name} {_fmt(value)}"
        for name, value in (
            ("min", metric.min),
            ("max", metric.max),
            ("minRatioToStable", metric.min_ratio_to_stable),
            ("maxRatioToStable", metric.max_ratio_to_stable),
        )
        if value is not None
    ]
    return ", ".join(parts)


def needs_stable(metric: MetricSpec) -> bool:
    """Whether measuring this metric also needs the stable revision's value."""
    return metric.max_ratio_to_stable is not None or metric.min_ratio_to_stable is not None


def measure(
    metric: MetricSpec,
    canary: QueryResult,
    stable: QueryResult | None,
    on_no_data: Literal["Inconclusive", "Failed"],
    now: datetime,
) -> Measurement:
    """Judge one metric from the canary's (and, for ratios, the stable's) query result."""
    threshold = thresholds_text(metric)

    def result(phase: str, message: str, value: float | None = None, stable_value: float | None = None):
        return Measurement(
            metric=metric.name,
            phase=phase,  # type: ignore[arg-type]
            value=value,
            stable_value=stable_value,
            threshold=threshold,
            measured_at=now,
            message=message,
        )

    if canary.kind == "error":
        return result("Error", f"{metric.name}: query error: {canary.message}")
    if canary.kind == "no_data" or canary.value is None:
        return result(on_no_data, f"{metric.name}: no data for the canary ({canary.message or 'no samples'})")
    value = canary.value
    violations: list[str] = []
    if metric.min is not None and value < metric.min:
        violations.append(f"{_fmt(value)} < min {_fmt(metric.min)}")
    if metric.max is not None and value > metric.max:
        violations.append(f"{_fmt(value)} > max {_fmt(metric.max)}")

    stable_value: float | None = None
    if needs_stable(metric):
        if stable is not None and stable.kind == "error":
            return result("Error", f"{metric.name}: stable query error: {stable.message}", value)
        if stable is None or stable.value is None:
            # Without a baseline we cannot compare; that is not the canary's fault.
            why = stable.message if stable else "no stable revision"
            return result("Inconclusive", f"{metric.name}: no stable value to compare with ({why})", value)
        stable_value = stable.value
        ratio = (1.0 if value == 0 else float("inf")) if stable_value == 0 else value / stable_value
        if metric.max_ratio_to_stable is not None and ratio > metric.max_ratio_to_stable:
            violations.append(
                f"{_fmt(value)} is {_fmt(ratio)}x stable {_fmt(stable_value)} > maxRatioToStable "
                f"{_fmt(metric.max_ratio_to_stable)}"
            )
        if metric.min_ratio_to_stable is not None and ratio < metric.min_ratio_to_stable:
            violations.append(
                f"{_fmt(value)} is {_fmt(ratio)}x stable {_fmt(stable_value)} < minRatioToStable "
                f"{_fmt(metric.min_ratio_to_stable)}"
            )
    if violations:
        return result("Failed", f"{metric.name}: " + "; ".join(violations), value, stable_value)
    return result("Successful", f"{metric.name}: {_fmt(value)} within {threshold}", value, stable_value)


def unjudged(
    metric: MetricSpec, phase: str, message: str, now: datetime, since: datetime | None = None
) -> Measurement:
    """A measurement without numbers (a traffic gate, a query that failed): `message` says why,
    after the metric's name."""
    return Measurement(
        metric=metric.name,
        phase=phase,  # type: ignore[arg-type]
        threshold=thresholds_text(metric),
        measured_at=now,
        since=since,
        message=f"{metric.name}: {message}",
    )


def served(count: QueryResult) -> int:
    """Whole requests from a request-count result; no data (no samples yet) is none served."""
    if count.kind != "value" or count.value is None:
        return 0
    # increase() extrapolates to fractions; 19.7 requests are not 20.
    return max(0, math.floor(count.value + 1e-9))


def traffic_gate(
    metric: MetricSpec,
    min_requests: int,
    canary_count: QueryResult,
    stable_count: QueryResult | None,
    on_no_data: Literal["Inconclusive", "Failed"],
    now: datetime,
) -> Measurement | None:
    """The measurement to record instead of judging `metric` when too few requests fed it, or
    None when there was traffic enough (then `measure` judges it).

    Below `min_requests` the canary is Inconclusive: a p95 of a handful of requests is noise,
    and judging it rolls back healthy canaries. A canary that served nothing at all is no data
    (`on_no_data`). A stable revision below the threshold is Inconclusive whatever
    `on_no_data` says: a thin baseline is not the canary's fault. `stable_count` is None when
    no ratio threshold applies. A count that could not be queried is an Error, never a pass.
    """
    if min_requests <= 0:
        return None
    window = metric.window or DEFAULT_WINDOW

    def result(phase: str, message: str) -> Measurement:
        return unjudged(metric, phase, message, now)

    if canary_count.kind == "error":
        return result("Error", f"request count query error: {canary_count.message}")
    canary = served(canary_count)
    if canary == 0:
        return result(on_no_data, f"no data: the canary served no requests in {window}")
    if canary < min_requests:
        return result(
            "Inconclusive",
            f"too little traffic: canary served {canary} requests in {window} (minRequests {min_requests})",
        )
    if stable_count is None:
        return None
    if stable_count.kind == "error":
        return result("Error", f"stable request count query error: {stable_count.message}")
    stable = served(stable_count)
    if stable < min_requests:
        return result(
            "Inconclusive",
            f"too little traffic: stable revision served {stable} requests in {window} "
            f"(minRequests {min_requests}), nothing to compare with",
        )
    return None


def record(status: AnalysisStatus, measurements: list[Measurement], now: datetime) -> AnalysisStatus:
    """A new AnalysisStatus with these measurements appended (bounded) and counted."""
    counts = {name: c.model_copy() for name, c in status.counts.items()}
    kept = list(status.measurements)
    for m in measurements:
        c = counts.setdefault(m.metric, MetricCounts())
        if m.phase == "Error":
            c.error += 1
            c.consecutive_error += 1
        else:
            c.consecutive_error = 0
            c.looks += 1
            if m.since is not None:
                if m.since != c.weight_since:
                    c.weights, c.weight_looks, c.weight_since = c.weights + 1, 0, m.since
                c.weight_looks += 1
            if m.phase == "Successful":
                c.successful += 1
            elif m.phase == "Failed":
                c.failed += 1
            else:
                c.inconclusive += 1
        kept.append(m)
        same = [x for x in kept if x.metric == m.metric]
        if len(same) > MAX_MEASUREMENTS_PER_METRIC:
            drop = same[0]
            kept = [x for x in kept if x is not drop]
    return AnalysisStatus(
        started_at=status.started_at or (now if measurements else None),
        last_measured_at=now if measurements else status.last_measured_at,
        measurements=kept,
        counts=counts,
    )


def latest(status: AnalysisStatus, metric: str) -> Measurement | None:
    """The newest measurement of one metric."""
    for m in reversed(status.measurements):
        if m.metric == metric:
            return m
    return None


@dataclass(frozen=True)
class Verdict:
    """What the analysis says about the canary now.

    Successful: every metric's latest measurement succeeded. Running: no limit crossed, but
    not every metric has a successful latest measurement yet (the rollout holds, never
    promotes on unknown data). Inconclusive: pause. Failed / Error: abort.
    """

    phase: VerdictPhase
    reason: str = ""
    metric: str | None = None

    @property
    def aborts(self) -> bool:
        return self.phase in ("Failed", "Error")


def assess(spec: AnalysisSpec, status: AnalysisStatus, metrics: list[str] | None = None) -> Verdict:
    """The verdict over `metrics` (default: all), checking limits in order Failed, Error,
    Inconclusive (the most serious outcome wins)."""
    names = metrics if metrics is not None else [m.name for m in spec.metrics]
    inconclusive: Verdict | None = None
    for name in names:
        c = status.counts.get(name, MetricCounts())
        if c.failed > spec.failures_allowed:
            failed = _last_of_phase(status, name, "Failed")
            detail = failed.message if failed else f"{name} failed"
            return Verdict(
                "Failed",
                f"{detail} (failed {c.failed} times, failureLimit {spec.failures_allowed})",
                name,
            )
    for name in names:
        c = status.counts.get(name, MetricCounts())
        if c.consecutive_error > spec.consecutive_error_limit:
            last = latest(status, name)
            detail = last.message if last else f"{name}: errors"
            return Verdict(
                "Error",
                f"{detail} ({c.consecutive_error} errors in a row, consecutiveErrorLimit "
                f"{spec.consecutive_error_limit})",
                name,
            )
    for name in names:
        c = status.counts.get(name, MetricCounts())
        if inconclusive is None and c.inconclusive > spec.inconclusive_limit:
            last = _last_of_phase(status, name, "Inconclusive")
            detail = last.message if last else f"{name}: inconclusive"
            inconclusive = Verdict(
                "Inconclusive",
                f"{detail} (inconclusive {c.inconclusive} times, "
                f"inconclusiveLimit {spec.inconclusive_limit})",
                name,
            )
    if inconclusive is not None:
        return inconclusive
    for name in names:
        last = latest(status, name)
        if last is None:
            return Verdict("Running", f"{name}: not measured yet", name)
        if last.phase != "Successful":
            return Verdict("Running", f"{last.message} (holding until it succeeds)", name)
    return Verdict("Successful", "all metrics within thresholds")


def _last_of_phase(status: AnalysisStatus, metric: str, phase: str) -> Measurement | None:
    for m in reversed(status.measurements):
        if m.metric == metric and m.phase == phase:
            return m
    return None


def reset_inconclusive(status: AnalysisStatus) -> AnalysisStatus:
    """Counts after a resume: inconclusive outcomes start again from zero."""
    counts = {name: c.model_copy(update={"inconclusive": 0}) for name, c in status.counts.items()}
    return status.model_copy(update={"counts": counts})
