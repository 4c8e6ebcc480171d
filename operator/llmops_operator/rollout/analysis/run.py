"""Take one round of measurements through a provider (the only analysis code that does I/O,
and only through the injected `MetricProvider`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from llmops_operator.api.rollout import AnalysisSpec, Measurement, MetricSpec
from llmops_operator.metrics_source.builtins import (
    DEFAULT_WINDOW,
    Engine,
    Selector,
    metric_query,
    request_count_query,
)
from llmops_operator.metrics_source.provider import MetricProvider, QueryResult
from llmops_operator.rollout.analysis.assess import measure, needs_stable, thresholds_text, traffic_gate


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
) -> list[Measurement]:
    """Measure the named metrics for the canary (and the stable revision for ratio thresholds).

    A query that cannot even be built (unsupported builtin, bad placeholder) is an Error
    measurement with the reason, so the rollout holds and the condition says what to fix.
    Builtins that stand on requests are first checked for traffic (`spec.minRequests`): too
    few requests is Inconclusive and the metric itself is not queried.
    """
    wanted = set(metric_names)
    out: list[Measurement] = []
    for metric in spec.metrics:
        if metric.name not in wanted:
            continue
        with_stable = needs_stable(metric) and stable_revision is not None
        try:
            canary_q = metric_query(metric, engine, namespace, model, canary_revision, stable_revision)
            stable_q = (
                metric_query(metric, engine, namespace, model, stable_revision, stable_revision)
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
            gated = traffic_gate(metric, spec.min_requests, canary_count, stable_count, spec.on_no_data, now)
            if gated is not None:
                out.append(gated)
                continue
        canary = provider.query(canary_q)
        stable: QueryResult | None = None
        if stable_q is not None:
            stable = provider.query(stable_q)
        out.append(measure(metric, canary, stable, spec.on_no_data, now))
    return out


def _count_query(
    spec: AnalysisSpec, metric: MetricSpec, engine: Engine, namespace: str, model: str, revision: str
) -> str | None:
    """The request-count query gating `metric`, or None when it is not gated."""
    if spec.min_requests <= 0 or metric.builtin is None:
        return None
    window = metric.window or DEFAULT_WINDOW
    return request_count_query(engine, metric.builtin, Selector(namespace, model, revision), window)
