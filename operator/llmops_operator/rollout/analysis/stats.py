"""Confidence bounds for canary verdicts: rates, rate ratios, quantile ratios from histogram
buckets, and the per-look error budget. Pure functions, no I/O.

* Rates: exact Clopper-Pearson bounds (Newcombe 1998, method 5) by bisection on the binomial
  distribution (numpy). scipy's `betaincinv` gives the same numbers but adds 113 MB to the
  install and 27 MB to the operator's memory for one function. Wilson score bounds (method 3)
  are kept for reference and tests: they are too tight at tiny alphas with few events.
* Rate ratios (canary / stable): MOVER-R (Donner & Zou 2012) built from the two exact
  intervals; it stays finite with zero events on the canary's side.
* Quantile ratios: quantiles are interpolated within buckets as `histogram_quantile` does;
  the interval comes from a multinomial bootstrap over both revisions' bucket counts (normal
  interval on the log ratio with the bootstrap's standard error, so tiny error budgets need no
  huge resample counts). `resolution` says what the buckets can resolve at all.
* Repeated looks: `look_alpha` spends a rollout's false-rollback budget over its weights
  (an equal part for each weight its steps set, a spare part for any beyond) and each
  weight's part over the looks at that weight: evenly over the looks its steps plan, with a
  spare part for looks past them (6 / (pi^2 m^2) of it at the m-th), which sums to the part
  over any number of looks.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()
BOOTSTRAP_RESAMPLES = 400
SPENDING_SCALE = 6.0 / math.pi**2
SPARE_SHARE = 0.1
"""The budget's share kept for weights beyond those the steps set (a restart keeps its weight)."""
RESOLUTION_SHARE = 0.5
"""Buckets are too coarse when a canary exactly at the threshold would read as less than this
share of the threshold's effect (on the log scale)."""


def z_of(alpha: float) -> float:
    """The one-sided normal quantile z with P(Z > z) = alpha."""
    return _NORMAL.inv_cdf(1.0 - alpha)


def look_alpha(alpha: float, look: int, weight: int = 1, plan: Sequence[int | None] = (None,)) -> float:
    """The share of the budget `alpha` spent at look `look` (1-based) at the `weight`-th weight
    (1-based) of a rollout whose steps set `len(plan)` weights, `plan[j]` looks planned at
    weight j+1 (None: no end planned, e.g. a pause without duration).

    Each planned weight gets (1 - SPARE_SHARE) / len(plan), any later one SPARE_SHARE x
    6 / (pi^2 m^2) (m counted past the plan). A weight's part goes in equal shares of
    (1 - SPARE_SHARE) to its planned looks and SPARE_SHARE x 6 / (pi^2 m^2) to the m-th look
    past them, or, with no plan, 6 / (pi^2 k^2) to look k. The shares sum to at most alpha."""
    weights, weight, look = max(1, len(plan)), max(1, weight), max(1, look)
    if weight <= weights:
        part, planned = (1.0 - SPARE_SHARE) / weights, (list(plan) or [None])[weight - 1]
    else:
        part, planned = SPARE_SHARE * SPENDING_SCALE / (weight - weights) ** 2, None
    if planned is None:
        return alpha * part * SPENDING_SCALE / look**2
    if look <= planned:
        return alpha * part * (1.0 - SPARE_SHARE) / planned
    return alpha * part * SPARE_SHARE * SPENDING_SCALE / (look - planned) ** 2


def wilson_bounds(events: float, total: float, alpha: float) -> tuple[float, float]:
    """One-sided Wilson score bounds (lower, upper), each holding with probability 1 - alpha.

    Two-sided 95% intervals as tabulated by Newcombe (1998) are `wilson_bounds(x, n, 0.025)`.
    """
    if total <= 0:
        return 0.0, 1.0
    x = min(max(events, 0.0), total)
    p = x / total
    z = z_of(alpha)
    z2n = z * z / total
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / total + z2n / (4 * total))
    lower = 0.0 if x == 0 else max(0.0, center - half)
    upper = 1.0 if x == total else min(1.0, center + half)
    return lower, upper


