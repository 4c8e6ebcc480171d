"""Verdicts from confidence bounds (AnalysisSpec.mode confidence): counts in, Measurement out.

A measurement judges the counts since the current weight was set (`Window.since`), so every
request counts once per rollout step however often it is looked at, and evidence adds up at
low traffic. Failed needs a bound past a threshold at the look's share of the false-rollback
budget (`stats.look_alpha`: per weight, then per look at it; split over the metrics); the
metric's recent `window` is tested too (half the share each), so a regression that starts
mid-step is not diluted by the healthy minutes before it. Successful needs the opposite bound
inside every threshold at `confidence`. Anything between is Inconclusive: too little evidence, never a
rollback. Pure: the queries are run by `run.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.api.rollout import Measurement
from llmops_operator.rollout.analysis.assess import needs_stable, thresholds_text
from llmops_operator.rollout.analysis.stats import (
    Buckets,
    clopper_pearson_bounds,
    look_alpha,
    quantile_bounds,
    quantile_ratio,
    rate_ratio_bounds,
)

Side = Literal["max", "min"]
TAIL_MIN = 5
"""Fewest observations above a quantile for its interval to mean anything (the bootstrap of
a p95 of 60 requests rests on three of them)."""


@dataclass(frozen=True)
class Window:
    """The data one look judges: everything since `since`, and the recent window from `recent`."""

    since: datetime
    now: datetime
    recent: datetime | None = None
    look: int = 1
    """This look's number at the current weight (1-based), for the budget."""
    weight: int = 1
    """Which of the rollout's weights this is (1-based), for the budget."""
    plan: tuple[int | None, ...] = (None,)
    """Looks planned at each weight the rollout's steps set (None: no end planned)."""
    metrics: int = 1
    """Metrics sharing the budget."""

    @property
    def has_recent(self) -> bool:
        return self.recent is not None and self.recent > self.since


@dataclass(frozen=True)
class Rate:
    """Events out of total requests (e.g. 5xx answers out of all answers)."""

    events: float
    total: float


@dataclass(frozen=True)
class Data:
    """One revision's counts since the weight change and (optionally) over the recent window."""

    whole: Rate | Buckets
    recent: Rate | Buckets | None = None

    @property
    def samples(self) -> int:
        return samples_of(self.whole)


def samples_of(data: Rate | Buckets) -> int:
    total = data.total
    return max(0, math.floor(total + 1e-9))


@dataclass(frozen=True)
class Check:
    """One threshold and the bounds of what it applies to."""

    name: str
    side: Side
    limit: float
    estimate: float
    lower: float
    upper: float
    value: float | None = None
    """The canary's own value (rate or quantile)."""
    stable_value: float | None = None
    """The stable revision's value, for ratio thresholds."""

    def past(self) -> bool:
        """The bound on the far side is past the limit: evidence of a violation."""
        return self.lower > self.limit if self.side == "max" else self.upper < self.limit

    def inside(self) -> bool:
        """The near bound is inside the limit: evidence of compliance."""
        return self.upper <= self.limit if self.side == "max" else self.lower >= self.limit


Checker = Callable[[Rate | Buckets, Rate | Buckets | None, float], tuple[list[Check], str | None]]
"""(canary, stable, alpha) -> the checks at that alpha, and why the data cannot decide (or None)."""


def _thresholds(metric: MetricSpec) -> list[tuple[str, Side, float, bool]]:
    """(name, side, limit, is a ratio to stable) for every threshold set."""
    out: list[tuple[str, Side, float, bool]] = []
    for name, side, limit, ratio in (
        ("max", "max", metric.max, False),
        ("min", "min", metric.min, False),
        ("maxRatioToStable", "max", metric.max_ratio_to_stable, True),
        ("minRatioToStable", "min", metric.min_ratio_to_stable, True),
    ):
        if limit is not None:
            out.append((name, side, float(limit), ratio))  # type: ignore[arg-type]
    return out


