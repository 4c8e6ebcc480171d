"""The statistics behind canary verdicts, against published values and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.rollout.analysis.stats import (
    SPARE_SHARE,
    Buckets,
    binned_quantile,
    clopper_pearson_bounds,
    look_alpha,
    quantile_bounds,
    quantile_ratio,
    rate_ratio_bounds,
    wilson_bounds,
)
from llmops_sim.emitter import TTFT_BUCKETS

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857-872, Table II, method 3 (Wilson score, 95%).
NEWCOMBE_WILSON_95 = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


# Same table, method 5 (exact, Clopper-Pearson).
NEWCOMBE_EXACT_95 = [
    (81, 263, 0.2527, 0.3676),
    (15, 148, 0.0578, 0.1617),
    (0, 20, 0.0000, 0.1684),
    (1, 29, 0.0009, 0.1776),
]


@pytest.mark.parametrize(("x", "n", "lower", "upper"), NEWCOMBE_EXACT_95)
def test_clopper_pearson_bounds_match_newcombes_table(x: int, n: int, lower: float, upper: float) -> None:
    lo, hi = clopper_pearson_bounds(x, n, 0.025)
    assert (round(lo, 4), round(hi, 4)) == (lower, upper)


@pytest.mark.parametrize("alpha", [0.05, 1e-3, 5e-5])
def test_clopper_pearson_lower_bound_holds_for_every_rate(alpha: float) -> None:
    """Exact coverage: P(lower bound <= p) >= 1 - alpha for any p (computed, not sampled)."""
    n = 30
    lowers = [clopper_pearson_bounds(x, n, alpha)[0] for x in range(n + 1)]
    for p in np.linspace(0.001, 0.5, 60):
        pmf = [math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(n + 1)]
        covered = sum(q for q, lo in zip(pmf, lowers, strict=True) if lo <= p)
        assert covered >= 1 - alpha - 1e-9


def test_wilson_is_too_tight_at_tiny_alphas_which_is_why_rates_use_clopper_pearson() -> None:
    # 3 errors in 30 requests on a 0.2% background: Wilson at 99.995% says the rate is > 1%.
    assert wilson_bounds(3, 30, 5e-5)[0] > 0.01 > clopper_pearson_bounds(3, 30, 5e-5)[0]


@settings(max_examples=150, deadline=None)
@given(x=st.integers(0, 300), n=st.integers(1, 300), alpha=st.sampled_from([0.05, 1e-3, 1e-6]))
def test_clopper_pearson_contains_the_estimate_is_symmetric_and_monotone(
    x: int, n: int, alpha: float
) -> None:
    x = min(x, n)
    lo, hi = clopper_pearson_bounds(x, n, alpha)
    assert 0.0 <= lo <= x / n <= hi <= 1.0
    lo2, hi2 = clopper_pearson_bounds(n - x, n, alpha)
    assert lo2 == pytest.approx(1 - hi, abs=1e-9) and hi2 == pytest.approx(1 - lo, abs=1e-9)
    lo3, hi3 = clopper_pearson_bounds(4 * x, 4 * n, alpha)  # same rate, more requests
    assert hi3 - lo3 <= hi - lo + 1e-9
    if x < n:  # one more event: both bounds move up
        lo4, hi4 = clopper_pearson_bounds(x + 1, n, alpha)
        assert lo4 >= lo - 1e-12 and hi4 >= hi - 1e-12


@pytest.mark.parametrize(("x", "n", "lower", "upper"), NEWCOMBE_WILSON_95)
def test_wilson_bounds_match_newcombes_table(x: int, n: int, lower: float, upper: float) -> None:
    lo, hi = wilson_bounds(x, n, 0.025)  # two-sided 95% = one-sided 97.5% on each side
    assert (round(lo, 4), round(hi, 4)) == (lower, upper)


def test_one_sided_95_wilson_bound_of_zero_errors_is_the_rule_of_z_squared() -> None:
    # x = 0: upper = z^2 / (n + z^2) exactly, z = 1.6449 (one-sided 95%).
    z2 = 1.6448536269514722**2
    for n in (90, 360, 2140):
        assert wilson_bounds(0, n, 0.05)[1] == pytest.approx(z2 / (n + z2), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(0, 500),
    n=st.integers(1, 500),
    extra=st.integers(1, 5000),
    alpha=st.sampled_from([0.05, 0.01, 0.001]),
)
def test_wilson_bounds_contain_the_estimate_narrow_with_n_and_are_symmetric(
    x: int, n: int, extra: int, alpha: float
) -> None:
    x = min(x, n)
    lo, hi = wilson_bounds(x, n, alpha)
    assert 0.0 <= lo <= x / n <= hi <= 1.0
    # symmetric: events and non-events swap sides
    lo2, hi2 = wilson_bounds(n - x, n, alpha)
    assert lo2 == pytest.approx(1 - hi, abs=1e-12) and hi2 == pytest.approx(1 - lo, abs=1e-12)
    # same rate on more requests: a narrower interval
    k = extra // n + 2
    wide = hi - lo
    lo3, hi3 = wilson_bounds(x * k, n * k, alpha)
    assert hi3 - lo3 <= wide + 1e-12
    # higher confidence: a wider interval
    lo4, hi4 = wilson_bounds(x, n, alpha / 10)
    assert lo4 <= lo + 1e-12 and hi4 >= hi - 1e-12


@pytest.mark.parametrize(("p1", "p2", "n1", "n2"), [(0.01, 0.01, 500, 2000), (0.05, 0.02, 300, 1000)])
def test_rate_ratio_bounds_cover_the_true_ratio_at_their_level(
    p1: float, p2: float, n1: int, n2: int
) -> None:
    rng = np.random.default_rng(7)
    truth, runs = p1 / p2, 500
    low_ok = high_ok = 0
    for _ in range(runs):
        lo, hi = rate_ratio_bounds(rng.binomial(n1, p1), n1, rng.binomial(n2, p2), n2, 0.05)
        low_ok += lo <= truth
        high_ok += truth <= hi
    # each one-sided 95% bound holds in at least ~95% of runs (exact intervals are conservative;
    # the binomial sd of the share is 0.01)
    assert low_ok / runs > 0.92 and high_ok / runs > 0.92


@settings(max_examples=200, deadline=None)
@given(x1=st.integers(0, 200), x2=st.integers(1, 200), n=st.integers(200, 3000))
def test_rate_ratio_bounds_contain_the_estimate_and_mirror_when_swapped(x1: int, x2: int, n: int) -> None:
    lo, hi = rate_ratio_bounds(x1, n, x2, n, 0.05)
    assert lo <= x1 / x2 <= hi
    if x1 > 0:  # swapping the revisions inverts the ratio and its bounds
        lo2, hi2 = rate_ratio_bounds(x2, n, x1, n, 0.05)
        assert lo2 == pytest.approx(1 / hi, rel=1e-9) and hi2 == pytest.approx(1 / lo, rel=1e-9)


def test_rate_ratio_without_base_events_has_no_upper_bound() -> None:
    lo, hi = rate_ratio_bounds(3, 100, 0, 1000, 0.05)
    assert hi == math.inf and lo > 0


def test_look_alpha_spends_at_most_the_budget_over_any_number_of_looks() -> None:
    shares = [look_alpha(0.05, k) for k in range(1, 100_001)]
    assert sum(shares) < 0.05 * (1 - SPARE_SHARE)
    assert sum(shares) > 0.0499 * (1 - SPARE_SHARE)
    assert shares == sorted(shares, reverse=True)


@settings(max_examples=80, deadline=None)
@given(plan=st.lists(st.none() | st.integers(1, 40), min_size=1, max_size=8), extra=st.integers(0, 6))
def test_look_alpha_over_weights_and_looks_stays_within_the_budget(
    plan: list[int | None], extra: int
) -> None:
    """Every weight the steps set, any beyond (a restart), the looks each plans and any number
    past them: the union bound holds. Planned looks share evenly; past the plan, and at a weight
    with no plan, look k spends the first such look's share / k^2 (pi^2 / 6 of it in all)."""
    total = 0.0
    for weight in range(1, len(plan) + extra + 1):
        planned = plan[weight - 1] if weight <= len(plan) else None
        even = [look_alpha(0.05, k, weight, plan) for k in range(1, (planned or 0) + 1)]
        assert len(set(even)) <= 1
        beyond = look_alpha(0.05, (planned or 0) + 1, weight, plan)
        assert look_alpha(0.05, (planned or 0) + 7, weight, plan) == pytest.approx(beyond / 49)
        total += sum(even) + beyond * math.pi**2 / 6
    assert total <= 0.05 + 1e-12


