"""The scheduled-evaluation stage of a Model pass: which EvalRuns to start and delete, the
trend per gate and the QualityDegraded verdict. Pure: the caller builds the EvalRun objects
(endpoints, owner) from `ScheduledRun` and applies them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from llmops_operator import revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.monitoring import QualityTrend, ScheduledEvaluation
from llmops_operator.evals.gate import bound_prompt_version
from llmops_operator.monitoring import quality, schedule

STUCK_GRACE = timedelta(minutes=2)
"""Beyond the gate's timeoutSeconds, an unfinished run no longer holds the schedule back."""
DEFAULT_GATE_TIMEOUT = 900
HELD_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class ScheduledRun:
    """An EvalRun to create: gate `gate` against the serving `revision`."""

    name: str
    gate: str
    revision: str
    prompt_version: int | None


@dataclass
class EvaluationPlan:
    """What the scheduled evaluations of one Model need this pass."""

    trends: list[QualityTrend] = field(default_factory=list)
    decision: quality.Decision | None = None
    """QualityDegraded; None when the Model has no scheduled evaluations (clear it)."""
    start: list[ScheduledRun] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    """Names of scheduled EvalRuns beyond historyLimit."""
    requeue_after: float | None = None


def run_name(gate: str, revision: str, due: datetime) -> str:
    """Deterministic from the due time, so re-planning the same slot never starts a second run."""
    slot = hashlib.sha256(f"{due.timestamp():.0f}".encode()).hexdigest()[:5]
    return revisions.fit_name(gate[:30], f"{revision}-m{slot}")


def _failed_jobs(jobs: Sequence[Mapping[str, Any]]) -> set[str]:
    failed = set()
    for job in jobs:
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                failed.add(job["metadata"]["name"])
    return failed


def _holds_schedule(
    run: quality.RunResult, timeout_seconds: int, failed_jobs: set[str], now: datetime
) -> bool:
    """An unfinished run blocks the next one, unless its Job failed or it is long overdue."""
    if run.finished or run.name in failed_jobs:
        return False
    return now - run.created < timedelta(seconds=timeout_seconds) + STUCK_GRACE


def plan_evaluations(
    spec: ModelSpec,
    serving_revision: str | None,
    serving_ready: bool,
    eval_runs: Sequence[Mapping[str, Any]],
    eval_gates: Sequence[Mapping[str, Any]],
    jobs: Sequence[Mapping[str, Any]],
    now: datetime,
) -> EvaluationPlan:
    """Scheduled runs due now against the serving revision, history to delete, trend, verdict."""
    evaluations = spec.monitoring.evaluations if spec.monitoring else []
    plan = EvaluationPlan()
    if not evaluations:
        return plan
    failed_jobs = _failed_jobs(jobs)
    decisions: list[quality.Decision] = []
    for evaluation in evaluations:
        decisions.append(
            _one(
                plan,
                evaluation,
                spec,
                serving_revision,
                serving_ready,
                eval_runs,
                eval_gates,
                failed_jobs,
                now,
            )
        )
    plan.decision = quality.combine(decisions)
    return plan


def _one(
    plan: EvaluationPlan,
    evaluation: ScheduledEvaluation,
    spec: ModelSpec,
    serving: str | None,
    serving_ready: bool,
    eval_runs: Sequence[Mapping[str, Any]],
    eval_gates: Sequence[Mapping[str, Any]],
    failed_jobs: set[str],
    now: datetime,
) -> quality.Decision:
    """One scheduled evaluation: start its run when due, add its trend and requeue time to
    `plan`, and return its QualityDegraded verdict."""
    gate_name = evaluation.gate
    runs = _runs_of(eval_runs, gate_name, failed_jobs)
    plan.delete += quality.history_to_delete(runs, evaluation.history_limit)
    gate = next((g for g in eval_gates if g["metadata"]["name"] == gate_name), None)
    try:
        sched = schedule.parse(evaluation.schedule)
    except schedule.InvalidScheduleError as exc:
        return quality.Decision("Unknown", "InvalidSchedule", f"gate {gate_name}: {exc}")
    if serving is None:
        return quality.Decision("Unknown", "NotServing", f"gate {gate_name}: no revision is serving yet")
    newest = runs[-1] if runs else None
    baseline = quality.promotion_baseline(eval_runs, gate_name, serving, runs)
    next_run: datetime | None = sched.next_after(newest.created) if newest else None
    wait: float | None = None
    if gate is None:
        decision = quality.Decision(
            "Unknown",
            "EvalGateMissing",
            f"EvalGate {gate_name} not found in this namespace; create it or fix "
            "spec.monitoring.evaluations[].gate",
        )
    else:
        due = schedule.next_due(sched, newest.created if newest else None, now)
        timeout = int((gate.get("spec") or {}).get("timeoutSeconds") or DEFAULT_GATE_TIMEOUT)
        held = newest is not None and _holds_schedule(newest, timeout, failed_jobs, now)
        if due > now:
            wait = (due - now).total_seconds()
        elif serving_ready and not held:
            bound = bound_prompt_version(spec, gate)
            plan.start.append(ScheduledRun(run_name(gate_name, serving, due), gate_name, serving, bound))
            next_run = sched.next_after(now)
            wait = (next_run - now).total_seconds()
        else:
            wait = HELD_POLL_SECONDS  # due, waiting for the run in progress or for ready replicas
        decision = quality.degraded(
            gate_name,
            quality.latest_finished(runs, serving),
            baseline.score if baseline else None,
            evaluation.max_score_drop,
        )
    plan.trends.append(quality.trend(gate_name, serving, runs, baseline, next_run))
    if wait is not None:
        wait = max(wait, 1.0)
        plan.requeue_after = wait if plan.requeue_after is None else min(plan.requeue_after, wait)
    return decision


def _runs_of(
    eval_runs: Sequence[Mapping[str, Any]], gate: str, failed_jobs: set[str]
) -> list[quality.RunResult]:
    """The gate's scheduled runs, oldest first; a run whose Job failed before it recorded a
    result is an Error."""
    return [
        r
        if r.finished or r.name not in failed_jobs
        else _as_error(r, "its eval Job failed before recording a result")
        for r in quality.scheduled_runs(eval_runs, gate)
    ]


def _as_error(run: quality.RunResult, message: str) -> quality.RunResult:
    return replace(run, phase="Error", message=message)
