"""Counter increases from raw values (rollout/analysis/counts.py): what the statistics are fed.

The CI flake of test_canary.py[error-spike] (a healthy canary's TTFT judged "p95 1.51x stable
[1.46, 1.56] ... Failed" at look 1) came from bucket counts that were no histogram of any set of
requests: Prometheus' increase() handles each `le` series on its own, so a young pod whose
counters go back adds its whole count to the buckets that dropped only.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.rollout.analysis.confidence import Data, Window, judge, quantile_checks
from llmops_operator.rollout.analysis.counts import Counter, counters, increases, window_query
from llmops_operator.rollout.analysis.stats import Buckets
from llmops_sim.emitter import TTFT_BUCKETS

LES = [*TTFT_BUCKETS, math.inf]


def cumulative(latencies: np.ndarray) -> list[float]:
    """Cumulative `le` counts of these observations, +Inf last."""
    index = np.searchsorted(TTFT_BUCKETS, latencies, side="left")
    return np.cumsum(np.bincount(index, minlength=len(LES))).astype(float).tolist()


def prometheus_increase(values: list[float]) -> float:
    """increase()'s counting of one series' samples (without its extrapolation): the last minus
    the first value, plus the value before every drop, series by series."""
    total = values[-1] - values[0]
    for before, after in itertools.pairwise(values):
        if after < before:
            total += before
    return total


def buckets_of(by_le: dict[float, float]) -> Buckets:
    return Buckets.from_cumulative(by_le)


def ttft(canary: Buckets, stable: Buckets) -> str:
    s = AnalysisSpec.model_validate(
        {"metrics": [{"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2}]}
    )
    metric = s.metrics[0]
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    w = Window(since=now - timedelta(seconds=5), now=now, metrics=2)
    return judge(metric, s, quantile_checks(metric, 0.95), Data(canary), Data(stable), w, "p95").message


def young_pod_that_served_an_older_page(rng: np.random.Generator) -> list[list[float]]:
    """Scrapes of a canary pod a second old at 200 rps: between two pages it gained only one
    request of 0.27 s, then an older page was served once (the emitter's pre-render race), then
    it went on. Rows are scrapes, columns the cumulative `le` series."""
    first = rng.lognormal(math.log(0.08), 0.5, 100)
    later = rng.lognormal(math.log(0.08), 0.5, 450)
    s1 = cumulative(first)
    s2 = cumulative(np.concatenate([first, [0.27]]))
    return [
        s1,
        s2,
        s1,
        cumulative(np.concatenate([first, later[:220]])),
        cumulative(np.concatenate([first, later])),
    ]


def test_the_flakes_bucket_shape_fails_a_healthy_canary_and_raw_counts_do_not() -> None:
    rng = np.random.default_rng(4)
    scrapes = young_pod_that_served_an_older_page(rng)
    stable = buckets_of(dict(zip(LES, cumulative(rng.lognormal(math.log(0.08), 0.5, 1713)), strict=True)))
    # what increase() handed the statistics: the pod's count again in (0.25, 0.3] only
    by_increase = buckets_of({le: prometheus_increase([s[i] for s in scrapes]) for i, le in enumerate(LES)})
    spike = by_increase.counts[TTFT_BUCKETS.index(0.3)]
    assert spike > 90, by_increase.counts
    assert "Failed" in ttft(by_increase, stable)
    # counted from the raw values: the pod was born in the window and went back, so from zero
    went_back = [any(b < a for a, b in itertools.pairwise(col)) for col in zip(*scrapes, strict=True)]
    pod = [
        Counter((("le", f"{le}"), ("pod", "c")), scrapes[-1][i], None, went_back[i])
        for i, le in enumerate(LES)
    ]
    [counted] = increases([pod])
    raw = buckets_of({float(dict(labels)["le"]): v for labels, v in counted})
    assert raw.counts == buckets_of(dict(zip(LES, scrapes[-1], strict=True))).counts
    assert "Failed" not in ttft(raw, stable), ttft(raw, stable)


def series(pod: str, values: list[float], **extra: str) -> list[tuple[dict[str, str], float]]:
    return [({"pod": pod, "le": f"{le}", **extra}, v) for le, v in zip(LES, values, strict=True)]


def test_counters_pair_start_and_end_values_and_a_pod_that_went_back_counts_from_zero() -> None:
    start = [
        ({"__name__": "x", "pod": "a", "le": "+Inf"}, 100.0),
        ({"__name__": "x", "pod": "b", "le": "+Inf"}, 50.0),
    ]
    window = [
        ({"pod": "a", "le": "+Inf", "llmops_at": "end"}, 160.0),
        ({"pod": "a", "le": "+Inf", "llmops_at": "resets"}, 0.0),
        ({"pod": "b", "le": "+Inf", "llmops_at": "end"}, 70.0),
        ({"pod": "b", "le": "+Inf", "llmops_at": "resets"}, 1.0),
        ({"pod": "c", "le": "+Inf", "llmops_at": "end"}, 30.0),  # born in the window
    ]
    found = counters(start, window)
    [counted] = increases([found])
    assert {dict(labels)["pod"]: v for labels, v in counted} == {"a": 60.0, "b": 70.0, "c": 30.0}


def test_a_reset_in_one_group_restarts_the_pods_other_groups_too() -> None:
    """A 5xx series and a 2xx series of one pod: its restart shows in the 2xx one only."""
    failed = [Counter((("pod", "a"), ("status", "5xx")), 3.0, 2.0)]
    ok = [Counter((("pod", "a"), ("status", "2xx")), 40.0, 500.0, reset=True)]
    other_pod = [Counter((("pod", "b"), ("status", "2xx")), 900.0, 800.0)]
    assert increases([failed, ok + other_pod]) == [
        [((("pod", "a"), ("status", "5xx")), 3.0)],
        [((("pod", "a"), ("status", "2xx")), 40.0), ((("pod", "b"), ("status", "2xx")), 100.0)],
    ]


def test_window_query_reads_last_values_and_resets_without_increase() -> None:
    q = window_query('x_bucket{pod="a"}', "12s")
    assert 'last_over_time(x_bucket{pod="a"}[12s])' in q and 'resets(x_bucket{pod="a"}[12s])' in q
    assert "increase" not in q and "rate(" not in q


@settings(max_examples=200, deadline=None)
@given(
    before=st.integers(0, 300),
    during=st.integers(0, 300),
    restart_after=st.none() | st.integers(0, 300),
    older_page=st.booleans(),
    born_in_window=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_counts_are_always_a_histogram_of_requests_the_pod_served(
    before: int, during: int, restart_after: int | None, older_page: bool, born_in_window: bool, seed: int
) -> None:
    """Whatever a pod's counters did in the window (born in it, restarted, an older page served
    once), the counts are the bucket counts of one set of requests it served: cumulative counts
    never decrease with `le`, and they are the end values minus those at the start or from zero."""
    rng = np.random.default_rng(seed)
    draws = rng.lognormal(math.log(0.08), 0.5, before + during + (restart_after or 0))
    start = None if born_in_window else cumulative(draws[:before])
    pages = [cumulative(draws[: before + k]) for k in range(0, during + 1, max(1, during // 4 or 1))]
    if older_page and len(pages) > 2:
        pages.insert(2, pages[0])
    if restart_after is not None:
        rest = draws[before + during :]
        pages += [cumulative(rest[:k]) for k in (0, len(rest))]
    end = pages[-1]
    went_back = [any(b < a for a, b in itertools.pairwise(col)) for col in zip(*pages, strict=True)]
    pod = [
        Counter((("le", f"{le}"), ("pod", "p")), end[i], None if start is None else start[i], went_back[i])
        for i, le in enumerate(LES)
    ]
    [counted] = increases([pod])
    values = [v for _, v in counted]
    assert all(b >= a for a, b in itertools.pairwise(values)), values
    from_start = start is not None and not any(c.went_back for c in pod)
    expected = [e - s for e, s in zip(end, start, strict=True)] if from_start and start else end
    assert values == expected
