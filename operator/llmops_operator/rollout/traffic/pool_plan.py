"""What InferencePool routing needs on one pass: which pools and pickers exist, what the route
says, and whether the canary may take traffic. Pure; `inference_pool` builds the objects.

Ordering rules (issue 12):

* every serving revision has its pool (and, unless the user names a picker, its own picker);
  a revision that is gone loses its pool and picker in the same pass its Deployment goes;
* the canary pool enters the route only once it exists, its pods are Ready and its picker is
  Ready; until then the route keeps 100% on stable and the rollout holds (`traffic_gate`);
* the weight is raised only while every parent has accepted the route as it is now (a route
  the gateway has not answered for yet keeps its weight, the rollout waits);
* a refused route (not Accepted, refs not resolved, missing Gateway or ReferenceGrant) holds
  the rollout and takes the canary out of the route, the stable pool serving as before;
* weight 0 (an abort, or a step at 0) takes the canary pool out of the route at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops_operator import reference_grants, revisions
from llmops_operator.api.common import LABEL_COMPONENT
from llmops_operator.api.rollout import InferencePoolRouting
from llmops_operator.conditions import Reason
from llmops_operator.reference_grants import ObjectRef
from llmops_operator.resources import ModelRef
from llmops_operator.rollout.traffic.gateway import GATEWAY_GROUP
from llmops_operator.rollout.traffic.inference_pool import (
    LABEL_POOL,
    PICKER_COMPONENT,
    POOL_GROUP,
    POOL_KIND,
    endpoint_picker,
    inference_pool,
    picker_identity,
    pool_route,
)
from llmops_operator.rollout.traffic.route_status import RouteVerdict, route_verdict


@dataclass(frozen=True)
class PoolWorld:
    """What the operator read for InferencePool routing."""

    ref: ModelRef
    owner: Mapping[str, Any]
    engine_type: str
    routing: InferencePoolRouting
    route: Mapping[str, Any] | None
    pools: Sequence[Mapping[str, Any]] = ()
    deployments: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()
    ready_replicas: Mapping[str, int] = field(default_factory=dict)
    missing_gateways: Sequence[str] = ()
    reference_grants: Sequence[Mapping[str, Any]] | None = None
    route_denied: str | None = None
    """Why the Model may not use the route in another namespace (no ReferenceGrant there)."""
    read_error: str | None = None


@dataclass
class PoolPlan:
    """Objects to apply and delete, the route body, and the TrafficRouting verdict."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)
    route_patch: dict[str, Any] | None = None
    verdict: RouteVerdict | None = None
    weight: int = 0
    """The canary weight the route carries (0 while the canary pool may not serve)."""


CREATE_HINT = ", or set inferencePool.parentRefs to let the operator create it"


def _route_namespace(w: PoolWorld) -> str:
    return w.routing.namespace or w.ref.namespace


def _pool_exists(w: PoolWorld, revision: str) -> bool:
    name = revisions.inference_pool_name(w.ref.name, revision)
    return any(p["metadata"]["name"] == name for p in w.pools)


def picker_problem(w: PoolWorld, revision: str) -> str | None:
    """Why the operator's picker of a revision's pool cannot pick yet (None: ready, or the
    user's own picker, whose readiness the operator does not judge)."""
    if w.routing.endpoint_picker.service:
        return None
    name = revisions.endpoint_picker_name(w.ref.name, revision)
    deployment = next((d for d in w.deployments if d["metadata"]["name"] == name), None)
    ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    if ready >= 1:
        return None
    pool = revisions.inference_pool_name(w.ref.name, revision)
    detail = ""
    for pod in w.pods:
        if ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_POOL) != pool:
            continue
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("status") == "False" and c.get("message"):
                detail = f"; pod {pod['metadata']['name']}: {c['message']}"
                break
    return f"endpoint picker {name} of InferencePool {pool} is not ready (0/1){detail}"


def _pools_not_permitted(w: PoolWorld, revisions_in_route: Sequence[str]) -> str | None:
    """Why the route may not refer to these revisions' pools (None: it may): a route in another
    namespace needs a ReferenceGrant in the Model's namespace, as the gateway checks too."""
    source = ObjectRef(GATEWAY_GROUP, "HTTPRoute", _route_namespace(w), w.routing.http_route)
    for revision in revisions_in_route:
        pool = revisions.inference_pool_name(w.ref.name, revision)
        target = ObjectRef(POOL_GROUP, POOL_KIND, w.ref.namespace, pool)
        if not reference_grants.allows(w.reference_grants or [], source, target):
            return reference_grants.not_permitted_message(source, target)
    return None


def creates_route(w: PoolWorld) -> bool:
    """The operator creates a missing route only in the Model's namespace and only with parents."""
    return bool(w.routing.parent_refs) and _route_namespace(w) == w.ref.namespace


