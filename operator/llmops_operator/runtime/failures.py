"""When a pass fails: the ReconcileError condition that says where, and when to try again.

A pass that cannot finish (the API server rejects a child, a read fails, planning hits a bug)
must not look like success and must not spin: the object gets a `ReconcileError` condition
naming the stage, the object and the server's message, a Warning Event when that message is new,
and its next pass waits longer after each failure in a row (capped), then resets on a clean pass.
Pure apart from `Backoff`, which holds the per-key failure counts under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmops_operator import conditions as cond
from llmops_operator.redact import bounded

BACKOFF_BASE_SECONDS = 2.0
"""Delay after the first failure in a row; it doubles with each further one."""
BACKOFF_CAP_SECONDS = 300.0
"""Longest delay between two failing passes of one object."""

STAGE_REASONS: Mapping[str, str] = {
    "read": "ReadFailed",
    "plan": "PlanFailed",
    "apply": "ApplyFailed",
    "scale": "ScaleFailed",
    "delete": "DeleteFailed",
    "route": "RouteFailed",
    "status": "StatusWriteFailed",
}
"""Stage of a pass -> the ReconcileError reason saying which one failed."""


@dataclass(frozen=True)
class Failure:
    """One step of a pass that did not happen."""

    stage: str
    """A key of STAGE_REASONS."""
    target: str
    """What the step was about, e.g. "Deployment chat-1a2b3c" ("" for the whole object)."""
    message: str
    """The server's answer or the error, as received (bounded and scrubbed when written)."""

    def describe(self) -> str:
        where = f"{self.stage} {self.target}".strip()
        return bounded(f"{where}: {self.message}")


def summary(failures: Sequence[Failure]) -> str:
    """The condition message: the first failure, and how many more there were."""
    first = failures[0].describe()
    more = len(failures) - 1
    return bounded(f"{first} (and {more} more)" if more else first)


def with_reconcile_error(
    status: Mapping[str, Any],
    failures: Sequence[Failure],
    now: datetime,
    generation: int | None,
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The status with ReconcileError set (failures) or cleared (none), and the Warning Event
    (reason, message) to post: only when the message is new, so a stuck object does not flood
    its Events."""
    previous = cond.parse_conditions(status.get("conditions"))
    before = cond.get_condition(previous, cond.RECONCILE_ERROR)
    if not failures:
        if before is None:
            return dict(status), None
        updated = cond.clear_condition(previous, cond.RECONCILE_ERROR)
        event = None
    else:
        reason = STAGE_REASONS.get(failures[0].stage, "ReconcileFailed")
        message = summary(failures)
        updated = cond.set_condition(previous, cond.RECONCILE_ERROR, "True", reason, message, now, generation)
        new = before is None or before.status != "True" or before.message != message
        event = (reason, message) if new else None
    dumped = [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in updated]
    return {**status, "conditions": dumped}, event


def backoff_delay(failures_in_a_row: int) -> float:
    """Seconds before the next try after that many failed passes in a row (at least one)."""
    exponent = min(max(failures_in_a_row, 1) - 1, 32)
    return min(BACKOFF_BASE_SECONDS * 2.0**exponent, BACKOFF_CAP_SECONDS)


class Backoff:
    """Failed passes in a row per key (any thread); a clean pass resets the count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[Hashable, int] = {}

    def failed(self, key: Hashable) -> float:
        """Count one more failure; returns the delay before the next try."""
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
        return backoff_delay(count)

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)
