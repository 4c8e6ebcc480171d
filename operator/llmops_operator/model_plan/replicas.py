"""How many replicas the Model wants: spec.replicas, or the autoscaler's decision from the LLM
load signal (written to status, never to the spec)."""

from __future__ import annotations

from llmops_operator import conditions as cond
from llmops_operator.api.model import ModelSpec
from llmops_operator.autoscaling.decide import decide
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
        current = deployed[0] if deployed else policy.min_replicas
    replicas, new_state = decide(policy, p.world.autoscaling_signals, state, current, p.world.now)
    changed = state is None or new_state.desired_replicas != state.desired_replicas
    if changed and new_state.reason in ("ScaledUp", "ScaledDown"):
        p.event("Normal", new_state.reason, new_state.message or f"{current} -> {replicas} replicas")
    p.status.autoscaler = new_state
    p.requeue(AUTOSCALE_SECONDS)
    return replicas