def route_check(w: PoolWorld, revisions_in_route: Sequence[str]) -> RouteVerdict:
    """The TrafficRouting verdict from the route as read (and the reads around it)."""
    if w.read_error:
        return RouteVerdict("Unknown", Reason.ROUTE_PENDING, f"cannot read routing objects: {w.read_error}")
    if w.route_denied:
        return RouteVerdict("False", reference_grants.NOT_PERMITTED_REASON, w.route_denied)
    if w.route is None:
        if creates_route(w):
            return RouteVerdict(
                "Unknown",
                Reason.ROUTE_PENDING,
                f"creating HTTPRoute {_route_namespace(w)}/{w.routing.http_route}",
            )
        return RouteVerdict(
            "False",
            Reason.HTTPROUTE_MISSING,
            f"HTTPRoute {_route_namespace(w)}/{w.routing.http_route} not found; create it with a backendRef "
            f"to Service {w.ref.name}{'' if w.routing.namespace else CREATE_HINT}",
        )
    return route_verdict(w.route, w.missing_gateways, _pools_not_permitted(w, revisions_in_route))


def traffic_gate(w: PoolWorld, stable: str | None, canary: str | None) -> str | None:
    """Why the canary may not take (more) traffic now; None when it may."""
    if canary is None or canary == stable:
        return None
    verdict = route_check(w, [r for r in (stable, canary) if r])
    if not verdict.ok:
        return verdict.message
    if not _pool_exists(w, canary):
        return f"InferencePool {revisions.inference_pool_name(w.ref.name, canary)} is not created yet"
    return picker_problem(w, canary)


def _stale(w: PoolWorld, serving: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, name) of the pools and pickers of revisions no longer serving."""
    wanted = {revisions.inference_pool_name(w.ref.name, r) for r in serving}
    delete: list[tuple[str, str]] = []
    for pool in w.pools:
        if pool["metadata"]["name"] not in wanted:
            delete.append(("InferencePool", pool["metadata"]["name"]))
    for deployment in w.deployments:
        labels = deployment["metadata"].get("labels") or {}
        if labels.get(LABEL_COMPONENT) == PICKER_COMPONENT and labels.get(LABEL_POOL) not in wanted:
            delete.append(("Deployment", deployment["metadata"]["name"]))
            delete.append(("Service", deployment["metadata"]["name"]))
    return delete


def plan_pools(
    w: PoolWorld, serving: Sequence[str], stable: str | None, canary: str | None, weight: int
) -> PoolPlan:
    """Pools and pickers for `serving`, deletions for the rest, and the route at `weight`
    (lowered to 0 while the canary pool may not serve)."""
    plan = PoolPlan()
    picker = w.routing.endpoint_picker
    if not picker.service and serving:
        plan.apply.extend(picker_identity(w.ref, w.owner))
    for revision in serving:
        plan.apply.append(inference_pool(w.ref, w.engine_type, revision, picker, w.owner))
        plan.apply.extend(endpoint_picker(w.ref, w.engine_type, revision, picker, w.owner))
    plan.delete.extend(_stale(w, serving))

    # A route the gateway has not answered for yet (e.g. our own last weight change) keeps its
    # weight; only a refusal, or a canary pool that cannot serve, takes the canary out.
    canary_serves = (
        canary is not None
        and canary != stable
        and canary in serving
        and w.ready_replicas.get(canary, 0) > 0
        and _pool_exists(w, canary)
        and picker_problem(w, canary) is None
        and route_check(w, [r for r in (stable, canary) if r]).status != "False"
    )
    plan.weight = weight if canary_serves else 0
    in_route = [r for r in (stable, canary if plan.weight else None) if r]
    plan.verdict = route_check(w, in_route)
    if stable is None or w.route_denied or (w.route is None and not creates_route(w)):
        return plan
    patch = pool_route(
        w.route,
        w.routing,
        w.ref.namespace,
        w.ref.name,
        stable,
        canary,
        plan.weight,
        known_revisions=[p["metadata"]["name"].removeprefix(f"{w.ref.name}-") for p in w.pools],
        owner=w.owner,
    )
    if patch is not None and patch.rules_changed:
        plan.route_patch = patch.body
    elif patch is not None:
        plan.verdict = RouteVerdict(
            "False",
            Reason.HTTPROUTE_MISSING,
            f"HTTPRoute {_route_namespace(w)}/{w.routing.http_route} has no backendRef to Service "
            f"{w.ref.name} or to its InferencePools; add one to the rule that should serve the Model",
        )
    if plan.verdict.ok:
        problem = picker_problem(w, stable)
        if problem or (
            canary and canary != stable and canary in serving and (problem := picker_problem(w, canary))
        ):
            plan.verdict = RouteVerdict("False", Reason.PICKER_NOT_READY, problem)
    return plan