def rate_checks(metric: MetricSpec) -> Checker:
    """Exact (Clopper-Pearson) bounds on the canary's rate, MOVER-R bounds on its ratio to the stable's."""

    def checks(
        canary: Rate | Buckets, stable: Rate | Buckets | None, alpha: float
    ) -> tuple[list[Check], str | None]:
        assert isinstance(canary, Rate)
        out = []
        rate = canary.events / canary.total if canary.total > 0 else 0.0
        lo, hi = clopper_pearson_bounds(canary.events, canary.total, alpha)
        for name, side, limit, ratio in _thresholds(metric):
            if not ratio:
                out.append(Check(name, side, limit, rate, lo, hi, value=rate))
                continue
            assert isinstance(stable, Rate)
            base = stable.events / stable.total if stable.total > 0 else 0.0
            if canary.events <= 0 and stable.events <= 0:  # no events on either side: equal
                out.append(Check(name, side, limit, 1.0, 1.0, 1.0, value=rate, stable_value=base))
                continue
            estimate = rate / base if base > 0 else math.inf
            r_lo, r_hi = rate_ratio_bounds(canary.events, canary.total, stable.events, stable.total, alpha)
            out.append(Check(name, side, limit, estimate, r_lo, r_hi, value=rate, stable_value=base))
        return out, None

    return checks


def quantile_checks(metric: MetricSpec, q: float) -> Checker:
    """Bootstrap bounds on the canary's quantile and on its ratio to the stable's."""

    def checks(
        canary: Rate | Buckets, stable: Rate | Buckets | None, alpha: float
    ) -> tuple[list[Check], str | None]:
        assert isinstance(canary, Buckets)
        out = []
        coarse: str | None = None
        thin = [
            (who, b.total)
            for who, b in (("canary", canary), ("stable revision", stable))
            if isinstance(b, Buckets) and b.total * (1 - q) < TAIL_MIN
        ]
        if thin:
            who, total = thin[0]
            why = (
                f"too few requests for a p{q * 100:g}: the {who} has {total:.0f}, "
                f"fewer than {TAIL_MIN} of them above its p{q * 100:g}"
            )
            return [
                Check(n, side, lim, math.nan, 0.0, math.inf) for n, side, lim, _ in _thresholds(metric)
            ], why
        for name, side, limit, ratio in _thresholds(metric):
            if not ratio:
                estimate, lo, hi = quantile_bounds(canary, q, [alpha])[0]
                out.append(Check(name, side, limit, estimate, lo, hi, value=estimate))
                continue
            assert isinstance(stable, Buckets)
            r = quantile_ratio(canary, stable, q, [alpha], threshold=limit)[0]
            coarse = coarse or r.coarse
            lo, hi = r.lower, r.upper
            if r.coarse:  # interpolation in wide buckets shrinks ratios toward 1: only "past" stands
                lo, hi = (lo, math.inf) if side == "max" else (0.0, hi)
            out.append(Check(name, side, limit, r.estimate, lo, hi, value=r.canary, stable_value=r.stable))
        return out, coarse

    return checks


def judge(
    metric: MetricSpec,
    spec: AnalysisSpec,
    checker: Checker,
    canary: Data,
    stable: Data | None,
    window: Window,
    label: str,
) -> Measurement:
    """The measurement of one metric from the counts (see module doc). `label` names what is
    judged in messages, e.g. `p95` or `rate`."""
    threshold = thresholds_text(metric)
    alpha = 1.0 - spec.confidence
    budget = look_alpha(alpha, window.look, window.weight, window.plan) / max(1, window.metrics)
    recent_alpha = budget / 2 if window.has_recent and canary.recent is not None else None
    fail_alpha = recent_alpha or budget

    def result(phase: str, message: str, check: Check | None = None) -> Measurement:
        return Measurement(
            metric=metric.name,
            phase=phase,  # type: ignore[arg-type]
            threshold=threshold,
            measured_at=window.now,
            since=window.since,
            message=f"{metric.name}: {message}",
            samples=canary.samples,
            stable_samples=stable.samples if stable is not None else None,
            **(_fields(check, spec.confidence) if check is not None else {}),  # type: ignore[arg-type]
        )

    gated = _gate(metric, spec, canary, stable, window)
    if gated is not None:
        return result(*gated)
    stable_whole = stable.whole if stable else None
    shown, coarse = checker(canary.whole, stable_whole, alpha)
    strict, _ = checker(canary.whole, stable_whole, fail_alpha)
    recent: list[Check] = []
    stable_recent = stable.recent if stable is not None else None
    comparable = not needs_stable(metric) or stable_recent is not None
    if recent_alpha is not None and canary.recent is not None and comparable:
        recent, _ = checker(canary.recent, stable_recent, recent_alpha)

    failed = _failure(strict, shown, recent, window, f"{(1 - fail_alpha) * 100:.4g}%")
    check, why = failed if failed is not None else (shown[0], None)
    summary = _summary(metric.name, label, check, spec.confidence, canary, stable)
    if why is not None:
        return result("Failed", f"{summary}: {why}", check)
    if coarse:
        return result("Inconclusive", f"{summary}: Inconclusive ({coarse})", check)
    outside = [c for c in shown if not c.inside()]
    if not outside:
        return result("Successful", f"{summary}: Successful (within {threshold})", check)
    near = outside[0]
    return result(
        "Inconclusive",
        f"{summary}: Inconclusive (too little evidence yet to tell against {near.name} {_num(near.limit)})",
        check,
    )


