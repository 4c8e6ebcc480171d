"""Rolling update and canary glue: turns the desired revision into the replicas of each revision
and the traffic weight, consuming every action the canary machine returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from llmops_operator import conditions as cond
from llmops_operator import revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.rollout import RolloutStatus
from llmops_operator.conditions import Reason
from llmops_operator.evals import job as eval_jobs
from llmops_operator.evals.gate import eval_result, eval_run
from llmops_operator.model_plan.routing import traffic_gate
from llmops_operator.model_plan.world import PENDING_POLL_SECONDS, Pass
from llmops_operator.rollout import machine


class Split(NamedTuple):
    """Which revisions serve after this pass, with how many replicas and what canary weight."""

    stable: str | None
    canary: str | None
    replicas: dict[str, int]
    weight: int


def plan_rolling(
    p: Pass,
    desired: str,
    stable: str | None,
    observed: Mapping[str, revisions.ObservedRevision],
    total: int,
) -> Split:
    """RollingUpdate: the new revision replaces the old one as its pods become ready."""
    rp = revisions.rolling_update(desired, observed, total, stable)
    status = p.status
    if rp.complete and stable != desired:
        if stable:
            status.revisions = revisions.record_revision(
                status.revisions, stable, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
            )
            p.event("Normal", "RevisionStable", f"revision {desired} replaced {stable}, serving all traffic")
        # a first revision is announced by the Ready Event of the same pass
        status.revisions = revisions.record_revision(status.revisions, desired, p.world.now, revisions.STABLE)
    for old in rp.superseded:
        if old != stable:
            record = next((r for r in status.revisions if r.revision == old), None)
            if record is not None and record.outcome == revisions.PROGRESSING:
                status.revisions = revisions.record_revision(
                    status.revisions, old, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
                )
    status.rollout = None
    if rp.complete or desired == stable:
        # scaling the stable revision (or waiting for its pods) is not a rollout
        p.set(cond.PROGRESSING, "True", Reason.ROLLOUT_COMPLETE, f"revision {desired} is stable")
        p.clear(cond.ROLLED_BACK)
        if not rp.complete:
            p.requeue(PENDING_POLL_SECONDS)
        return Split(desired, None, rp.replicas, 100)
    p.set(cond.PROGRESSING, "True", Reason.ROLLING_UPDATE, f"rolling out revision {desired}")
    p.requeue(PENDING_POLL_SECONDS)
    # every ready pod of both revisions serves while the new one replaces the old one
    return Split(rp.stable_revision, desired, rp.replicas, 100)


def plan_canary(
    p: Pass,
    spec: ModelSpec,
    desired: str,
    stable: str,
    observed: Mapping[str, revisions.ObservedRevision],
    total: int,
) -> Split:
    """Canary: one step of the machine, then every action it returned."""
    status = p.status
    rollout = status.rollout or RolloutStatus()
    obs = machine.Observed(
        canary_revision=desired,
        stable_revision=stable,
        total_replicas=total,
        ready_replicas={rev: o.ready_replicas for rev, o in observed.items()},
        measurements=tuple(p.world.measurements),
        measurements_pending=p.world.measurements_pending,
        eval_result=eval_result(
            p.world.eval_runs,
            rollout if rollout.revision == desired else None,
            p.world.jobs,
            p.world.verdict_key,
        ),
        traffic_blocked=traffic_gate(p, spec, stable, desired),
    )
    actions, new_rollout = machine.step(spec.rollout, rollout, obs, p.world.now)
    replicas: dict[str, int] = {}
    new_stable, canary = stable, desired
    for action in actions:
        if isinstance(action, machine.ScaleRevision):
            replicas[action.revision] = action.replicas
        elif isinstance(action, machine.Promote):
            new_stable, canary = action.revision, None
            _promote(p, desired, stable)
            replicas = {desired: total}
        else:
            _consume(p, spec, action, new_rollout)
    if new_stable == desired:
        _gate_condition(p, new_rollout)
        status.rollout = None
        p.set(cond.PROGRESSING, "True", Reason.ROLLOUT_COMPLETE, f"revision {desired} promoted to stable")
        p.clear(cond.ROLLED_BACK)
        return Split(desired, None, replicas, 100)
    status.rollout = new_rollout
    _rollout_conditions(p, new_rollout)
    return Split(new_stable, canary, replicas, new_rollout.weight)


def _promote(p: Pass, desired: str, stable: str) -> None:
    status = p.status
    status.revisions = revisions.record_revision(
        status.revisions, stable, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
    )
    status.revisions = revisions.record_revision(status.revisions, desired, p.world.now, revisions.STABLE)


def _consume(p: Pass, spec: ModelSpec, action: machine.Action, new_rollout: RolloutStatus) -> None:
    """Every action but ScaleRevision and Promote (which decide the split)."""
    if isinstance(action, machine.RunAnalysis):
        p.plan.run_analysis = action.metrics
    elif isinstance(action, machine.StartEvalRun):
        started = new_rollout.eval_run.started_at if new_rollout.eval_run else None
        owner = p.owner()
        run = eval_run(
            p.name,
            p.namespace,
            spec,
            action,
            started,
            eval_gates=p.world.eval_gates,
            endpoint_template=p.world.endpoint_template,
            owner=owner,
        )
        gate = next((g for g in p.world.eval_gates if g["metadata"]["name"] == action.gate), None)
        p.plan.apply.extend(eval_jobs.eval_identity(run, gate, owner, p.world.verdict_key))
        p.plan.apply.append(run)
        p.plan.apply.append(eval_jobs.eval_job(run, p.world.operator_image, owner, gate))
    elif isinstance(action, machine.Abort):
        p.status.revisions = revisions.record_revision(
            p.status.revisions, action.revision, p.world.now, revisions.ROLLED_BACK, action.reason
        )
        p.set(
            cond.ROLLED_BACK,
            "True",
            Reason.ANALYSIS_FAILED if action.metric else Reason.ABORTED,
            action.reason,
        )
    elif isinstance(action, machine.RequeueAfter):
        p.requeue(max(action.seconds, 0.5))
    elif isinstance(action, machine.EmitEvent):
        p.event(action.type, action.reason, action.message)


def _rollout_conditions(p: Pass, rollout: RolloutStatus) -> None:
    if rollout.abort:
        p.set(cond.PROGRESSING, "False", Reason.ROLLOUT_ABORTED, rollout.message)
    elif rollout.pause_conditions:
        p.set(cond.PROGRESSING, "Unknown", Reason.ROLLOUT_PAUSED, rollout.message)
    else:
        p.clear(cond.ROLLED_BACK)
        p.set(cond.PROGRESSING, "True", Reason.CANARY_PROGRESSING, rollout.message)
    _gate_condition(p, rollout)
    latest = {m.metric: m for m in rollout.analysis.measurements}
    if latest:
        bad = [m for m in latest.values() if m.phase != "Successful"]
        if not bad:
            p.set(
                cond.ANALYSIS,
                "True",
                Reason.ANALYSIS_SUCCESSFUL,
                f"{len(latest)} metric(s) within thresholds",
            )
        else:
            worst = sorted(bad, key=lambda m: ["Failed", "Error", "Inconclusive"].index(m.phase))[0]
            status_value = "False" if worst.phase == "Failed" else "Unknown"
            p.set(cond.ANALYSIS, status_value, worst.phase, worst.message)


def _gate_condition(p: Pass, rollout: RolloutStatus) -> None:
    """EvalGatePassed from the eval run in status (kept there after the gate step completed)."""
    run = rollout.eval_run
    if run is not None and run.phase in ("Passed", "Failed", "Error"):
        status_value = "True" if run.phase == "Passed" else ("False" if run.phase == "Failed" else "Unknown")
        reason = {"Passed": Reason.EVAL_PASSED, "Failed": Reason.EVAL_FAILED, "Error": Reason.EVAL_ERROR}[
            run.phase
        ]
        p.set(cond.EVAL_GATE_PASSED, status_value, reason, f"gate {run.gate}: {run.message}".rstrip(": "))
    elif run is not None:
        p.set(
            cond.EVAL_GATE_PASSED, "Unknown", Reason.EVAL_RUNNING, f"gate {run.gate} is evaluating the canary"
        )