def test_a_planned_weight_spends_evenly_where_one_schedule_over_the_rollout_dwindled() -> None:
    """bench/rollback_latency.py's steps: two weights, 7 looks planned at each. The fourth look
    at the second weight (look 11 of the rollout) may spend 9 times what it could before."""
    before = 0.05 * 6 / math.pi**2 / 11**2
    assert look_alpha(0.05, 4, 2, (7, 7)) == pytest.approx(0.05 * 0.45 * 0.9 / 7)
    assert look_alpha(0.05, 4, 2, (7, 7)) > 9 * before


def binned(samples: np.ndarray, bounds: tuple[float, ...] = TTFT_BUCKETS) -> Buckets:
    index = np.searchsorted(bounds, samples, side="left")
    return Buckets(bounds, tuple(float(c) for c in np.bincount(index, minlength=len(bounds) + 1)))


def test_binned_quantile_matches_prometheus_histogram_quantile() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.2], 10 in (0.2, +Inf)
    b = Buckets.from_cumulative({0.1: 50, 0.2: 90, math.inf: 100})
    assert binned_quantile(b, 0.5) == pytest.approx(0.1)
    assert binned_quantile(b, 0.7) == pytest.approx(0.15)  # 0.1 + 0.1 * (70 - 50) / 40
    assert binned_quantile(b, 0.95) == pytest.approx(0.2)  # +Inf bucket: the highest bound


