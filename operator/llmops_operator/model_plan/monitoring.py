"""Monitoring of what serves: scheduled evaluations of the stable revision and the cost of every
serving revision (the logic is `monitoring.stage.monitor`; this applies its result to the pass)."""

from __future__ import annotations

from llmops_operator.api.model import ModelSpec
from llmops_operator.evals.gate import endpoint_of
from llmops_operator.model_plan.world import Pass
from llmops_operator.monitoring.stage import MonitorInputs, monitor


def plan_monitoring(p: Pass, spec: ModelSpec, stable: str | None, canary: str | None) -> None:
    """Scheduled evaluations of the stable revision and the cost of every serving revision."""
    world = p.world
    result = monitor(
        MonitorInputs(
            name=p.name,
            namespace=p.namespace,
            spec=spec,
            stable_revision=stable,
            serving_revisions=[r for r in (stable, canary) if r],
            deployments=world.deployments,
            pods=world.pods,
            eval_runs=world.eval_runs,
            eval_gates=world.eval_gates,
            jobs=world.jobs,
            conditions=p.conditions,
            previous_cost=p.status.cost,
            now=world.now,
            operator_image=world.operator_image,
            owner=p.owner(),
            endpoint_of=endpoint_of(p.name, p.namespace, spec, world.endpoint_template),
            plan_product=p.status.plan.gpu_product if p.status.plan else None,
            node_products={n.name: n.product for n in world.inventory or ()},
            token_rates=world.token_rates,
            prices=world.prices,
            cost_refresh=world.cost_refresh,
            verdict_key=world.verdict_key,
        )
    )
    p.plan.apply += result.apply
    p.plan.delete += result.delete
    p.plan.scheduled_evaluations += result.started
    p.status.quality = result.quality
    p.status.cost = result.cost
    for type_, value, reason, message in result.set_conditions:
        p.set(type_, value, reason, message)
    for type_ in result.clear_conditions:
        p.clear(type_)
    for event in result.events:
        p.event(*event)
    if result.requeue_after is not None:
        p.requeue(result.requeue_after)
