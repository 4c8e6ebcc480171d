"""How many replicas the Model wants: spec.replicas, or the autoscaler's decision from the LLM
load signal (written to status, never to the spec)."""

from __future__ import annotations

from datetime import datetime

from llmops_operator import conditions as cond
from llmops_operator.api.model import ModelSpec
from llmops_operator.autoscaling.scale_to_zero import SCALED_TO_ZERO, WOKEN, decide, observe_cold_start
from llmops_operator.autoscaling.signals import unsupported_signal
from llmops_operator.conditions import Reason
from llmops_operator.model_plan.observe import revision_of
from llmops_operator.model_plan.world import Pass

AUTOSCALE_SECONDS = 15.0
"""How often an autoscaled Model is re-decided."""


def desired_replicas(p: Pass, spec: ModelSpec) -> int:
    """spec.replicas, or what the autoscaler decides from the LLM load signal (never the spec)."""
    policy = spec.autoscaling
    if policy is None:
        p.status.autoscaler = None
        p.clear(cond.AUTOSCALING)
        return spec.replicas
    unsupported = unsupported_signal(spec.engine.type, policy.metric)
    if unsupported:
        p.set(cond.AUTOSCALING, "False", Reason.UNSUPPORTED_METRIC, unsupported)
    else:
        p.clear(cond.AUTOSCALING)
    state = p.status.autoscaler
    current = state.desired_replicas if state and state.desired_replicas else None
    if current is None:
        stable = p.status.stable_revision
        deployed = [
            int((d.get("spec") or {}).get("replicas") or 0)
            for d in p.world.deployments
            if revision_of(d) == stable
        ]
        # a new Model that may scale to zero starts active, and idles to zero from there
        first = policy.min_replicas_when_active if policy.scales_to_zero else policy.min_replicas
        current = deployed[0] if deployed else first
    world = p.world
    replicas, new_state = decide(
        policy, world.autoscaling_signals, world.wake_pending, state, current, world.now
    )
    changed = state is None or new_state.desired_replicas != state.desired_replicas
    if changed and new_state.reason in ("ScaledUp", "ScaledDown", WOKEN, SCALED_TO_ZERO):
        p.event("Normal", new_state.reason, new_state.message or f"{current} -> {replicas} replicas")
    cold = observe_cold_start(new_state.cold_start, world.pods, p.status.stable_revision)
    if cold is not None and cold.ready_at is not None and (new_state.cold_start or cold).ready_at is None:
        p.event(
            "Normal",
            "ColdStartReady",
            f"woken from zero in {cold.seconds_to_ready:.1f}s "
            f"(scheduled {_since(cold.signal_at, cold.scheduled_at)}, "
            f"started {_since(cold.signal_at, cold.started_at)}, "
            f"ready {_since(cold.signal_at, cold.ready_at)})",
        )
    p.status.autoscaler = new_state.model_copy(update={"cold_start": cold})
    p.requeue(AUTOSCALE_SECONDS)
    return replicas


def _since(start: datetime, at: datetime | None) -> str:
    return "?" if at is None else f"+{max(0.0, (at - start).total_seconds()):.1f}s"