def clopper_pearson_bounds(events: float, total: float, alpha: float) -> tuple[float, float]:
    """Exact one-sided Clopper-Pearson bounds (lower, upper), each holding with probability at
    least 1 - alpha whatever the rate; Newcombe's (1998) method 5 is `(x, n, 0.025)`.

    The bounds solve P(X >= x | p) = alpha and P(X <= x | p) = alpha for the binomial X by
    bisection. Wilson's bounds are close at 95% but too tight at the tiny per-look alphas of
    a long rollout when there are few events (3 errors in 30 requests is not evidence of a
    1% rate at 99.99%, Wilson says it is), so rates are judged with these.
    """
    n = max(0, round(total))
    x = min(max(0, round(events)), n)
    if n == 0:
        return 0.0, 1.0
    if x > n - x:  # mirror: fewer terms to sum, same precision
        lo, hi = clopper_pearson_bounds(n - x, n, alpha)
        return 1.0 - hi, 1.0 - lo
    lower = 0.0 if x == 0 else _bisect(_cdf_below(x, n), 1.0 - alpha)
    upper = 1.0 if x == n else _bisect(_cdf_below(x + 1, n), alpha)
    return lower, upper


def _cdf_below(x: int, n: int) -> Callable[[float], float]:
    """p -> P(X < x) for X ~ Binomial(n, p), summed over the x terms below (decreasing in p)."""
    k = np.arange(x, dtype=float)
    log_choose = math.lgamma(n + 1.0) - _lgamma(k + 1.0) - _lgamma(n - k + 1.0)

    def cdf(p: float) -> float:
        if p <= 0.0:
            return 1.0
        if p >= 1.0:
            return 0.0
        return float(np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p)).sum())

    return cdf


def _lgamma(values: np.ndarray) -> np.ndarray:
    return np.fromiter((math.lgamma(v) for v in values.tolist()), float, count=values.size)


def _bisect(decreasing: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where a function decreasing in p crosses `target`."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if decreasing(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def rate_ratio_bounds(
    events: float, total: float, base_events: float, base_total: float, alpha: float
) -> tuple[float, float]:
    """One-sided bounds (each 1 - alpha) on (events/total) / (base_events/base_total), MOVER-R
    (Donner & Zou 2012) from the two Clopper-Pearson intervals. No base events: the upper
    bound is infinite."""
    p1 = events / total if total > 0 else 0.0
    p2 = base_events / base_total if base_total > 0 else 0.0
    l1, u1 = clopper_pearson_bounds(events, total, alpha)
    l2, u2 = clopper_pearson_bounds(base_events, base_total, alpha)
    pp = p1 * p2
    lower_den = u2 * (2 * p2 - u2)
    lower_disc = max(0.0, pp * pp - l1 * u2 * (2 * p1 - l1) * (2 * p2 - u2))
    lower = (pp - math.sqrt(lower_disc)) / lower_den if lower_den != 0 else 0.0
    upper_den = l2 * (2 * p2 - l2)
    if base_events <= 0 or upper_den <= 0:
        upper = math.inf
    else:
        upper_disc = max(0.0, pp * pp - u1 * l2 * (2 * p1 - u1) * (2 * p2 - l2))
        upper = (pp + math.sqrt(upper_disc)) / upper_den
    return max(0.0, lower), upper


# ---------------------------------------------------------------------------------------------
# histograms
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buckets:
    """Per-bucket observation counts of one histogram over a window.

    `bounds` are the finite upper bounds, increasing; `counts` has one more entry than
    `bounds`, the last one for the +Inf bucket.
    """

    bounds: tuple[float, ...]
    counts: tuple[float, ...]

    @classmethod
    def from_cumulative(cls, by_le: dict[float, float]) -> Buckets:
        """From Prometheus' cumulative `le` counts (increase() may dip; clamp to monotone)."""
        les = sorted(by_le)
        finite = [le for le in les if not math.isinf(le)]
        cumulative: list[float] = []
        running = 0.0
        for le in [*finite, math.inf]:
            running = max(running, by_le.get(le, running))
            cumulative.append(running)
        counts = [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]
        return cls(tuple(finite), tuple(max(0.0, c) for c in counts))

    @property
    def total(self) -> float:
        return float(sum(self.counts))

    def restricted(self, bounds: Sequence[float]) -> Buckets:
        """The same histogram on a subset of its bounds (buckets merged)."""
        keep = set(bounds)
        cumulative = np.cumsum(self.counts)
        by_le = {b: float(c) for b, c in zip(self.bounds, cumulative[:-1], strict=True) if b in keep}
        by_le[math.inf] = float(cumulative[-1])
        return Buckets.from_cumulative(by_le)


