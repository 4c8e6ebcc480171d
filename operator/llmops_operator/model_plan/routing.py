"""InferencePool traffic routing stage: the pass's view of pools, pickers and the route
(`pool_world`), what it holds the canary for (`traffic_gate`, read by the canary machine), and
the pools, pickers and route weights it writes (`plan_inference_routing`)."""

from __future__ import annotations

from collections.abc import Mapping

from llmops_operator import conditions as cond
from llmops_operator import resources
from llmops_operator.api.model import ModelSpec
from llmops_operator.model_plan.observe import observed_revisions
from llmops_operator.model_plan.world import PENDING_POLL_SECONDS, Pass
from llmops_operator.rollout.traffic import pool_plan
from llmops_operator.rollout.traffic.pool_plan import PoolWorld


def pool_world(p: Pass, spec: ModelSpec, ref: resources.ModelRef) -> PoolWorld | None:
    """What the pass knows for inferencePool routing (None: the Model does not use it)."""
    canary = spec.rollout.canary
    routing = canary.traffic_routing.inference_pool if canary and canary.traffic_routing else None
    if routing is None:
        return None
    world = p.world
    observed = observed_revisions(world.deployments)
    return PoolWorld(
        ref=ref,
        owner=p.owner(),
        engine_type=spec.engine.type,
        routing=routing,
        route=world.http_route,
        pools=world.inference_pools,
        deployments=world.deployments,
        pods=world.pods,
        ready_replicas={r: o.ready_replicas for r, o in observed.items()},
        missing_gateways=world.missing_gateways,
        reference_grants=world.reference_grants,
        route_denied=world.http_route_denied,
        read_error=world.pool_read_error,
    )


def traffic_gate(p: Pass, spec: ModelSpec, stable: str | None, canary: str | None) -> str | None:
    """Why the canary may not take more traffic (None: it may, or no inferencePool routing)."""
    w = pool_world(p, spec, resources.ModelRef.from_obj(p.world.model))
    return None if w is None else pool_plan.traffic_gate(w, stable, canary)


def plan_inference_routing(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    replicas: Mapping[str, int],
    stable: str | None,
    canary: str | None,
    weight: int,
) -> None:
    """Pools and pickers for the serving revisions, the weighted route, the TrafficRouting
    condition (True only when every parent accepted the route and every picker is ready).

    The stable revision keeps its pool even at zero replicas (the gateway queues requests for
    it while it wakes); another revision keeps it while it is asked for replicas or still has
    ready pods, so an aborted canary's pool goes once its pods are gone."""
    w = pool_world(p, spec, ref)
    if w is None:
        return
    pooled = [r for r in sorted(replicas) if r == stable or replicas[r] > 0 or w.ready_replicas.get(r, 0) > 0]
    plan = pool_plan.plan_pools(w, pooled, stable, canary, weight)
    p.plan.apply.extend(plan.apply)
    p.plan.delete.extend(plan.delete)
    if plan.route_patch is not None:
        p.plan.route_patch = plan.route_patch
    verdict = plan.verdict
    if verdict is not None:
        p.set(cond.TRAFFIC_ROUTING, verdict.status, verdict.reason, verdict.message)
        if not verdict.ok:
            p.requeue(PENDING_POLL_SECONDS)
