"""Capped backoff and the ReconcileError condition of a failed pass."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.runtime.failures import (
    BACKOFF_CAP_SECONDS,
    Backoff,
    Failure,
    backoff_delay,
    summary,
    with_reconcile_error,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=-5, max_value=10_000))
def test_backoff_grows_then_stays_capped(n: int) -> None:
    delay = backoff_delay(n)
    assert 0 < delay <= BACKOFF_CAP_SECONDS
    assert backoff_delay(n + 1) >= delay


def test_backoff_doubles_per_failure_and_resets_on_success() -> None:
    backoff = Backoff()
    assert [backoff.failed("k") for _ in range(3)] == [2.0, 4.0, 8.0]
    backoff.succeeded("k")
    assert backoff.failed("k") == 2.0 and backoff.failures("other") == 0


@given(st.text(max_size=5000), st.integers(min_value=1, max_value=50))
def test_the_condition_message_is_bounded_and_counts_the_rest(message: str, count: int) -> None:
    failures = [Failure("apply", f"Deployment d{i}", message) for i in range(count)]
    text = summary(failures)
    assert len(text) <= 1024
    if count > 1 and len(message) < 100:
        assert text.endswith(f"(and {count - 1} more)")


def test_the_first_failure_names_the_reason_and_a_repeat_posts_no_event() -> None:
    failures = [Failure("delete", "Deployment old", "forbidden"), Failure("apply", "Service s", "x")]
    status, event = with_reconcile_error({"phase": "Ready"}, failures, NOW, 4)
    (condition,) = status["conditions"]
    assert (condition["reason"], condition["observedGeneration"]) == ("DeleteFailed", 4)
    assert event == ("DeleteFailed", condition["message"])
    again, repeat = with_reconcile_error(status, failures, NOW, 4)
    assert repeat is None and again["conditions"] == status["conditions"]
    cleared, none = with_reconcile_error(status, [], NOW, 4)
    assert cleared["conditions"] == [] and none is None and cleared["phase"] == "Ready"
