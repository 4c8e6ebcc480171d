"""The end of every pass: replica counts, Scheduled and Available, Ready rolled up, the phase
derived from status alone, and the Events that condition changes deserve."""

from __future__ import annotations

from llmops_operator import conditions as cond
from llmops_operator import resources, revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.conditions import Reason
from llmops_operator.gpu import planner
from llmops_operator.model_plan.monitoring import plan_monitoring
from llmops_operator.model_plan.observe import (
    deadline_exceeded,
    observed_revisions,
    pod_problems,
    revision_of,
)
from llmops_operator.model_plan.world import PENDING_POLL_SECONDS, ModelPlan, Pass

QUIET_REASONS = frozenset({Reason.REPLICAS_NOT_READY, Reason.AVAILABLE_UNKNOWN, Reason.EVAL_RUNNING})
"""Condition reasons that change often during normal progress: no Event for them."""


def plan_status(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    stable: str | None,
    canary: str | None,
    total: int,
    gpu_plan: planner.Plan,
    desired: str | None = None,
) -> None:
    """Replica counts, selector, endpoint, Scheduled and Available."""
    world, status = p.world, p.status
    live = [d for d in world.deployments if revision_of(d)]
    status.replicas = sum(int((d.get("status") or {}).get("replicas") or 0) for d in live)
    status.ready_replicas = sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in live)
    status.selector = revisions.selector_string(revisions.model_selector(p.name))
    status.endpoint = resources.endpoint(ref, spec)
    watched = canary or desired or stable
    unschedulable, not_ready = pod_problems(world.pods, watched) if watched else ([], [])
    if not gpu_plan.fits:
        p.set(cond.SCHEDULED, "False", Reason.NO_FITTING_NODE, gpu_plan.reason)
    elif unschedulable:
        p.set(cond.SCHEDULED, "False", Reason.UNSCHEDULABLE, unschedulable[0])
    else:
        p.set(cond.SCHEDULED, "True", Reason.PLANNED, gpu_plan.reason)
    serving = stable or desired
    _available(p, serving, total)
    if watched and watched != serving and not_ready and deadline_exceeded(world.deployments, watched):
        p.event("Warning", Reason.PODS_NOT_READY, f"revision {watched}: {not_ready[0]}")
    plan_monitoring(p, spec, stable, canary)


def _available(p: Pass, serving: str | None, total: int) -> None:
    """Available: the serving revision has its replicas ready."""
    world = p.world
    observed = observed_revisions(world.deployments)
    ready = observed[serving].ready_replicas if serving in observed else 0
    if serving is None:
        p.set(cond.AVAILABLE, "False", Reason.REPLICAS_NOT_READY, "no revision is serving yet")
    elif ready >= total and total > 0:
        p.set(
            cond.AVAILABLE,
            "True",
            Reason.REPLICAS_READY,
            f"{ready}/{total} replicas of revision {serving} ready",
        )
    elif total == 0:
        p.set(cond.AVAILABLE, "True", Reason.SCALED_TO_ZERO, "replicas is 0")
    else:
        message = f"{ready}/{total} replicas of revision {serving} ready"
        problems = pod_problems(world.pods, serving)
        detail = (problems[0] + problems[1])[:1]
        if deadline_exceeded(world.deployments, serving):
            p.set(
                cond.AVAILABLE,
                "False",
                Reason.PODS_NOT_READY,
                f"{message}; progress deadline exceeded; {'; '.join(detail) or 'check the pods'}",
            )
        else:
            p.set(cond.AVAILABLE, "False", Reason.REPLICAS_NOT_READY, "; ".join([message, *detail]))
        p.requeue(PENDING_POLL_SECONDS)


def _invalid_spec(p: Pass) -> bool:
    ready = cond.get_condition(p.conditions, cond.READY)
    return ready is not None and ready.reason == Reason.INVALID_SPEC


def phase(p: Pass) -> str:
    """Model phase from status alone (Argo `CalculateRolloutPhase`)."""
    status = p.status
    if _invalid_spec(p):
        return "Failed"
    rollout = status.rollout
    if rollout is not None and rollout.abort:
        return "Degraded"
    if rollout is not None and rollout.pause_conditions:
        return "Paused"
    if status.canary_revision:
        return "Progressing"
    if cond.is_true(p.conditions, cond.READY):
        return "Ready"
    available = cond.get_condition(p.conditions, cond.AVAILABLE)
    progressing = cond.get_condition(p.conditions, cond.PROGRESSING)
    if status.stable_revision and (
        status.ready_replicas == 0
        or (available is not None and available.reason == Reason.PODS_NOT_READY)
        or (progressing is not None and progressing.status == "False")
    ):
        return "Degraded"
    return "Progressing" if status.stable_revision else "Pending"


def finish(p: Pass) -> ModelPlan:
    """The one exit of every pass: Ready rolled up, phase, status in wire form, Events."""
    if not _invalid_spec(p):
        p.conditions = cond.roll_up_ready(p.conditions, p.world.now, p.generation)
    p.status.conditions = p.conditions
    p.status.phase = phase(p)  # type: ignore[assignment]
    rollout = p.status.rollout
    progress = cond.model_progress(
        p.conditions,
        p.status.phase,
        rollout is not None and rollout.abort,
        rollout.message if rollout else "",
    )
    p.conditions = cond.set_progress(p.conditions, *progress, p.world.now, p.generation)
    p.conditions = [c for c in p.conditions if c.type != cond.READY] + [
        c for c in p.conditions if c.type == cond.READY
    ]
    p.status.conditions = p.conditions
    p.status.observed_generation = p.generation
    p.plan.status = p.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    for condition in cond.changed(p.before, p.conditions):
        if condition.reason in QUIET_REASONS or condition.type in cond.SELF_REPORTED:
            continue  # normal progress (pods starting), or reported by its own stage
        # A finished rollout is announced once, by the stage that finished it (RevisionStable,
        # Promoted) or, for a first revision, by Ready: every Event is a request (issue 10).
        if (
            condition.type == cond.READY
            or condition.status != "True"
            or condition.reason == Reason.CACHE_LOADED
        ):
            kind = "Normal" if condition.status == "True" else "Warning"
            text = condition.message or f"{condition.type} is {condition.status}"
            p.plan.events.append((kind, f"{condition.type}{condition.reason}"[:128], text[:1024]))
    return p.plan