def common_bounds(a: Buckets, b: Buckets) -> tuple[Buckets, Buckets]:
    """Both histograms on the bucket bounds they share (a changed bucket layout still compares)."""
    shared = sorted(set(a.bounds) & set(b.bounds))
    if list(a.bounds) == shared and list(b.bounds) == shared:
        return a, b
    return a.restricted(shared), b.restricted(shared)


def _quantiles(bounds: np.ndarray, counts: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated q-quantiles of rows of per-bucket counts (histogram_quantile semantics) and
    the bucket index each lies in. A quantile in the +Inf bucket reads as the highest bound."""
    cumulative = np.cumsum(counts, axis=-1)
    total = cumulative[..., -1:]
    rank = q * total
    index = np.argmax(cumulative >= rank, axis=-1)
    lowers = np.concatenate([[0.0], bounds])
    uppers = np.concatenate([bounds, [bounds[-1] if len(bounds) else 0.0]])
    below = np.where(
        index > 0, np.take_along_axis(cumulative, np.maximum(index - 1, 0)[..., None], -1)[..., 0], 0.0
    )
    inside = np.take_along_axis(counts, index[..., None], -1)[..., 0]
    lo, hi = lowers[index], uppers[index]
    share = np.divide(rank[..., 0] - below, inside, out=np.zeros_like(inside, dtype=float), where=inside > 0)
    value = np.where(index >= len(bounds), hi, lo + (hi - lo) * np.clip(share, 0.0, 1.0))
    return value, index


def binned_quantile(buckets: Buckets, q: float) -> float:
    """The interpolated q-quantile, as `histogram_quantile(q, ...)` computes it."""
    value, _ = _quantiles(np.asarray(buckets.bounds, float), np.asarray(buckets.counts, float), q)
    return float(value)


@dataclass(frozen=True)
class QuantileRatio:
    """canary q-quantile / stable q-quantile with one-sided bounds."""

    estimate: float
    lower: float
    upper: float
    canary: float
    stable: float
    coarse: str | None = None
    """Why the buckets cannot decide (None: they can)."""


def _seed(*parts: Buckets) -> int:
    """A seed from the data, so the same counts always give the same interval."""
    text = repr([(b.bounds, b.counts) for b in parts]).encode()
    return zlib.crc32(text)


def quantile_ratio(
    canary: Buckets,
    stable: Buckets,
    q: float,
    alphas: Sequence[float],
    threshold: float | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> list[QuantileRatio]:
    """The q-quantile ratio with one-sided bounds at each of `alphas` (one result per alpha).

    The log ratio's standard error comes from resampling both revisions' bucket counts
    (multinomial with the observed shares). `threshold` (a ratio) enables the resolution check.
    """
    canary, stable = common_bounds(canary, stable)
    bounds = np.asarray(canary.bounds, float)
    c_counts, s_counts = np.asarray(canary.counts, float), np.asarray(stable.counts, float)
    c_q, c_idx = _quantiles(bounds, c_counts, q)
    s_q, s_idx = _quantiles(bounds, s_counts, q)
    coarse = resolution(canary, stable, q, threshold, int(c_idx), int(s_idx))
    if float(s_q) <= 0 or float(c_q) <= 0:
        estimate = math.inf if float(s_q) <= 0 < float(c_q) else 1.0
        return [
            QuantileRatio(estimate, 0.0, math.inf, float(c_q), float(s_q), coarse or "quantile at 0")
        ] * len(alphas)
    estimate = float(c_q) / float(s_q)
    rng = np.random.default_rng(_seed(canary, stable))
    c_boot = _bootstrap(rng, bounds, canary, q, resamples)
    s_boot = _bootstrap(rng, bounds, stable, q, resamples)
    ok = (c_boot > 0) & (s_boot > 0)
    se = _log_se(c_boot[ok] / s_boot[ok])
    return [
        QuantileRatio(estimate, lo, hi, float(c_q), float(s_q), coarse)
        for lo, hi in (_normal_bounds(estimate, se, alpha) for alpha in alphas)
    ]


def _bootstrap(
    rng: np.random.Generator, bounds: np.ndarray, b: Buckets, q: float, resamples: int
) -> np.ndarray:
    """The q-quantile of `resamples` multinomial resamples of the bucket counts."""
    counts = np.asarray(b.counts, float)
    draws = rng.multinomial(round(b.total), counts / counts.sum(), size=resamples)
    value, _ = _quantiles(bounds, draws.astype(float), q)
    return value


def _log_se(values: np.ndarray) -> float:
    """Standard deviation of log(values) (infinite with fewer than two)."""
    return float(np.std(np.log(values), ddof=1)) if values.size > 1 else math.inf


def _normal_bounds(estimate: float, se: float, alpha: float) -> tuple[float, float]:
    """One-sided bounds at 1 - alpha of a positive estimate whose log has standard error `se`."""
    if not math.isfinite(se):
        return 0.0, math.inf
    z = z_of(alpha)
    return estimate * math.exp(-z * se), estimate * math.exp(z * se)


def _bucket_text(bounds: Sequence[float], index: int) -> str:
    lo = 0.0 if index == 0 else bounds[index - 1]
    hi = "+Inf" if index >= len(bounds) else f"{bounds[index]:g}"
    return f"({lo:g}, {hi}]"


def resolution(
    canary: Buckets, stable: Buckets, q: float, threshold: float | None, c_idx: int, s_idx: int
) -> str | None:
    """Why these buckets cannot resolve `threshold` (None: they can).

    A quantile in the +Inf bucket has no value at all. Otherwise fit a log-normal to the
    stable revision's buckets (probit plot: log bound against the normal quantile of the
    share below it), and read through the same buckets a revision exactly `threshold` times
    slower: if that reads as less than half the threshold's effect, interpolation inside too
    wide a bucket would make a canary at the threshold look nearly healthy.
    """
    bounds = list(canary.bounds)
    for who, index in (("canary", c_idx), ("stable", s_idx)):
        if index >= len(bounds):
            top = f"{bounds[-1]:g}" if bounds else "none"
            return f"buckets too coarse: the {who} p{q * 100:g} lies above the highest bucket bound {top}"
    if threshold is None or threshold == 1.0 or stable.total <= 0:
        return None
    shares = np.cumsum(stable.counts)[:-1] / stable.total
    inside = [
        (math.log(b), _NORMAL.inv_cdf(f)) for b, f in zip(bounds, shares, strict=True) if 0.01 < f < 0.99
    ]
    if len(inside) < 2:
        return (
            f"buckets too coarse: fewer than two bucket bounds inside the stable revision's range "
            f"(its p{q * 100:g} lies in {_bucket_text(bounds, s_idx)})"
        )
    logs, zs = np.array(inside).T
    slope, intercept = np.polyfit(zs, logs, 1)
    sigma, mu = max(float(slope), 1e-6), float(intercept)

    def read(shift: float) -> float:
        cdf = [_NORMAL.cdf((math.log(b) - mu - shift) / sigma) for b in bounds]
        counts = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
        value, _ = _quantiles(np.asarray(bounds, float), np.clip(counts, 0.0, None), q)
        return float(value)

    base, moved = read(0.0), read(math.log(threshold))
    seen = math.log(moved / base) / math.log(threshold) if base > 0 and moved > 0 else 0.0
    if seen < RESOLUTION_SHARE:
        return (
            f"buckets too coarse: the stable p{q * 100:g} lies in bucket {_bucket_text(bounds, s_idx)}, "
            f"where a canary exactly {threshold:g}x slower reads as {moved / base if base > 0 else 0:.3g}x; "
            "add bucket bounds near it"
        )
    return None


def quantile_bounds(
    buckets: Buckets, q: float, alphas: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES
) -> list[tuple[float, float, float]]:
    """(estimate, lower, upper) of one histogram's q-quantile at each of `alphas` (bootstrap
    standard error of the log quantile, as in `quantile_ratio`)."""
    bounds = np.asarray(buckets.bounds, float)
    counts = np.asarray(buckets.counts, float)
    value, _ = _quantiles(bounds, counts, q)
    estimate = float(value)
    if estimate <= 0 or buckets.total <= 0:
        return [(estimate, 0.0, math.inf)] * len(alphas)
    boot = _bootstrap(np.random.default_rng(_seed(buckets)), bounds, buckets, q, resamples)
    se = _log_se(boot[boot > 0])
    return [(estimate, *_normal_bounds(estimate, se, a)) for a in alphas]
