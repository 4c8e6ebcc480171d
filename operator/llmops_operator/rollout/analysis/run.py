"""Take one round of measurements through a provider (the only analysis code that does I/O,
and only through the injected `MetricProvider`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from llmops_operator.api.rollout import AnalysisSpec, Measurement, MetricSpec
from llmops_operator.rollout.analysis.assess import (
    measure,
    needs_stable,
    served,
    thresholds_text,
    traffic_gate,
)
from llmops_operator.rollout.analysis.builtins import (
    DEFAULT_WINDOW,
    FEEDBACK_METRIC,
    VOTE_COUNTED,
    CostRates,
    Engine,
    Selector,
    metric_query,
    request_count_query,
)
from llmops_operator.rollout.analysis.provider import MetricProvider, QueryResult


def take_measurements(
    spec: AnalysisSpec,
    metric_names: Iterable[str],
    provider: MetricProvider,
    engine: Engine,
    namespace: str,
    model: str,
    canary_revision: str,
    stable_revision: str | None,
    now: datetime,
    cost: CostRates | None = None,
) -> list[Measurement]:
    """Measure the named metrics for the canary (and the stable revision for ratio thresholds).

    A query that cannot even be built (unsupported builtin, bad placeholder) is an Error
    measurement with the reason, so the rollout holds and the condition says what to fix.
    Builtins that stand on requests are first checked for traffic (`spec.minRequests`): too
    few requests is Inconclusive and the metric itself is not queried. Feedback counts votes,
    and no votes at all is Inconclusive whatever `onNoData` says: an application that exports
    no feedback says nothing about the canary. `cost` is what each revision spends per hour,
    for the cost builtins.
    """
    wanted = set(metric_names)
    out: list[Measurement] = []
    for metric in spec.metrics:
        if metric.name not in wanted:
            continue
        with_stable = needs_stable(metric) and stable_revision is not None
        try:
            canary_q = metric_query(metric, engine, namespace, model, canary_revision, stable_revision, cost)
            stable_q = (
                metric_query(metric, engine, namespace, model, stable_revision, stable_revision, cost)
                if with_stable and stable_revision
                else None
            )
            canary_count_q = _count_query(spec, metric, engine, namespace, model, canary_revision)
            stable_count_q = (
                _count_query(spec, metric, engine, namespace, model, stable_revision)
                if with_stable and stable_revision
                else None
            )
        except ValueError as err:
            out.append(
                Measurement(
                    metric=metric.name,
                    phase="Error",
                    threshold=thresholds_text(metric),
                    measured_at=now,
                    message=f"{metric.name}: cannot build the query: {err}",
                )
            )
            continue
        if canary_count_q is not None:
            canary_count = provider.query(canary_count_q)
            stable_count = provider.query(stable_count_q) if stable_count_q is not None else None
            if metric.builtin in VOTE_COUNTED:
                gated = _vote_gate(metric, spec.min_requests, canary_count, stable_count, now)
            else:
                gated = traffic_gate(
                    metric, spec.min_requests, canary_count, stable_count, spec.on_no_data, now
                )
            if gated is not None:
                out.append(gated)
                continue
        canary = provider.query(canary_q)
        stable: QueryResult | None = None
        if stable_q is not None:
            stable = provider.query(stable_q)
        out.append(measure(metric, canary, stable, spec.on_no_data, now))
    return out


def _vote_gate(
    metric: MetricSpec,
    min_votes: int,
    canary_count: QueryResult,
    stable_count: QueryResult | None,
    now: datetime,
) -> Measurement | None:
    """Like `traffic_gate`, counting feedback votes: too few (none included) is Inconclusive,
    never Failed, since votes that never come say nothing about the canary."""
    window = metric.window or DEFAULT_WINDOW
    for side, count in (("canary", canary_count), ("stable revision", stable_count)):
        if count is None:
            continue
        if count.kind == "error":
            phase, message = "Error", f"{side} vote count query error: {count.message}"
        elif served(count) < max(min_votes, 1):
            phase = "Inconclusive"
            message = (
                f"too few feedback votes: {side} received {served(count)} in {window} (minRequests "
                f"{min_votes} counts votes); does the application export {FEEDBACK_METRIC}?"
            )
        else:
            continue
        return Measurement(
            metric=metric.name,
            phase=phase,  # type: ignore[arg-type]
            threshold=thresholds_text(metric),
            measured_at=now,
            message=f"{metric.name}: {message}",
        )
    return None


def _count_query(
    spec: AnalysisSpec, metric: MetricSpec, engine: Engine, namespace: str, model: str, revision: str
) -> str | None:
    """The request-count query gating `metric`, or None when it is not gated."""
    if metric.builtin is None or (spec.min_requests <= 0 and metric.builtin not in VOTE_COUNTED):
        return None  # votes are always counted: no votes is never judged
    window = metric.window or DEFAULT_WINDOW
    return request_count_query(engine, metric.builtin, Selector(namespace, model, revision), window)
