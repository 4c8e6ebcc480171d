"""When a scheduled evaluation is due: cron (croniter, UTC) or a fixed interval. Pure.

The anchor is the start of the previous run (its EvalRun's creation time), so a restarted
operator neither repeats a run nor skips one: a run missed while it was down is due at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from llmops_operator.api.durations import parse_duration
from llmops_operator.api.monitoring import ScheduleSpec


class InvalidScheduleError(ValueError):
    """A cron expression the CRD's shape check let through but croniter cannot use."""


@dataclass(frozen=True)
class Schedule:
    """A validated schedule."""

    cron: str | None = None
    interval: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment` (UTC)."""
        if self.interval is not None:
            return moment + self.interval
        assert self.cron is not None
        base = moment.astimezone(UTC)
        return croniter(self.cron, base).get_next(datetime).astimezone(UTC)  # type: ignore[no-any-return]

    def describe(self) -> str:
        return f"cron {self.cron!r}" if self.cron is not None else f"every {self.interval}"


def parse(spec: ScheduleSpec) -> Schedule:
    """A usable schedule, or InvalidScheduleError saying what is wrong with the cron values."""
    if spec.interval is not None:
        return Schedule(interval=parse_duration(spec.interval))
    cron = (spec.cron or "").strip()
    if not croniter.is_valid(cron):
        raise InvalidScheduleError(
            f"cron {spec.cron!r} does not parse: use five fields, minute hour day-of-month month "
            "day-of-week, e.g. '*/30 * * * *' (UTC)"
        )
    return Schedule(cron=cron)


def next_due(schedule: Schedule, last_started: datetime | None, now: datetime) -> datetime:
    """When the next run is due: at once without a previous run, else one period after it
    (a due time already past means: now)."""
    if last_started is None:
        return now
    return schedule.next_after(last_started)


def is_due(schedule: Schedule, last_started: datetime | None, now: datetime) -> bool:
    return next_due(schedule, last_started, now) <= now
