"""Repeated Events update the Event posted before (client-go's EventCorrelator), so Events stay
bounded per object however often a pass repeats itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.kube.client import Kube, NotFound
from llmops_operator.kube.events import COMBINED_PREFIX, SIMILAR_LIMIT, SIMILAR_WINDOW, EventCorrelator

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
MODEL = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "m", "namespace": "ns", "uid": "u1"},
}


class RecordingKube(Kube):
    """Kube whose writes land in a dict of Events instead of an API server."""

    def __init__(self) -> None:
        super().__init__(api_client=object())  # type: ignore[arg-type]
        self.stored: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.patches = 0

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.creates += 1
        name = f"{obj['metadata']['generateName']}{self.creates}"
        self.stored[name] = {**obj, "metadata": {**obj["metadata"], "name": name}}
        return self.stored[name]

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        assert kind == "Event"
        self.patches += 1
        if name not in self.stored:
            raise NotFound(name)
        self.stored[name].update(patch)
        return self.stored[name]


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_repeat_counts_on_the_event_posted() -> None:
    kube = RecordingKube()
    for i in range(5):
        kube.post_event(MODEL, "Warning", "ReconcileError", "apply refused", stamp(T0 + timedelta(seconds=i)))
    assert kube.creates == 1 and kube.patches == 4
    (event,) = kube.stored.values()
    assert event["count"] == 5
    assert event["firstTimestamp"] == stamp(T0)
    assert event["lastTimestamp"] == stamp(T0 + timedelta(seconds=4))
    assert event["message"] == "apply refused"


def test_different_objects_reasons_and_messages_are_separate_events() -> None:
    kube = RecordingKube()
    other = {**MODEL, "metadata": {**MODEL["metadata"], "name": "m2", "uid": "u2"}}
    kube.post_event(MODEL, "Normal", "Promoted", "revision a is stable", stamp(T0))
    kube.post_event(other, "Normal", "Promoted", "revision a is stable", stamp(T0))
    kube.post_event(MODEL, "Normal", "CanaryStarted", "revision a is stable", stamp(T0))
    kube.post_event(MODEL, "Normal", "Promoted", "revision b is stable", stamp(T0))
    assert kube.creates == 4 and kube.patches == 0
    assert {e["count"] for e in kube.stored.values()} == {1}


def test_many_messages_of_one_reason_are_combined() -> None:
    kube = RecordingKube()
    for i in range(3 * SIMILAR_LIMIT):
        kube.post_event(
            MODEL, "Normal", "Promoted", f"revision r{i} is stable", stamp(T0 + timedelta(seconds=i))
        )
    assert kube.creates == SIMILAR_LIMIT
    combined = [e for e in kube.stored.values() if e["message"].startswith(COMBINED_PREFIX)]
    assert len(combined) == 1
    assert combined[0]["message"] == f"{COMBINED_PREFIX}revision r{3 * SIMILAR_LIMIT - 1} is stable"
    assert combined[0]["count"] == 2 * SIMILAR_LIMIT + 1


def test_similar_events_count_from_zero_after_a_quiet_window() -> None:
    correlator = EventCorrelator()
    key = ("ns", "Model", "m", "u1")
    later = T0
    for i in range(SIMILAR_LIMIT - 1):
        later = T0 + timedelta(seconds=i)
        assert correlator.decide(key, "Normal", "Promoted", f"r{i}", later, stamp(later)).message == f"r{i}"
    after = later + SIMILAR_WINDOW + timedelta(seconds=1)
    assert correlator.decide(key, "Normal", "Promoted", "new", after, stamp(after)).message == "new"


def test_an_expired_event_is_posted_again() -> None:
    kube = RecordingKube()
    kube.post_event(MODEL, "Warning", "ReconcileError", "apply refused", stamp(T0))
    kube.stored.clear()  # the API server's --event-ttl expired it
    kube.post_event(MODEL, "Warning", "ReconcileError", "apply refused", stamp(T0 + timedelta(hours=2)))
    assert kube.creates == 2 and kube.patches == 1
    (event,) = kube.stored.values()
    assert event["count"] == 2
    kube.post_event(MODEL, "Warning", "ReconcileError", "apply refused", stamp(T0 + timedelta(hours=3)))
    assert kube.creates == 2 and next(iter(kube.stored.values()))["count"] == 3


def test_memory_is_bounded() -> None:
    correlator = EventCorrelator(max_entries=8)
    for i in range(100):
        decision = correlator.decide(("ns", "Model", f"m{i}", ""), "Normal", "R", "x", T0, stamp(T0))
        correlator.posted(decision, f"e{i}")
    assert len(correlator._posted) == 8 and len(correlator._similar) == 8
    again = correlator.decide(("ns", "Model", "m99", ""), "Normal", "R", "x", T0, stamp(T0))
    assert again.name == "e99" and again.count == 2
    forgotten = correlator.decide(("ns", "Model", "m0", ""), "Normal", "R", "x", T0, stamp(T0))
    assert forgotten.name is None


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Normal", "Warning"]), st.sampled_from(["A", "B", "C"]), st.text(max_size=12)
        ),
        max_size=200,
    )
)
def test_events_per_object_are_bounded_by_reasons_not_by_repeats(posts: list[tuple[str, str, str]]) -> None:
    """However many Events a Model gets, at most SIMILAR_LIMIT objects per (type, reason)."""
    kube = RecordingKube()
    for i, (type_, reason, message) in enumerate(posts):
        kube.post_event(MODEL, type_, reason, message, stamp(T0 + timedelta(seconds=i)))
    groups = {(t, r) for t, r, _ in posts}
    assert kube.creates <= SIMILAR_LIMIT * len(groups)
    assert sum(e["count"] for e in kube.stored.values()) == len(posts)


def test_quiet_similar_groups_are_dropped_not_kept_until_the_cap() -> None:
    """A rollout every quarter hour names a new revision each time: the group of the one before
    has gone quiet, so it is dropped (it would count from zero anyway) instead of filling the table."""
    correlator = EventCorrelator()
    at = T0
    for r in range(10_000):
        at = T0 + r * (SIMILAR_WINDOW + timedelta(minutes=5))
        decision = correlator.decide(
            ("ns", "Model", f"m{r % 30}", ""), "Normal", "Promoted", f"r{r}", at, stamp(at)
        )
        assert decision.message == f"r{r}"
        correlator.posted(decision, f"e{r}")
    assert len(correlator._similar) == 1
    assert len(correlator._posted) <= correlator.max_entries


def test_a_deleted_object_takes_its_events_with_it() -> None:
    kube = RecordingKube()
    other = {**MODEL, "metadata": {**MODEL["metadata"], "name": "m2", "uid": "u2"}}
    for i in range(20):
        kube.post_event(MODEL, "Normal", "Promoted", f"revision r{i} is stable", stamp(T0))
        kube.post_event(other, "Normal", "Promoted", f"revision r{i} is stable", stamp(T0))
    before = len(kube.events)
    kube.events.forget_involved("ns", "Model", "m")
    assert 0 < len(kube.events) == before // 2
    kube.post_event(other, "Normal", "Promoted", "revision r19 is stable", stamp(T0))
    assert kube.patches == 1 + 2 * (20 - SIMILAR_LIMIT)  # m2's Events are still counted on