def _fields(check: Check, confidence: float) -> dict[str, object]:
    """The Measurement's numbers from the check it reports."""
    return {
        "estimate": _finite(check.estimate),
        "lower": _finite(check.lower),
        "upper": _finite(check.upper),
        "confidence": confidence,
        "value": _finite(check.value) if check.value is not None else None,
        "stable_value": _finite(check.stable_value) if check.stable_value is not None else None,
    }


def _failure(
    strict: list[Check], shown: list[Check], recent: list[Check], window: Window, level: str
) -> tuple[Check, str] | None:
    """(the check to report, the Failed text) when a bound is past a threshold: over the whole step
    at the strict level first, then over the recent window (reported with the first shown check)."""
    for whole, check in zip(strict, shown, strict=True):
        if whole.past():
            bound = whole.lower if whole.side == "max" else whole.upper
            return check, (
                f"Failed ({'lower' if whole.side == 'max' else 'upper'} bound {_num(bound)} at "
                f"{level}, look {window.look}, is past {check.name} {_num(check.limit)})"
            )
    for check in recent:
        if check.past():
            bound = check.lower if check.side == "max" else check.upper
            since = (window.now - window.recent).total_seconds() if window.recent else 0.0
            return shown[0], (
                f"Failed (in the last {since:.0f}s: {_num(check.estimate)}, "
                f"{'lower' if check.side == 'max' else 'upper'} bound {_num(bound)} at {level}, "
                f"look {window.look}, is past {check.name} {_num(check.limit)})"
            )
    return None


def _gate(
    metric: MetricSpec, spec: AnalysisSpec, canary: Data, stable: Data | None, window: Window
) -> tuple[str, str] | None:
    """(phase, message) when there is too little traffic to judge at all (minRequests)."""
    seconds = (window.now - window.since).total_seconds()
    if canary.samples == 0:
        return spec.on_no_data, f"no data: the canary served no requests in the last {seconds:.0f}s"
    if canary.samples < spec.min_requests:
        return (
            "Inconclusive",
            f"too little traffic: canary served {canary.samples} requests in {seconds:.0f}s "
            f"(minRequests {spec.min_requests})",
        )
    if needs_stable(metric):
        if stable is None:
            return "Inconclusive", "no stable revision to compare with"
        if stable.samples < max(1, spec.min_requests):
            return (
                "Inconclusive",
                f"too little traffic: stable revision served {stable.samples} requests in {seconds:.0f}s "
                f"(minRequests {spec.min_requests}), nothing to compare with",
            )
    return None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _num(value: float) -> str:
    if math.isnan(value):
        return "?"
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _summary(
    name: str, label: str, check: Check, confidence: float, canary: Data, stable: Data | None
) -> str:
    """`ttft-p95 1.34x stable [1.21, 1.49] at 95%, n=2,140/8,530`."""
    if check.name.endswith("RatioToStable"):
        value = f"{label} {_num(check.estimate)}x stable [{_num(check.lower)}, {_num(check.upper)}]"
    else:
        value = f"{label} {_num(check.estimate)} [{_num(check.lower)}, {_num(check.upper)}]"
    n = f"n={canary.samples:,}" + (f"/{stable.samples:,}" if stable is not None else "")
    return f"{value} at {confidence * 100:.4g}%, {n}"
