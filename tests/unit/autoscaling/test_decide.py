"""The autoscaler's decisions: table-driven scenarios plus properties over any load.

Every multi-pass test round-trips the state through JSON, as status would: the autoscaler
must resume from status alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.model import AutoscalingSpec
from llmops_operator.autoscaling.decide import (
    CLAMPED,
    LIMITED_BY_MAX,
    NO_DATA,
    SCALE_DOWN_PENDING,
    SCALED_DOWN,
    SCALED_UP,
    SIGNAL_MAX_AGE,
    STEADY,
    AutoscalerState,
    Signals,
    decide,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def policy(**kw: Any) -> AutoscalingSpec:
    base = {"minReplicas": 1, "maxReplicas": 10, "metric": "queueDepth", "target": 4}
    return AutoscalingSpec.model_validate(base | kw)


def sig(value: float | None, ready: int = 2, at: datetime = T0, message: str = "") -> Signals:
    return Signals(value=value, ready_replicas=ready, measured_at=at, message=message)


def roundtrip(state: AutoscalerState) -> AutoscalerState:
    return AutoscalerState.model_validate(json.loads(json.dumps(state.to_wire())))


@dataclass(frozen=True)
class Case:
    name: str
    policy: AutoscalingSpec
    signals: Signals | None
    current: int
    want: int
    reason: str
    state: AutoscalerState | None = None
    now: datetime = T0


CASES = [
    # sum metrics: ceil(total / target)
    Case("queue at target holds", policy(), sig(8), 2, 2, STEADY),
    Case("queue above target scales up", policy(), sig(12), 2, 3, SCALED_UP),
    Case("float noise costs no replica", policy(), sig(8.0000000001), 2, 2, STEADY),
    Case("rps total over target", policy(metric="requestsPerSecond", target=2.5), sig(10), 4, 4, STEADY),
    Case(
        "rps spike is at most doubled", policy(metric="requestsPerSecond", target=1), sig(50), 3, 6, SCALED_UP
    ),
    Case("one pod grows by one", policy(), sig(100), 1, 2, SCALED_UP),
    Case("never above maxReplicas", policy(maxReplicas=5), sig(100), 4, 5, SCALED_UP),
    Case("at max with more load", policy(maxReplicas=5), sig(100), 5, 5, LIMITED_BY_MAX),
    # kvCacheUtilization: ceil(ready * mean / target)
    Case(
        "kv mean over ready pods",
        policy(metric="kvCacheUtilization", target=0.5),
        sig(0.9, ready=2),
        2,
        4,
        SCALED_UP,
    ),
    Case(
        "kv counts ready pods, not pods still loading",
        policy(metric="kvCacheUtilization", target=0.5),
        sig(0.9, ready=2),
        4,
        4,
        STEADY,
    ),
    Case(
        "kv without ready pods is no data",
        policy(metric="kvCacheUtilization", target=0.5),
        sig(0.9, ready=0),
        3,
        3,
        NO_DATA,
    ),
    # no data holds
    Case("no signals", policy(), None, 3, 3, NO_DATA),
    Case("no value", policy(), sig(None, message="Prometheus unreachable"), 3, 3, NO_DATA),
    Case("NaN value", policy(), sig(math.nan), 3, 3, NO_DATA),
    Case("negative value", policy(), sig(-1), 3, 3, NO_DATA),
    Case("stale value", policy(), sig(0, at=T0 - SIGNAL_MAX_AGE - timedelta(seconds=1)), 3, 3, NO_DATA),
    Case("no data never scales to zero", policy(minReplicas=0), None, 3, 3, NO_DATA),
    # bounds changed by the user apply at once
    Case("no data still clamps down", policy(maxReplicas=2), None, 5, 2, CLAMPED),
    Case("no data still clamps up", policy(minReplicas=3), None, 1, 3, CLAMPED),
    Case("load inside new bounds", policy(maxReplicas=4), sig(16), 6, 4, CLAMPED),
    # scale-down waits
    Case("first lower reading waits", policy(), sig(0), 4, 4, SCALE_DOWN_PENDING),
    Case("no delay scales down at once", policy(scaleDownDelaySeconds=0), sig(4), 4, 1, SCALED_DOWN),
    Case(
        "idle goes to zero only with minReplicas 0",
        policy(minReplicas=0, scaleDownDelaySeconds=0),
        sig(0),
        2,
        0,
        SCALED_DOWN,
    ),
    Case(
        "idle stops at minReplicas", policy(minReplicas=2, scaleDownDelaySeconds=0), sig(0), 5, 2, SCALED_DOWN
    ),
    Case(
        "window not yet over",
        policy(scaleDownDelaySeconds=300),
        sig(0, at=T0 + timedelta(seconds=299)),
        4,
        4,
        SCALE_DOWN_PENDING,
        AutoscalerState(desired_replicas=4, below_target_since=T0, stabilized_recommendation=1),
        T0 + timedelta(seconds=299),
    ),
    Case(
        "window over: down to the highest recommendation in it",
        policy(scaleDownDelaySeconds=300),
        sig(0, at=T0 + timedelta(seconds=300)),
        4,
        3,
        SCALED_DOWN,
        AutoscalerState(desired_replicas=4, below_target_since=T0, stabilized_recommendation=3),
        T0 + timedelta(seconds=300),
    ),
    Case(
        "a window starting in the future restarts now",
        policy(scaleDownDelaySeconds=300),
        sig(0),
        4,
        4,
        SCALE_DOWN_PENDING,
        AutoscalerState(
            desired_replicas=4, below_target_since=T0 + timedelta(hours=1), stabilized_recommendation=1
        ),
    ),
    Case("scale from zero", policy(minReplicas=0), sig(3, ready=0), 0, 1, SCALED_UP),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    replicas, state = decide(case.policy, case.signals, case.state, case.current, case.now)
    assert (replicas, state.reason) == (case.want, case.reason), state.message
    assert state.desired_replicas == replicas
    assert state.message


def test_no_data_says_why() -> None:
    _, state = decide(policy(), sig(None, message="Prometheus at http://p:9090 is unreachable"), None, 3, T0)
    assert "unreachable" in state.message
    assert state.last_value is None


def test_scale_down_runs_through_status() -> None:
    """High load, then quiet: the count drops only after the delay, to the window's highest."""
    p = policy(scaleDownDelaySeconds=120)
    replicas, state = 2, None
    history = []
    for second, load in [(0, 40), (30, 40), (60, 10), (90, 4), (150, 4), (180, 4), (210, 4), (330, 4)]:
        now = T0 + timedelta(seconds=second)
        replicas, new = decide(p, sig(load, ready=replicas, at=now), state, replicas, now)
        state = roundtrip(new)
        history.append((second, replicas, state.reason))
    assert history == [
        (0, 4, SCALED_UP),  # wants 10, at most double
        (30, 8, SCALED_UP),
        (60, 8, SCALE_DOWN_PENDING),  # wants 3: window opens
        (90, 8, SCALE_DOWN_PENDING),  # wants 1, but 3 was seen in the window
        (150, 8, SCALE_DOWN_PENDING),
        (180, 3, SCALED_DOWN),  # 120 s of lower recommendations: down to 3
        (210, 3, SCALE_DOWN_PENDING),  # a new window for 3 -> 1
        (330, 1, SCALED_DOWN),
    ]
    assert state.last_scale_time == T0 + timedelta(seconds=330)
    assert state.below_target_since is None


