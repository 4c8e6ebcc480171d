"""Measurements off the reconcile path: a hung provider never holds a pass, and a round that
does not answer by its deadline is recorded as Error."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from llmops_operator.api.rollout import Measurement
from llmops_operator.rollout.analysis.rounds import MeasurementRounds

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("ns", "chat")


def ok() -> list[Measurement]:
    return [Measurement(metric="errors", phase="Successful", measured_at=NOW, message="fine")]


def test_a_fast_round_answers_within_the_pass() -> None:
    rounds = MeasurementRounds(5.0, on_done=lambda key: None)
    taken = rounds.take(KEY, "rev1", ("errors",), ok, "http://prom", NOW)
    assert taken.measurements is not None and taken.measurements[0].phase == "Successful"


def test_a_hung_round_is_pending_then_an_error_by_elapsed_time_and_never_blocks_a_pass() -> None:
    release = threading.Event()
    done: list[object] = []

    def hang() -> list[Measurement]:
        release.wait(30)
        return ok()

    rounds = MeasurementRounds(0.6, on_done=done.append, wait_seconds=0.1)
    try:
        started = time.monotonic()
        first = rounds.take(KEY, "rev1", ("errors", "ttft"), hang, "http://prom", NOW)
        assert first.measurements is None and 0 < first.retry_after <= 0.6
        assert time.monotonic() - started < 0.5, "a pass waited for Prometheus"
        time.sleep(0.6)
        late = rounds.take(KEY, "rev1", ("errors", "ttft"), hang, "http://prom", NOW)
        assert late.measurements is not None
        assert [m.phase for m in late.measurements] == ["Error", "Error"]
        assert (
            "unreachable" in late.measurements[0].message
            and "no answer within" in late.measurements[0].message
        )
        # the next round starts afresh (the hung one is abandoned)
        again = rounds.take(KEY, "rev1", ("errors", "ttft"), ok, "http://prom", NOW)
        assert again.measurements is not None and again.measurements[0].phase == "Successful"
    finally:
        release.set()
        rounds.shutdown()


def test_a_finished_round_wakes_the_model_and_is_picked_up_by_the_next_pass() -> None:
    release = threading.Event()
    woken = threading.Event()

    def slow() -> list[Measurement]:
        release.wait(5)
        return ok()

    rounds = MeasurementRounds(10.0, on_done=lambda key: woken.set(), wait_seconds=0.05)
    assert rounds.take(KEY, "rev1", ("errors",), slow, "p", NOW).measurements is None
    release.set()
    assert woken.wait(5)
    taken = rounds.take(KEY, "rev1", ("errors",), slow, "p", NOW)
    assert taken.measurements is not None and taken.measurements[0].message == "fine"
    rounds.shutdown()


def test_a_round_for_another_revision_is_dropped() -> None:
    release = threading.Event()
    rounds = MeasurementRounds(10.0, on_done=lambda key: None, wait_seconds=0.05)

    def old() -> list[Measurement]:
        release.wait(5)
        return [Measurement(metric="errors", phase="Failed", measured_at=NOW, message="old")]

    assert rounds.take(KEY, "rev1", ("errors",), old, "p", NOW).measurements is None
    taken = rounds.take(KEY, "rev2", ("errors",), ok, "p", NOW)
    assert taken.measurements is not None and taken.measurements[0].message == "fine"
    release.set()
    rounds.shutdown()
