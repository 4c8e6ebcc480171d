"""Take one round of measurements through a provider (the only analysis code that does I/O,
and only through the injected `MetricProvider`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.api.durations import parse_duration
from llmops_operator.api.rollout import Measurement, RolloutStatus
from llmops_operator.metrics_source.builtins import (
    DEFAULT_WINDOW,
    FEEDBACK_METRIC,
    QUANTILE_BUILTINS,
    RATE_COUNTERS,
    VOTE_COUNTED,
    CostRates,
    Engine,
    Selector,
    bucket_counters,
    metric_query,
    rate_counters,
    request_count_query,
)
from llmops_operator.metrics_source.provider import MetricProvider, QueryResult
from llmops_operator.rollout.analysis.assess import (
    measure,
    needs_stable,
    served,
    traffic_gate,
    unjudged,
)
from llmops_operator.rollout.analysis.confidence import (
    Checker,
    Data,
    Rate,
    Window,
    judge,
    quantile_checks,
    rate_checks,
)
from llmops_operator.rollout.analysis.counts import Counter, Increase, counters, increases, window_query
from llmops_operator.rollout.analysis.stats import Buckets


class _QueryError(Exception):
    """A count query failed: the measurement is an Error with this message."""


def look_window(spec: AnalysisSpec, rollout: RolloutStatus | None, metric: str, now: datetime) -> Window:
    """What a look at `metric` judges now: the data since the weight was set (else since the
    step began, else one window back), the metric's recent `window`, the look number."""
    window = next((m.window for m in spec.metrics if m.name == metric and m.window), DEFAULT_WINDOW)
    fallback = now - parse_duration(window)
    if rollout is None:
        return Window(since=fallback, now=now, metrics=len(spec.metrics))
    since = rollout.weight_changed_at or rollout.step_started_at or fallback
    counts = rollout.analysis.counts.get(metric)
    return Window(
        since=min(since, now - timedelta(seconds=1)),
        now=now,
        recent=now - parse_duration(window),
        look=(counts.looks if counts else 0) + 1,
        metrics=len(spec.metrics),
    )