def test_load_back_at_target_closes_the_window() -> None:
    p = policy(scaleDownDelaySeconds=60)
    _, state = decide(p, sig(0), None, 4, T0)
    assert state.below_target_since == T0
    _, state = decide(p, sig(16, at=T0 + timedelta(seconds=30)), state, 4, T0 + timedelta(seconds=30))
    assert (state.reason, state.below_target_since) == (STEADY, None)
    now = T0 + timedelta(seconds=61)
    replicas, state = decide(p, sig(0, at=now), state, 4, now)
    assert (replicas, state.reason, state.below_target_since) == (4, SCALE_DOWN_PENDING, now)


def test_no_data_closes_the_window() -> None:
    p = policy(scaleDownDelaySeconds=60)
    _, state = decide(p, sig(0), None, 4, T0)
    _, state = decide(p, None, state, 4, T0 + timedelta(seconds=30))
    assert state.below_target_since is None
    now = T0 + timedelta(seconds=61)
    replicas, _ = decide(p, sig(0, at=now), state, 4, now)
    assert replicas == 4


def test_last_scale_time_kept_while_holding() -> None:
    _, state = decide(policy(), sig(40), None, 2, T0)
    assert state.last_scale_time == T0
    later = T0 + timedelta(seconds=30)
    _, state = decide(policy(), sig(16, at=later), state, 4, later)
    assert state.last_scale_time == T0


def test_state_is_camel_case_on_the_wire() -> None:
    _, state = decide(policy(), sig(0), None, 4, T0)
    wire = state.to_wire()
    assert {"desiredReplicas", "belowTargetSince", "stabilizedRecommendation", "lastValue", "reason"} <= set(
        wire
    )
    assert roundtrip(state) == state


# ------------------------------------------------------------------------------ properties