def test_from_cumulative_clamps_extrapolation_dips() -> None:
    b = Buckets.from_cumulative({0.1: 10.4, 0.2: 10.1, math.inf: 12.0})
    assert b.counts == (10.4, 0.0, pytest.approx(1.6))


@pytest.mark.parametrize(("n_c", "n_s"), [(150, 450), (1000, 4000)])
def test_quantile_ratio_interval_covers_by_simulation(n_c: int, n_s: int) -> None:
    """Healthy canary (same distribution): each one-sided 95% bound holds in about 95% of runs."""
    rng = np.random.default_rng(11)
    runs, low_ok, high_ok = 300, 0, 0
    for _ in range(runs):
        stable = binned(rng.lognormal(math.log(0.08), 0.5, n_s))
        canary = binned(rng.lognormal(math.log(0.08), 0.5, n_c))
        r = quantile_ratio(canary, stable, 0.95, [0.05])[0]
        low_ok += r.lower <= 1.0
        high_ok += r.upper >= 1.0
    assert 0.9 < low_ok / runs <= 1.0 and 0.9 < high_ok / runs <= 1.0


def test_quantile_ratio_sees_a_regression_and_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for n in (200, 800, 3200):
        stable = binned(rng.lognormal(math.log(0.08), 0.5, 4 * n))
        canary = binned(rng.lognormal(math.log(0.12), 0.5, n))
        r = quantile_ratio(canary, stable, 0.95, [0.05])[0]
        assert r.lower < r.estimate < r.upper
        widths.append(math.log(r.upper / r.lower))
    assert widths == sorted(widths, reverse=True)
    assert r.lower > 1.2  # 1.5x, clearly past a 1.2 threshold with 3,200 requests


def test_quantile_ratio_is_symmetric_in_the_revisions() -> None:
    rng = np.random.default_rng(5)
    a, b = binned(rng.lognormal(-2.5, 0.5, 900)), binned(rng.lognormal(-2.3, 0.5, 900))
    ab, ba = quantile_ratio(a, b, 0.95, [0.05])[0], quantile_ratio(b, a, 0.95, [0.05])[0]
    assert ab.estimate == pytest.approx(1 / ba.estimate)
    assert math.log(ab.upper / ab.lower) == pytest.approx(math.log(ba.upper / ba.lower), rel=0.25)


def test_quantile_bounds_of_one_histogram_cover_its_quantile() -> None:
    rng = np.random.default_rng(9)
    truth = 0.08 * math.exp(1.6448536 * 0.5)
    hits = sum(
        lo <= truth * 1.03 and truth / 1.03 <= hi  # 3%: the interpolation error of these buckets
        for _, lo, hi in (
            quantile_bounds(binned(rng.lognormal(math.log(0.08), 0.5, 500)), 0.95, [0.025])[0]
            for _ in range(200)
        )
    )
    assert hits / 200 > 0.9


def test_coarse_buckets_are_inconclusive_with_a_reason() -> None:
    rng = np.random.default_rng(1)
    # vLLM's TTFT layout has no bound between 0.1 and 0.25: a p95 near 0.14 cannot be resolved.
    vllm_like = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)
    stable = binned(rng.lognormal(math.log(0.08), 0.35, 4000), vllm_like)
    canary = binned(rng.lognormal(math.log(0.08), 0.35, 1000), vllm_like)
    r = quantile_ratio(canary, stable, 0.95, [0.05], threshold=1.2)[0]
    assert r.coarse is not None and "buckets too coarse" in r.coarse and "(0.1, 0.25]" in r.coarse
    fine = quantile_ratio(
        binned(rng.lognormal(-2.5, 0.35, 1000)), binned(rng.lognormal(-2.5, 0.35, 4000)), 0.95, [0.05], 1.2
    )
    assert fine[0].coarse is None
    top = Buckets.from_cumulative({0.1: 10, 0.2: 20, math.inf: 100})
    assert "above the highest bucket bound 0.2" in (
        quantile_ratio(top, top, 0.95, [0.05], 1.2)[0].coarse or ""
    )


def test_quantile_ratio_is_repeatable() -> None:
    rng = np.random.default_rng(2)
    a, b = binned(rng.lognormal(-2.5, 0.5, 300)), binned(rng.lognormal(-2.5, 0.5, 900))
    assert quantile_ratio(a, b, 0.95, [0.05, 0.001]) == quantile_ratio(a, b, 0.95, [0.05, 0.001])