def _range(start: datetime, end: datetime) -> str:
    return f"{max(1, math.ceil((end - start).total_seconds()))}s"


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
    rollout: RolloutStatus | None = None,
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

    In mode confidence, rates and latency builtins are judged from their counts
    (`confidence.judge`) over the window `look_window` derives from `rollout`; queueDepth and
    custom queries carry no counts and are judged as in mode threshold.
    """
    look = _Look(spec, provider, engine, namespace, model, canary_revision, stable_revision, now, cost)
    wanted = set(metric_names)
    out: list[Measurement] = []
    for metric in spec.metrics:
        if metric.name not in wanted:
            continue
        with_stable = needs_stable(metric) and stable_revision is not None
        checker = _checker(spec, metric, engine)
        if checker is None:
            out.append(_point(look, metric, with_stable))
        else:
            window = look_window(spec, rollout, metric.name, now)
            out.append(_judge_counts(look, metric, checker, stable_revision if with_stable else None, window))
    return out


@dataclass(frozen=True)
class _Look:
    """What one round of measurements looks at, shared by every metric of the round."""

    spec: AnalysisSpec
    provider: MetricProvider
    engine: Engine
    namespace: str
    model: str
    canary_revision: str
    stable_revision: str | None
    now: datetime
    cost: CostRates | None


def _point(look: _Look, metric: MetricSpec, with_stable: bool) -> Measurement:
    """One metric judged as a point estimate (mode threshold, or no counts to judge from),
    after its traffic gate."""
    stable_revision = look.stable_revision if with_stable else None

    def query(revision: str) -> str:
        return metric_query(
            metric, look.engine, look.namespace, look.model, revision, look.stable_revision, look.cost
        )

    def count(revision: str) -> str | None:
        return _count_query(look.spec, metric, look.engine, look.namespace, look.model, revision)

    try:
        canary_q = query(look.canary_revision)
        stable_q = query(stable_revision) if stable_revision else None
        canary_count_q = count(look.canary_revision)
        stable_count_q = count(stable_revision) if stable_revision else None
    except ValueError as err:
        return unjudged(metric, "Error", f"cannot build the query: {err}", look.now)
    provider, spec = look.provider, look.spec
    if canary_count_q is not None:
        canary_count = provider.query(canary_count_q)
        stable_count = provider.query(stable_count_q) if stable_count_q is not None else None
        if metric.builtin in VOTE_COUNTED:
            gated = _vote_gate(metric, spec.min_requests, canary_count, stable_count, look.now)
        else:
            gated = traffic_gate(
                metric, spec.min_requests, canary_count, stable_count, spec.on_no_data, look.now
            )
        if gated is not None:
            return gated
    canary = provider.query(canary_q)
    stable = provider.query(stable_q) if stable_q is not None else None
    return measure(metric, canary, stable, spec.on_no_data, look.now)


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
        return unjudged(metric, phase, message, now)
    return None


def _count_query(
    spec: AnalysisSpec, metric: MetricSpec, engine: Engine, namespace: str, model: str, revision: str
) -> str | None:
    """The request-count query gating `metric`, or None when it is not gated."""
    if metric.builtin is None or (spec.min_requests <= 0 and metric.builtin not in VOTE_COUNTED):
        return None  # votes are always counted: no votes is never judged
    window = metric.window or DEFAULT_WINDOW
    return request_count_query(engine, metric.builtin, Selector(namespace, model, revision), window)


def _checker(spec: AnalysisSpec, metric: MetricSpec, engine: Engine) -> Checker | None:
    """How to judge `metric` from counts, or None when it is judged as a point estimate."""
    if spec.mode != "confidence" or metric.builtin is None:
        return None
    if engine in RATE_COUNTERS.get(metric.builtin, {}):
        return rate_checks(metric)
    quantile = QUANTILE_BUILTINS.get(metric.builtin)
    if quantile is not None and engine in quantile[1]:
        return quantile_checks(metric, quantile[0])
    return None


def _judge_counts(
    look: _Look, metric: MetricSpec, checker: Checker, stable_revision: str | None, window: Window
) -> Measurement:
    """Query one metric's counters for both revisions (since the weight change and over the recent
    window) and judge."""
    assert metric.builtin is not None
    builtin = metric.builtin

    def counts(revision: str, start: datetime) -> Rate | Buckets:
        selector = Selector(look.namespace, look.model, revision)
        read = _Reader(look.provider, start, window.now)
        rate = rate_counters(look.engine, builtin, selector)
        if rate is not None:
            events, others = read.increases([*rate[0], *rate[1]], len(rate[0]))
            return Rate(sum(v for _, v in events), sum(v for _, v in events + others))
        selectors = bucket_counters(look.engine, builtin, selector)
        assert selectors is not None
        by_le: dict[float, float] = {}
        for labels, value in read.histogram(selectors):
            le = dict(labels).get("le")
            if le:
                by_le[float(le)] = by_le.get(float(le), 0.0) + value
        return Buckets.from_cumulative(by_le)

    def data(revision: str) -> Data:
        recent = counts(revision, window.recent) if window.has_recent and window.recent else None
        return Data(counts(revision, window.since), recent)

    try:
        canary = data(look.canary_revision)
        stable = data(stable_revision) if stable_revision is not None else None
    except _QueryError as err:
        return unjudged(metric, "Error", f"query error: {err}", window.now, since=window.since)
    label = "p95" if builtin in QUANTILE_BUILTINS else "rate"
    return judge(metric, look.spec, checker, canary, stable, window, label)


@dataclass(frozen=True)
class _Reader:
    """Reads counters over one window [start, end] (`counts.py`: raw values, no increase())."""

    provider: MetricProvider
    start: datetime
    end: datetime

    def counters(self, selector: str) -> list[Counter]:
        span = _range(self.start, self.end)
        at_end = self._series(window_query(selector, span), self.end)
        at_start = self._series(selector, self.start)
        return counters(at_start, at_end)

    def increases(self, selectors: list[str], split: int) -> tuple[list[Increase], list[Increase]]:
        """The increases of the counters of `selectors[:split]` and of the rest, as two lists."""
        groups = increases([self.counters(s) for s in selectors])
        return [x for g in groups[:split] for x in g], [x for g in groups[split:] for x in g]

    def histogram(self, selectors: tuple[str, ...]) -> list[Increase]:
        """The `_bucket` increases, each pod's from the first histogram name it exports."""
        per_name = [self.counters(s) for s in selectors]
        seen: set[tuple[str, ...]] = set()
        chosen: list[list[Counter]] = []
        for found in per_name:
            chosen.append([c for c in found if c.pod not in seen])
            seen |= {c.pod for c in found}
        return [x for group in increases(chosen) for x in group]

    def _series(self, promql: str, at: datetime) -> tuple[tuple[dict[str, str], float], ...]:
        result = self.provider.query_series(promql, at)
        if result.kind == "error":
            raise _QueryError(result.message)
        return result.series
