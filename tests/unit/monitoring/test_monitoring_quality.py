"""Scheduled evaluation results: bounded history, trend, and the QualityDegraded decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.monitoring.quality import (
    SCHEDULE_LABEL,
    Decision,
    RunResult,
    combine,
    degraded,
    history_to_delete,
    latest_finished,
    promotion_baseline,
    scheduled_runs,
    trend,
)

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def run(
    name: str,
    minute: int,
    phase: str = "Passed",
    score: float = 1.0,
    revision: str = "r1",
    gate: str = "quality",
    scheduled: bool = True,
    failing: list[str] | None = None,
    per_assertion: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = {SCHEDULE_LABEL: gate} if scheduled else {}
    status: dict[str, Any] = {"phase": phase}
    if phase in ("Passed", "Failed"):
        status["candidate"] = {"passRate": score, "score": score}
        status["completedAt"] = (T0 + timedelta(minutes=minute, seconds=30)).isoformat()
    if failing:
        status["failingAssertions"] = failing
    if per_assertion:
        status["perAssertion"] = per_assertion
    if phase == "Error":
        status["message"] = "endpoint unreachable"
    return {
        "metadata": {
            "name": name,
            "labels": labels,
            "creationTimestamp": (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        },
        "spec": {"gate": gate, "revision": revision},
        "status": status,
    }


def test_failed_run_is_degraded_and_names_the_failing_assertions() -> None:
    latest = scheduled_runs(
        [run("a", 0, "Failed", 0.33, failing=["no-rudeness", "close-to-reference"])], "quality"
    )
    decision = degraded("quality", latest[-1], baseline_score=1.0, max_score_drop=None)
    assert decision.status == "True" and decision.reason == "BelowPassCriteria"
    assert decision.failing == ("no-rudeness", "close-to-reference")
    assert "no-rudeness, close-to-reference" in decision.message and "run a" in decision.message


def test_passing_run_far_below_the_promotion_score_is_degraded() -> None:
    rows = [{"name": "polite", "passRate": 1.0}, {"name": "close", "passRate": 0.5}]
    latest = scheduled_runs([run("a", 0, "Passed", 0.8, per_assertion=rows)], "quality")[-1]
    decision = degraded("quality", latest, baseline_score=0.95, max_score_drop=0.1)
    assert decision.status == "True" and decision.reason == "ScoreDropped"
    assert decision.failing == ("close",)
    assert degraded("quality", latest, baseline_score=0.95, max_score_drop=0.2).status == "False"
    assert degraded("quality", latest, baseline_score=0.95, max_score_drop=None).status == "False"


def test_error_and_no_run_say_nothing_about_quality() -> None:
    error = scheduled_runs([run("a", 0, "Error")], "quality")[-1]
    assert degraded("quality", error, 1.0, 0.1).status == "Unknown"
    assert "endpoint unreachable" in degraded("quality", error, 1.0, 0.1).message
    assert degraded("quality", None, 1.0, 0.1).reason == "NotEvaluatedYet"


def test_restored_answers_clear_the_condition() -> None:
    runs = scheduled_runs([run("a", 0, "Failed", 0.3, failing=["x"]), run("b", 5, "Passed", 1.0)], "quality")
    assert degraded("quality", latest_finished(runs, "r1"), 1.0, None).status == "False"


def test_a_running_run_does_not_hide_the_last_verdict() -> None:
    runs = scheduled_runs([run("a", 0, "Failed", 0.3, failing=["x"]), run("b", 5, "Running")], "quality")
    assert latest_finished(runs, "r1").name == "a"  # type: ignore[union-attr]


def test_baseline_is_the_gate_step_run_else_the_first_scheduled_run() -> None:
    step = run("step", -60, "Passed", 0.9, scheduled=False)
    scheduled = scheduled_runs([run("a", 0, "Passed", 0.7), run("b", 5, "Passed", 0.8)], "quality")
    assert promotion_baseline([step], "quality", "r1", scheduled).name == "step"  # type: ignore[union-attr]
    assert promotion_baseline([], "quality", "r1", scheduled).name == "a"  # type: ignore[union-attr]
    other = run("other", -60, "Passed", 0.9, scheduled=False, revision="r0")
    assert promotion_baseline([other], "quality", "r1", []) is None


def test_trend_of_the_serving_revision() -> None:
    runs = scheduled_runs(
        [
            run("old", 0, "Passed", 0.1, revision="r0"),
            run("a", 1, "Passed", 0.9),
            run("b", 2, "Failed", 0.6),
            run("c", 3, "Running"),
        ],
        "quality",
    )
    baseline = RunResult(name="step", gate="quality", revision="r1", created=T0, phase="Passed", score=0.95)
    t = trend("quality", "r1", runs, baseline, T0 + timedelta(hours=1))
    assert (t.last_run, t.last_phase, t.last_score, t.best_score) == ("c", "Running", 0.6, 0.9)
    assert (t.baseline_score, t.baseline_run) == (0.95, "step")
    assert t.next_run_at == T0 + timedelta(hours=1)


def test_only_this_gates_scheduled_runs_count() -> None:
    runs = [run("a", 0), run("b", 1, gate="other"), run("c", 2, scheduled=False)]
    assert [r.name for r in scheduled_runs(runs, "quality")] == ["a"]


def test_combine_any_degraded_gate_wins() -> None:
    ok, bad, unknown = (
        Decision("False", "QualityHolds", "g1 ok"),
        Decision("True", "BelowPassCriteria", "g2", ("x",)),
        Decision("Unknown", "EvalError", "g3"),
    )
    assert combine([ok, bad, unknown]).status == "True"
    assert combine([ok, unknown]).status == "Unknown"
    assert combine([ok]).status == "False"


@given(
    minutes=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40, unique=True),
    limit=st.integers(min_value=1, max_value=100),
)
def test_history_keeps_exactly_the_newest_limit(minutes: list[int], limit: int) -> None:
    runs = scheduled_runs([run(f"r{m}", m) for m in minutes], "quality")
    deleted = history_to_delete(runs, limit)
    kept = [r for r in runs if r.name not in deleted]
    assert len(kept) == min(limit, len(runs))
    if deleted:
        assert max(r.created for r in runs if r.name in deleted) < min(r.created for r in kept)


@given(
    score=st.floats(min_value=0, max_value=1),
    baseline=st.floats(min_value=0, max_value=1),
    drop=st.floats(min_value=0, max_value=1),
)
def test_score_drop_decision_matches_the_margin(score: float, baseline: float, drop: float) -> None:
    latest = RunResult(name="a", gate="g", revision="r1", created=T0, phase="Passed", score=score)
    decision = degraded("g", latest, baseline, drop)
    assert (decision.status == "True") == (score < baseline - drop - 1e-12)
