"""Conditions: transitions keep their time, Ready rolls up from a declared set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmops_operator import conditions as c
from llmops_operator.api.common import Condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_set_adds_and_keeps_transition_time_when_status_is_unchanged() -> None:
    first = c.set_condition([], c.CACHE_READY, "False", c.Reason.CACHE_LOADING, "downloading", T0, 1)
    again = c.set_condition(first, c.CACHE_READY, "False", c.Reason.CACHE_LOADING, "50% downloaded", T1, 2)
    assert len(again) == 1
    assert again[0].last_transition_time == T0
    assert again[0].message == "50% downloaded" and again[0].observed_generation == 2
    flipped = c.set_condition(again, c.CACHE_READY, "True", c.Reason.CACHE_LOADED, "", T1, 2)
    assert flipped[0].last_transition_time == T1


def test_set_does_not_mutate_its_input_and_keeps_order() -> None:
    base = c.set_condition([], c.SCHEDULED, "True", c.Reason.PLANNED, "", T0)
    base = c.set_condition(base, c.AVAILABLE, "False", c.Reason.REPLICAS_NOT_READY, "0/2", T0)
    before = [x.model_copy() for x in base]
    updated = c.set_condition(base, c.SCHEDULED, "False", c.Reason.NO_FITTING_NODE, "no node", T1)
    assert base == before
    assert [x.type for x in updated] == [c.SCHEDULED, c.AVAILABLE]


def test_clear_removes_only_that_type() -> None:
    base = c.set_condition([], c.CACHE_READY, "True", c.Reason.CACHE_LOADED, "", T0)
    base = c.set_condition(base, c.AVAILABLE, "True", c.Reason.REPLICAS_READY, "", T0)
    assert [x.type for x in c.clear_condition(base, c.CACHE_READY)] == [c.AVAILABLE]


def cond(type_: str, status: str, reason: str = "R", message: str = "m") -> Condition:
    return Condition(type=type_, status=status, reason=reason, message=message, last_transition_time=T0)


@pytest.mark.parametrize(
    ("present", "status", "reason"),
    [
        ([cond(c.AVAILABLE, "True")], "True", c.Reason.ALL_READY),
        ([cond(c.CACHE_READY, "True"), cond(c.AVAILABLE, "True")], "True", c.Reason.ALL_READY),
        ([cond(c.CACHE_READY, "False", "Loading"), cond(c.AVAILABLE, "False", "X")], "False", "Loading"),
        (
            [cond(c.CREDENTIALS_READY, "False", c.Reason.SECRET_MISSING), cond(c.AVAILABLE, "True")],
            "False",
            c.Reason.SECRET_MISSING,
        ),
        ([cond(c.SCHEDULED, "Unknown", "Planning")], "Unknown", "Planning"),
        ([], "Unknown", "AvailableUnknown"),
        ([cond(c.AVAILABLE, "True"), cond(c.ANALYSIS, "False")], "True", c.Reason.ALL_READY),
    ],
)
def test_ready_rolls_up_from_the_declared_set(present: list[Condition], status: str, reason: str) -> None:
    rolled = c.roll_up_ready(present, T1, 3)
    ready = c.get_condition(rolled, c.READY)
    assert ready is not None
    assert (ready.status, ready.reason) == (status, reason)
    assert ready.observed_generation == 3


def test_ready_copies_the_first_failing_message() -> None:
    present = [cond(c.CREDENTIALS_READY, "False", c.Reason.SECRET_MISSING, "create Secret hf-token")]
    ready = c.get_condition(c.roll_up_ready(present, T1), c.READY)
    assert ready is not None and ready.message == "create Secret hf-token"


def test_changed_lists_only_real_changes() -> None:
    before = [cond(c.AVAILABLE, "True"), cond(c.CACHE_READY, "False")]
    after = c.set_condition(before, c.AVAILABLE, "True", "R", "m", T1)
    after = c.set_condition(after, c.CACHE_READY, "True", c.Reason.CACHE_LOADED, "", T1)
    assert [x.type for x in c.changed(before, after)] == [c.CACHE_READY]
    assert c.is_true(after, c.CACHE_READY) and not c.is_true(after, c.READY)
