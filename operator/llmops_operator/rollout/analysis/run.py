"""Take one round of measurements through a provider (the only analysis code that does I/O,
and only through the injected `MetricProvider`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from llmops_operator.api.rollout import AnalysisSpec, Measurement
from llmops_operator.rollout.analysis.assess import measure, needs_stable, thresholds_text
from llmops_operator.rollout.analysis.builtins import Engine, metric_query
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
) -> list[Measurement]:
    """Measure the named metrics for the canary (and the stable revision for ratio thresholds).

    A query that cannot even be built (unsupported builtin, bad placeholder) is an Error
    measurement with the reason, so the rollout holds and the condition says what to fix.
    """
    wanted = set(metric_names)
    out: list[Measurement] = []
    for metric in spec.metrics:
        if metric.name not in wanted:
            continue
        try:
            canary_q = metric_query(metric, engine, namespace, model, canary_revision, stable_revision)
            stable_q = (
                metric_query(metric, engine, namespace, model, stable_revision, stable_revision)
                if needs_stable(metric) and stable_revision
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
        canary = provider.query(canary_q)
        stable: QueryResult | None = None
        if stable_q is not None:
            stable = provider.query(stable_q)
        out.append(measure(metric, canary, stable, spec.on_no_data, now))
    return out
