"""The schedule of scheduled evaluations: parse (API + croniter), next due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.monitoring import MonitoringSpec, ScheduleSpec, cron_shape_ok
from llmops_operator.monitoring.schedule import InvalidScheduleError, is_due, next_due, parse

T0 = datetime(2026, 12, 1, 10, 0, 3, tzinfo=UTC)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


def test_interval_is_one_period_after_the_last_start() -> None:
    schedule = parse(ScheduleSpec(interval="10m"))
    assert next_due(schedule, T0, T0) == T0 + timedelta(minutes=10)
    assert not is_due(schedule, T0, T0 + timedelta(minutes=9, seconds=59))
    assert is_due(schedule, T0, T0 + timedelta(minutes=10))


def test_no_previous_run_is_due_at_once() -> None:
    schedule = parse(ScheduleSpec(cron="0 3 * * *"))
    assert next_due(schedule, None, T0) == T0
    assert is_due(schedule, None, T0)


def test_cron_is_the_next_slot_in_utc() -> None:
    schedule = parse(ScheduleSpec(cron="*/30 * * * *"))
    assert next_due(schedule, T0, T0) == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    assert parse(ScheduleSpec(cron="@hourly")).next_after(T0) == datetime(2026, 12, 1, 11, tzinfo=UTC)


def test_a_run_missed_while_the_operator_was_down_is_due_now() -> None:
    schedule = parse(ScheduleSpec(interval="1h"))
    assert is_due(schedule, T0, T0 + timedelta(days=2))


@pytest.mark.parametrize("cron", ["61 * * * *", "* 25 * * *", "* * 32 * *", "* * * 13 *", "a b c d e"])
def test_cron_values_croniter_rejects_are_invalid_schedules(cron: str) -> None:
    spec = ScheduleSpec(cron=cron)  # the shape passes the CRD; croniter judges the values
    with pytest.raises(InvalidScheduleError, match="does not parse"):
        parse(spec)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "exactly one of cron or interval"),
        ({"cron": "* * * * *", "interval": "5m"}, "exactly one of cron or interval"),
        ({"interval": "5s"}, "at least 10s"),
        ({"interval": "five minutes"}, "String should match pattern"),
        ({"cron": "* * *"}, "String should match pattern"),
    ],
)
def test_bad_schedules_are_rejected_by_the_api(body: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleSpec.model_validate(body)


def test_one_schedule_per_gate() -> None:
    evaluation = {"gate": "g", "schedule": {"interval": "1m"}}
    with pytest.raises(ValidationError, match="repeated: g"):
        MonitoringSpec.model_validate({"evaluations": [evaluation, evaluation]})


@given(last=moments, minutes=st.integers(min_value=1, max_value=10_000))
def test_interval_next_due_is_exactly_one_interval_later(last: datetime, minutes: int) -> None:
    schedule = parse(ScheduleSpec(interval=f"{minutes}m"))
    assert next_due(schedule, last, last) - last == timedelta(minutes=minutes)


@given(last=moments, step=st.sampled_from([1, 2, 5, 10, 15, 30]))
def test_cron_next_due_is_after_the_last_run_and_on_the_grid(last: datetime, step: int) -> None:
    due = next_due(parse(ScheduleSpec(cron=f"*/{step} * * * *")), last, last)
    assert last < due <= last + timedelta(minutes=step)
    assert due.minute % step == 0 and due.second == 0


@given(text=st.text(max_size=40))
def test_any_text_is_either_rejected_or_parsed_never_crashes(text: str) -> None:
    """User input: the API shape check, then croniter, then a due time; no other outcome."""
    try:
        spec = ScheduleSpec(cron=text)
    except ValidationError:
        assert not cron_shape_ok(text)
        return
    try:
        schedule = parse(spec)
    except InvalidScheduleError:
        return
    assert schedule.next_after(T0) > T0
