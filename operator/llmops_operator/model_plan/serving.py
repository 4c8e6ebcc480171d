"""The desired revision's objects and what serves traffic: GPU plan, rendered Deployment, kept
and deleted revisions, Services, HTTPRoute weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmops_operator import conditions as cond
from llmops_operator import engines, reference_grants, resources, revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import PlanStatus
from llmops_operator.conditions import Reason
from llmops_operator.gpu import planner
from llmops_operator.gpu.inventory import sticky_plan
from llmops_operator.model_plan.rollout import Split
from llmops_operator.model_plan.routing import plan_inference_routing
from llmops_operator.model_plan.world import PENDING_POLL_SECONDS, Pass
from llmops_operator.rollout.traffic.gateway import httproute_weights


def plan_gpus(p: Pass, spec: ModelSpec, desired: str) -> planner.Plan:
    """The GPU plan, kept for a revision that is already running."""
    world = p.world
    facts_error = world.model_facts_error if world.model_facts is None else None
    gpu_plan = sticky_plan(
        planner.plan(spec, world.inventory, world.model_facts),
        spec,
        world.deployments,
        revisions.deployment_name(p.name, desired),
        desired,
        facts_error,
    )
    p.status.plan = PlanStatus(
        gpus=gpu_plan.gpus,
        gpu_product=gpu_plan.gpu_product,
        tensor_parallel_size=gpu_plan.tensor_parallel_size,
        estimated_memory_gib=gpu_plan.estimated_memory_gib,
        reason=gpu_plan.reason,
    )
    return gpu_plan


def render(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    desired: str,
    gpu_plan: planner.Plan,
    total: int,
    prompt_data: Mapping[str, str],
    blocked: list[str],
) -> dict[str, Any] | None:
    """Render the desired revision now, so an engine error blocks it with a message."""
    if blocked:
        return None
    configmap_name = revisions.prompts_configmap_name(p.name, desired) if prompt_data else None
    try:
        return resources.render_revision(
            ref, spec, desired, gpu_plan, total, prompts_configmap=configmap_name, owner=p.owner()
        )
    except engines.EngineConfigError as exc:
        blocked.append(str(exc))
        p.set(cond.READY, "False", Reason.INVALID_SPEC, str(exc))
        return None


def hold(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    desired: str,
    stable: str | None,
    total: int,
    blocked: Sequence[str],
) -> None:
    """A blocked revision: the stable one keeps serving (scaled to `total`), nothing new starts."""
    p.set(cond.PROGRESSING, "False", Reason.REVISION_BLOCKED, f"revision {desired} is blocked: {blocked[0]}")
    if stable:
        p.plan.scale[revisions.deployment_name(p.name, stable)] = total
    p.requeue(PENDING_POLL_SECONDS * 2)
    serving = [stable] if stable else []
    plan_services(p, spec, ref, serving, stable, weight=0)
    plan_inference_routing(p, spec, ref, {stable: total} if stable else {}, stable, None, 0)


def apply_split(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    desired: str,
    rendered: dict[str, Any],
    observed: Mapping[str, revisions.ObservedRevision],
    split: Split,
) -> None:
    """The desired revision is rendered in full, other kept revisions only scaled, the rest deleted."""
    for revision, count in split.replicas.items():
        if revision == desired:
            rendered["spec"]["replicas"] = count
            p.plan.apply.append(rendered)
        else:
            p.plan.scale[revisions.deployment_name(p.name, revision)] = count
    keep = set(split.replicas)
    for revision in sorted(observed):
        if revision not in keep:
            p.plan.delete.append(("Deployment", revisions.deployment_name(p.name, revision)))
            p.plan.delete.append(("Service", revisions.revision_service_name(p.name, revision)))
    serving = sorted(keep)
    plan_services(p, spec, ref, serving, split.stable, split.weight)
    if (
        spec.rollout.canary
        and spec.rollout.canary.traffic_routing
        and spec.rollout.canary.traffic_routing.gateway_api
    ):
        plan_route(p, spec, split.stable, split.canary, split.weight, serving)
    plan_inference_routing(p, spec, ref, split.replicas, split.stable, split.canary, split.weight)


def plan_services(
    p: Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    serving: Sequence[str],
    stable: str | None,
    weight: int,
) -> None:
    """The Model's shared Service, and one Service per serving revision where something
    addresses a revision on its own (`addresses_revisions`). Without that, revision Services
    of the serving revisions that still exist are deleted: each one costs the cluster's
    endpoint controllers about eight writes per rollout, for nothing."""
    owner = p.owner()
    shared = resources.shared_service(ref, spec, owner)
    if stable and weight == 0:
        # a canary at weight 0 (e.g. an eval gate's pod) must take no user traffic
        shared["spec"]["selector"] = revisions.revision_selector(p.name, stable)
    p.plan.apply.append(shared)
    needed = addresses_revisions(spec)
    for revision in serving:
        name = revisions.revision_service_name(p.name, revision)
        if needed:
            p.plan.apply.append(resources.revision_service(ref, spec, revision, owner))
        elif name in p.world.service_names:
            p.plan.delete.append(("Service", name))


def addresses_revisions(spec: ModelSpec) -> bool:
    """Whether anything reaches one revision by its own Service: evaluations (evalGate steps,
    scheduled evaluations) and Gateway API weights (the HTTPRoute's backendRefs)."""
    canary = spec.rollout.canary
    if canary is not None:
        if canary.traffic_routing is not None and canary.traffic_routing.gateway_api is not None:
            return True
        if any(step.eval_gate is not None for step in canary.steps):
            return True
    return spec.monitoring is not None and bool(spec.monitoring.evaluations)


def plan_route(
    p: Pass, spec: ModelSpec, stable: str | None, canary: str | None, weight: int, serving: Sequence[str]
) -> None:
    """Gateway API: the canary weight in the user's HTTPRoute (patched only when it differs)."""
    route = p.world.http_route
    gateway = spec.rollout.canary.traffic_routing.gateway_api  # type: ignore[union-attr]
    if p.world.http_route_denied:
        p.set(cond.TRAFFIC_ROUTING, "False", reference_grants.NOT_PERMITTED_REASON, p.world.http_route_denied)
        return
    if route is None:
        p.set(
            cond.TRAFFIC_ROUTING,
            "False",
            Reason.HTTPROUTE_MISSING,
            f"HTTPRoute {gateway.http_route} not found; create it with a backendRef to Service {p.name}",
        )
        return
    if stable is None:
        return
    port = engines.get_engine(spec.engine.type).http_port
    patch = httproute_weights(dict(route), p.name, stable, canary, weight, set(serving), port=port)
    p.clear(cond.TRAFFIC_ROUTING)
    if patch.rules_changed:
        p.plan.route_patch = patch.body