metrics = st.sampled_from(["queueDepth", "kvCacheUtilization", "requestsPerSecond"])


@st.composite
def policies(draw: st.DrawFn, metric: str | None = None) -> AutoscalingSpec:
    low = draw(st.integers(0, 20))
    high = draw(st.integers(max(low, 1), 40))
    m = metric or draw(metrics)
    target = draw(st.floats(0.01, 1.0)) if m == "kvCacheUtilization" else draw(st.floats(0.1, 100))
    delay = draw(st.integers(0, 900))
    return policy(minReplicas=low, maxReplicas=high, metric=m, target=target, scaleDownDelaySeconds=delay)


values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1e4))


@st.composite
def states(draw: st.DrawFn) -> AutoscalerState | None:
    if draw(st.booleans()):
        return None
    since = draw(st.one_of(st.none(), st.integers(-1000, 100).map(lambda s: T0 + timedelta(seconds=s))))
    return AutoscalerState(
        desired_replicas=draw(st.integers(0, 50)),
        below_target_since=since,
        stabilized_recommendation=draw(st.one_of(st.none(), st.integers(0, 50))),
    )


@settings(max_examples=300)
@given(policies(), values, st.integers(0, 50), st.integers(0, 60), states())
def test_always_within_bounds(
    p: AutoscalingSpec, value: float | None, ready: int, current: int, state: Any
) -> None:
    replicas, new = decide(p, sig(value, ready=ready), state, current, T0)
    assert p.min_replicas <= replicas <= p.max_replicas
    assert new.desired_replicas == replicas
    assert replicas > 0 or p.min_replicas == 0


@settings(max_examples=200)
@given(policies(), st.integers(0, 60), states(), st.sampled_from(["none", "no value", "nan", "stale"]))
def test_no_data_only_clamps(p: AutoscalingSpec, current: int, state: Any, kind: str) -> None:
    signals = {
        "none": None,
        "no value": sig(None),
        "nan": sig(math.nan),
        "stale": sig(1e4, at=T0 - timedelta(hours=1)),
    }[kind]
    replicas, new = decide(p, signals, state, current, T0)
    assert replicas == max(p.min_replicas, min(p.max_replicas, current))
    assert new.reason in {NO_DATA, CLAMPED}
    assert new.below_target_since is None


@settings(max_examples=200)
@given(policies(), st.floats(0, 1e4), st.floats(0, 1e4), st.integers(1, 50), st.integers(0, 60), states())
def test_monotonic_in_load(
    p: AutoscalingSpec, a: float, b: float, ready: int, current: int, state: Any
) -> None:
    low, high = sorted((a, b))
    if p.metric == "kvCacheUtilization":
        low, high = low / 1e4, high / 1e4
    r_low, _ = decide(p, sig(low, ready=ready), state, current, T0)
    r_high, _ = decide(p, sig(high, ready=ready), state, current, T0)
    assert r_low <= r_high


@settings(max_examples=200)
@given(policies(), st.floats(0, 1e4), st.integers(0, 60))
def test_scale_up_at_most_doubles(p: AutoscalingSpec, value: float, current: int) -> None:
    base = max(p.min_replicas, min(p.max_replicas, current))
    replicas, _ = decide(
        p, sig(min(value, 1.0) if p.metric == "kvCacheUtilization" else value), None, current, T0
    )
    assert replicas <= max(2 * base, base + 1)


@settings(max_examples=200)
@given(
    policies(metric="queueDepth"),
    st.integers(0, 30),
    st.lists(st.tuples(st.integers(1, 400), st.one_of(st.none(), st.floats(0, 400))), max_size=25),
)
def test_scale_down_never_before_the_delay(
    p: AutoscalingSpec, start: int, passes: list[tuple[int, float | None]]
) -> None:
    """A drop happens only after `delay` seconds in which every pass had data asking for less.

    The oracle recomputes the recommendation independently: ceil(total / target) within bounds.
    """
    replicas, state, now = start, None, T0
    low_since: datetime | None = None
    for step, value in passes:
        now += timedelta(seconds=step)
        before = max(p.min_replicas, min(p.max_replicas, replicas))
        wanted = (
            None
            if value is None
            else max(p.min_replicas, min(p.max_replicas, math.ceil(value / p.target - 1e-9)))
        )
        asks_for_less = wanted is not None and wanted < before
        low_since = (low_since or now) if asks_for_less else None
        replicas, new = decide(p, sig(value, at=now), state, replicas, now)
        state = roundtrip(new)
        if replicas < before:
            assert low_since is not None
            assert now - low_since >= timedelta(seconds=p.scale_down_delay_seconds)
            low_since = None
