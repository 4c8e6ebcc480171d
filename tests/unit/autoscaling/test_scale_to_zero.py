"""Wake from zero and scale to zero: decisions over passes (state round-tripped through JSON, as
status would be) and the cold-start phases read from pods."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.model import AutoscalingSpec, WakeSignalSpec
from llmops_operator.api.model_status import AutoscalerState, ColdStart
from llmops_operator.autoscaling.decide import Signals
from llmops_operator.autoscaling.scale_to_zero import (
    AT_ZERO,
    SCALED_TO_ZERO,
    TO_ZERO_PENDING,
    WOKEN,
    Pending,
    decide,
    observe_cold_start,
    wake_query,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = AutoscalingSpec(
    minReplicas=0, maxReplicas=4, target=4, scaleToZeroAfter="60s", minReplicasWhenActive=2
)


def _round_trip(state: AutoscalerState) -> AutoscalerState:
    return AutoscalerState.model_validate(json.loads(json.dumps(state.to_wire())))


def _pass(
    state: AutoscalerState | None, current: int, at: datetime, waiting: float | None, load: float | None
) -> tuple[int, AutoscalerState]:
    signals = None if load is None else Signals(value=load, ready_replicas=max(current, 1), measured_at=at)
    replicas, new = decide(POLICY, signals, Pending(waiting, at), state, current, at)
    return replicas, _round_trip(new)


def test_at_zero_stays_until_a_request_waits_then_wakes_to_min_when_active() -> None:
    replicas, state = _pass(None, 0, T0, 0.0, None)
    assert (replicas, state.reason) == (0, AT_ZERO)
    replicas, state = _pass(state, 0, T0 + timedelta(seconds=15), 3.0, None)
    assert (replicas, state.reason) == (2, WOKEN)
    assert state.cold_start is not None and state.cold_start.signal_at == T0 + timedelta(seconds=15)
    assert state.cold_start.pending_requests == 3.0


def test_unreadable_wake_signal_never_wakes_and_never_parks() -> None:
    replicas, state = _pass(None, 0, T0, None, None)
    assert replicas == 0 and "could not be read" in state.message
    # active, load says 0, but the wake signal is unreadable: no idle run starts
    replicas, state = _pass(None, 2, T0, None, 0.0)
    assert replicas == 2 and state.idle_since is None


def test_back_to_zero_only_after_scale_to_zero_after_of_idleness() -> None:
    state: AutoscalerState | None = None
    replicas = 2
    for second in (0, 30, 59):
        replicas, state = _pass(state, replicas, T0 + timedelta(seconds=second), 0.0, 0.0)
        assert replicas == 2, second
        assert state.reason == TO_ZERO_PENDING
    replicas, state = _pass(state, replicas, T0 + timedelta(seconds=60), 0.0, 0.0)
    assert (replicas, state.reason) == (0, SCALED_TO_ZERO)


def test_a_waiting_request_or_load_resets_the_idle_run() -> None:
    replicas, state = _pass(None, 2, T0, 0.0, 0.0)
    replicas, state = _pass(state, replicas, T0 + timedelta(seconds=50), 1.0, 0.0)
    assert state.idle_since is None
    replicas, state = _pass(state, replicas, T0 + timedelta(seconds=70), 0.0, 0.0)
    assert replicas == 2 and state.idle_since == T0 + timedelta(seconds=70)
    replicas, state = _pass(state, replicas, T0 + timedelta(seconds=100), 0.0, 5.0)  # load
    assert state.idle_since is None and replicas == 2


def test_active_floor_is_min_replicas_when_active() -> None:
    # the load recommends 0 (nothing waiting in the engines), but the Model is not yet idle long enough
    replicas, _ = _pass(None, 3, T0, 0.0, 0.0)
    assert replicas >= POLICY.min_replicas_when_active


def test_without_min_replicas_zero_it_is_the_plain_autoscaler() -> None:
    policy = AutoscalingSpec(minReplicas=1, maxReplicas=4, target=4)
    replicas, state = decide(policy, None, Pending(10.0, T0), None, 1, T0)
    assert replicas == 1 and state.reason == "NoData" and state.cold_start is None


@given(
    st.lists(
        st.tuples(
            st.integers(1, 40), st.one_of(st.none(), st.floats(0, 20)), st.one_of(st.none(), st.floats(0, 40))
        ),
        min_size=1,
        max_size=30,
    )
)
def test_properties_over_any_sequence(passes: list[tuple[int, float | None, float | None]]) -> None:
    """Bounds hold; zero is left only for minReplicasWhenActive on a waiting request; zero is
    reached only from an idle run at least scaleToZeroAfter long."""
    state: AutoscalerState | None = None
    replicas, now = 0, T0
    for step, waiting, load in passes:
        now += timedelta(seconds=step)
        before, before_state = replicas, state
        replicas, state = _pass(state, replicas, now, waiting, load)
        assert 0 <= replicas <= POLICY.max_replicas
        if before == 0 and replicas > 0:
            assert waiting is not None and waiting > 0 and replicas == POLICY.min_replicas_when_active
        if before > 0 and replicas > 0:
            assert replicas >= POLICY.min_replicas_when_active
        if before > 0 and replicas == 0:
            assert before_state is not None and before_state.idle_since is not None
            assert now - before_state.idle_since >= timedelta(seconds=60)
            assert waiting == 0 and load == 0


def test_wake_query_builtin_and_custom() -> None:
    builtin = wake_query(WakeSignalSpec(), "team-a", "chat")
    assert (
        'inference_extension_flow_control_queue_size{namespace="team-a", inference_pool=~"chat-[0-9a-f]{10}"}'
        in builtin
    )
    assert "llm_d_epp_flow_control_queue_size" in builtin
    custom = wake_query(
        WakeSignalSpec(query='sum(pending{ns="{{namespace}}",m="{{model}}"})'), "team-a", "chat"
    )
    assert custom == 'sum(pending{ns="team-a",m="chat"})'
    with pytest.raises(ValueError):
        wake_query(WakeSignalSpec(query="sum(x{r='{{revision}}'})"), "team-a", "chat")


def _pod(
    revision: str, created: int, scheduled: int | None, started: int | None, ready: int | None
) -> dict[str, Any]:
    """A pod whose phases happened at these seconds after T0 (None: not yet)."""

    def ts(seconds: int) -> str:
        return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    conditions = []
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(scheduled)})
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ts(ready)})
    containers = (
        [{"name": "engine", "state": {"running": {"startedAt": ts(started)}}}] if started is not None else []
    )
    labels = {"llmops.dev/revision": revision}
    return {
        "metadata": {"name": f"p-{created}", "labels": labels, "creationTimestamp": ts(created)},
        "status": {"conditions": conditions, "containerStatuses": containers},
    }


def test_cold_start_phases_from_the_woken_pods_only() -> None:
    cold = ColdStart(signal_at=T0 + timedelta(seconds=10))
    old = _pod("r1", -300, -300, -300, -300)
    other = _pod("r2", 11, 11, 12, 12)
    partial = observe_cold_start(cold, [old, _pod("r1", 11, 11, None, None), other], "r1")
    assert partial is not None
    assert partial.scheduled_at == T0 + timedelta(seconds=11)
    assert partial.ready_at is None and partial.seconds_to_ready is None
    done = observe_cold_start(partial, [old, _pod("r1", 11, 11, 14, 20)], "r1")
    assert done is not None
    assert done.started_at == T0 + timedelta(seconds=14)
    assert done.ready_at == T0 + timedelta(seconds=20) and done.seconds_to_ready == 10.0
    assert observe_cold_start(done, [], "r1") == done  # recorded phases are kept
