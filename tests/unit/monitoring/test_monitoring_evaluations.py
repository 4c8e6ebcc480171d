"""The scheduled-evaluation stage: when runs start, what is deleted, the verdict per Model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from llmops_operator.api.model import ModelSpec
from llmops_operator.monitoring.evaluations import plan_evaluations, run_name
from llmops_operator.monitoring.quality import SCHEDULE_LABEL

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
GATE = {"metadata": {"name": "quality"}, "spec": {"prompt": {"name": "bot"}, "timeoutSeconds": 60}}


def spec(schedule: dict[str, str] | None = None, **evaluation: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "source": {"uri": "hf://org/m"},
            "engine": {"type": "vllm"},
            "prompts": [{"name": "bot", "version": 3}],
            "monitoring": {
                "evaluations": [
                    {"gate": "quality", "schedule": schedule or {"interval": "10m"}, **evaluation}
                ]
            },
        }
    )


def scheduled(
    name: str, minute: int, phase: str = "Passed", score: float = 1.0, revision: str = "r1"
) -> dict:
    status: dict[str, Any] = {"phase": phase}
    if phase in ("Passed", "Failed"):
        status["candidate"] = {"passRate": score, "score": score}
        if phase == "Failed":
            status["failingAssertions"] = ["no-rudeness"]
    return {
        "metadata": {
            "name": name,
            "labels": {SCHEDULE_LABEL: "quality"},
            "creationTimestamp": (T0 + timedelta(minutes=minute)).isoformat(),
        },
        "spec": {"gate": "quality", "revision": revision},
        "status": status,
    }


def test_first_run_starts_at_once_against_the_serving_revision_with_its_prompt() -> None:
    plan = plan_evaluations(spec(), "r1", True, [], [GATE], [], T0)
    (run,) = plan.start
    assert (run.gate, run.revision, run.prompt_version) == ("quality", "r1", 3)
    assert plan.decision is not None and plan.decision.reason == "NotEvaluatedYet"
    assert plan.requeue_after == 600


def test_next_run_is_one_interval_after_the_last_start() -> None:
    runs = [scheduled("a", 0)]
    assert plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=9)).start == []
    later = plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=10))
    assert [r.name for r in later.start] == [run_name("quality", "r1", T0 + timedelta(minutes=10))]


def test_same_slot_gives_the_same_run_name() -> None:
    runs = [scheduled("a", 0)]
    one = plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=11))
    two = plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=12))
    assert one.start == two.start


def test_an_unfinished_run_holds_the_next_until_its_job_fails_or_it_is_overdue() -> None:
    runs = [scheduled("a", 0, phase="Running")]
    slow_gate = {**GATE, "spec": {**GATE["spec"], "timeoutSeconds": 900}}
    at = T0 + timedelta(minutes=10)
    assert plan_evaluations(spec(), "r1", True, runs, [slow_gate], [], at).start == []
    failed_job = {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    plan = plan_evaluations(spec(), "r1", True, runs, [slow_gate], [failed_job], at)
    assert len(plan.start) == 1 and plan.decision is not None and plan.decision.reason == "EvalError"
    # 60 s gate timeout + grace long past: the stuck run no longer holds the schedule
    assert len(plan_evaluations(spec(), "r1", True, runs, [GATE], [], at).start) == 1


def test_failed_scheduled_run_degrades_and_a_passing_one_clears() -> None:
    failed = plan_evaluations(spec(), "r1", True, [scheduled("a", 0, "Failed", 0.3)], [GATE], [], T0)
    assert failed.decision is not None and failed.decision.status == "True"
    assert failed.trends[0].failing_assertions == ["no-rudeness"]
    runs = [scheduled("a", 0, "Failed", 0.3), scheduled("b", 10)]
    cleared = plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=11))
    assert cleared.decision is not None and cleared.decision.status == "False"


def test_runs_of_an_earlier_revision_do_not_judge_the_serving_one() -> None:
    runs = [scheduled("a", 0, "Failed", 0.3, revision="r0")]
    plan = plan_evaluations(spec(), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=1))
    assert plan.decision is not None and plan.decision.reason == "NotEvaluatedYet"


def test_history_beyond_the_limit_is_deleted_oldest_first() -> None:
    runs = [scheduled(f"r{m}", m * 10) for m in range(5)]
    plan = plan_evaluations(spec(historyLimit=3), "r1", True, runs, [GATE], [], T0 + timedelta(minutes=41))
    assert plan.delete == ["r0", "r1"]


def test_bad_input_is_a_condition_never_a_run() -> None:
    invalid = plan_evaluations(spec({"cron": "61 * * * *"}), "r1", True, [], [GATE], [], T0)
    assert invalid.start == [] and invalid.decision is not None
    assert invalid.decision.reason == "InvalidSchedule" and "does not parse" in invalid.decision.message
    missing = plan_evaluations(spec(), "r1", True, [], [], [], T0)
    assert (
        missing.start == [] and missing.decision is not None and missing.decision.reason == "EvalGateMissing"
    )


def test_nothing_runs_before_a_revision_serves_with_ready_replicas() -> None:
    assert plan_evaluations(spec(), None, False, [], [GATE], [], T0).start == []
    assert plan_evaluations(spec(), "r1", False, [], [GATE], [], T0).start == []


def test_no_scheduled_evaluations_no_verdict() -> None:
    bare = ModelSpec.model_validate({"source": {"uri": "hf://org/m"}, "engine": {"type": "vllm"}})
    assert plan_evaluations(bare, "r1", True, [], [GATE], [], T0).decision is None
