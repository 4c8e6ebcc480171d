"""Leader election rules and the elector against an in-memory Lease (optimistic concurrency)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.kube.client import KubeError, NotFound
from llmops_operator.runtime.leader import LeaderElector, LeaseConfig, decide, lease_spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    holder=st.one_of(st.none(), st.sampled_from(["", "a", "b"])),
    unchanged=st.floats(min_value=0, max_value=100),
    duration=st.floats(min_value=1, max_value=60),
)
def test_decide_renews_own_takes_free_or_expired_and_waits_otherwise(
    holder: str | None, unchanged: float, duration: float
) -> None:
    decision = decide(holder, "a", unchanged, duration)
    if holder == "a":
        assert decision == "renew"
    elif not holder or unchanged >= duration:
        assert decision == "acquire"
    else:
        assert decision == "wait"


def test_lease_spec_counts_transitions_only_when_the_holder_changes() -> None:
    first = lease_spec(None, "a", 15, NOW)
    assert first["holderIdentity"] == "a" and first["leaseTransitions"] == 0
    assert first["leaseDurationSeconds"] == 15 and first["acquireTime"] == first["renewTime"]
    renewed = lease_spec(first, "a", 15, NOW.replace(second=5))
    assert renewed["leaseTransitions"] == 0 and renewed["acquireTime"] == first["acquireTime"]
    taken = lease_spec(renewed, "b", 15, NOW.replace(second=30))
    assert taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1


def test_timings_must_leave_the_old_leader_time_to_stop() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        LeaseConfig("l", "ns", "a", lease_duration=10, renew_deadline=10, retry_period=2)


class FakeLeases:
    """The API server's side of one Lease: resourceVersion checks on every write."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise KubeError(0, "API server unreachable")

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        self._check()
        if self.lease is None:
            raise NotFound(name)
        return copy.deepcopy(self.lease)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.lease = obj
        return copy.deepcopy(obj)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise KubeError(409, "already exists")
        return self._store(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise KubeError(409, "the object has been modified")
        return self._store(obj)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def elector(api: FakeLeases, clock: Clock, identity: str) -> LeaderElector:
    config = LeaseConfig("llmops", "ns", identity, lease_duration=15, renew_deadline=10, retry_period=2)
    return LeaderElector(api, config, clock=clock)  # type: ignore[arg-type]


def test_one_leader_at_a_time_takeover_after_the_lease_expires_and_release_hands_over_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    a.try_once()
    b.try_once()
    assert a.leading.is_set() and not b.leading.is_set()
    for _ in range(5):  # a renews; b sees the record change and keeps waiting
        clock.t += 2
        a.try_once()
        b.try_once()
        assert a.leading.is_set() and not b.leading.is_set()
    # a dies (no release): b takes over only once it saw the record unchanged for 15 s
    clock.t += 14
    b.try_once()
    assert not b.leading.is_set()
    clock.t += 2
    b.try_once()
    assert b.leading.is_set() and api.lease is not None
    assert api.lease["spec"]["holderIdentity"] == "b" and api.lease["spec"]["leaseTransitions"] == 1
    # b stops gracefully: the Lease is free, and a (restarted) takes it on its next round
    b.stop(release=True)
    assert "holderIdentity" not in api.lease["spec"]
    a2 = elector(api, clock, "a")
    a2.try_once()
    assert a2.leading.is_set()


def test_a_restarted_replica_with_the_same_identity_takes_its_lease_back_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    elector(api, clock, "pod-0").try_once()
    again = elector(api, clock, "pod-0")
    again.try_once()
    assert again.leading.is_set()


def test_lost_renewals_past_the_deadline_stop_reconciling_before_anyone_else_may_lead() -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, clock, "a")
    stopped: list[float] = []
    a.on_stopped = lambda: stopped.append(clock.t)
    a.try_once()
    api.down = True
    start = clock.t
    while a.leading.is_set():
        clock.t += 2
        a.round()
    assert stopped and stopped[0] - start <= a.config.renew_deadline + a.config.retry_period
    assert stopped[0] - start < a.config.lease_duration
