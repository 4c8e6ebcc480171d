"""InferencePool routing on one pass: pools per serving revision, readiness ordering, abort,
refused routes and pickers that are not ready."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from helpers_pools import CANARY, OWNER, REF, STABLE
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.rollout import InferencePoolRouting
from llmops_operator.conditions import Reason
from llmops_operator.reference_grants import NOT_PERMITTED_REASON
from llmops_operator.rollout.traffic.inference_pool import endpoint_picker, inference_pool, pool_weights
from llmops_operator.rollout.traffic.pool_plan import PoolWorld, plan_pools, traffic_gate

ROUTING = InferencePoolRouting(httpRoute="chat-route")
OK = [
    {"type": "Accepted", "status": "True", "reason": "Accepted"},
    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"},
]


def _route(conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat-route", "namespace": "team-a", "generation": 1},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "chat", "port": 8000}]}],
        },
        "status": {
            "parents": [{"parentRef": {"name": "gw"}, "conditions": OK if conditions is None else conditions}]
        },
    }


def _picker(revision: str, ready: int) -> dict[str, Any]:
    deployment, _ = endpoint_picker(REF, "vllm", revision, ROUTING.endpoint_picker, OWNER)
    return {**deployment, "status": {"readyReplicas": ready}}


def _world(**kw: Any) -> PoolWorld:
    base = {
        "ref": REF,
        "owner": OWNER,
        "engine_type": "vllm",
        "routing": ROUTING,
        "route": _route(),
        "pools": [inference_pool(REF, "vllm", r, ROUTING.endpoint_picker, OWNER) for r in (STABLE, CANARY)],
        "deployments": [_picker(STABLE, 1), _picker(CANARY, 1)],
        "ready_replicas": {STABLE: 2, CANARY: 1},
    }
    return PoolWorld(**{**base, **kw})


def _kinds(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


def test_each_serving_revision_gets_a_pool_and_a_picker() -> None:
    plan = plan_pools(_world(), [STABLE, CANARY], STABLE, CANARY, 25)
    kinds = _kinds(plan.apply)
    for r in (STABLE, CANARY):
        assert ("InferencePool", f"chat-{r}") in kinds
        assert ("Deployment", f"chat-{r}-epp") in kinds and ("Service", f"chat-{r}-epp") in kinds
    assert plan.delete == []
    assert plan.route_patch is not None
    assert pool_weights(plan.route_patch, "chat") == {f"chat-{STABLE}": 75, f"chat-{CANARY}": 25}
    assert plan.verdict is not None and plan.verdict.ok


def test_canary_enters_the_route_only_when_its_pods_and_picker_are_ready() -> None:
    for world in (
        _world(ready_replicas={STABLE: 2, CANARY: 0}),
        _world(deployments=[_picker(STABLE, 1), _picker(CANARY, 0)]),
        _world(pools=[inference_pool(REF, "vllm", STABLE, ROUTING.endpoint_picker, OWNER)]),
    ):
        plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, 50)
        assert plan.route_patch is not None
        assert pool_weights(plan.route_patch, "chat") == {f"chat-{STABLE}": 100}
        assert plan.weight == 0


def test_picker_not_ready_holds_the_canary_and_names_the_picker() -> None:
    world = _world(deployments=[_picker(STABLE, 1), _picker(CANARY, 0)])
    gate = traffic_gate(world, STABLE, CANARY)
    assert gate is not None and f"chat-{CANARY}-epp" in gate
    plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, 0)
    assert plan.verdict is not None and plan.verdict.reason == Reason.PICKER_NOT_READY


def test_abort_returns_all_weight_at_once_and_the_pool_goes_with_the_revision() -> None:
    aborted = plan_pools(_world(), [STABLE, CANARY], STABLE, CANARY, 0)
    assert aborted.route_patch is not None
    assert pool_weights(aborted.route_patch, "chat") == {f"chat-{STABLE}": 100}
    assert ("InferencePool", f"chat-{CANARY}") in _kinds(aborted.apply)  # revision still there
    gone = plan_pools(_world(), [STABLE], STABLE, None, 0)
    assert ("InferencePool", f"chat-{CANARY}") in gone.delete
    assert ("Deployment", f"chat-{CANARY}-epp") in gone.delete and (
        "Service",
        f"chat-{CANARY}-epp",
    ) in gone.delete
    assert ("InferencePool", f"chat-{STABLE}") not in gone.delete


def test_refused_route_holds_the_canary_and_shows_the_gateways_reason() -> None:
    refused = [
        {"type": "Accepted", "status": "True", "reason": "Accepted"},
        {
            "type": "ResolvedRefs",
            "status": "False",
            "reason": "InvalidKind",
            "message": "InferencePool not supported",
        },
    ]
    world = _world(route=_route(refused))
    assert "InvalidKind" in (traffic_gate(world, STABLE, CANARY) or "")
    plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, 50)
    assert plan.verdict is not None and plan.verdict.reason == Reason.REFS_NOT_RESOLVED
    assert plan.route_patch is not None and pool_weights(plan.route_patch, "chat") == {f"chat-{STABLE}": 100}


def test_a_route_not_yet_answered_for_keeps_its_weight_but_holds_the_rollout() -> None:
    route = _route()
    route["metadata"]["generation"] = 2  # our last change; the gateway answered for generation 1
    for c in route["status"]["parents"][0]["conditions"]:
        c["observedGeneration"] = 1
    world = _world(route=route)
    assert traffic_gate(world, STABLE, CANARY) is not None
    plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, 25)
    assert plan.weight == 25 and plan.verdict is not None and plan.verdict.status == "Unknown"


def test_missing_gateway_reference_grant_and_route() -> None:
    gate = traffic_gate(_world(missing_gateways=["team-a/gw"]), STABLE, CANARY)
    assert gate is not None and "team-a/gw" in gate
    elsewhere = replace(_world(), routing=InferencePoolRouting(httpRoute="chat-route", namespace="gateways"))
    gate = traffic_gate(elsewhere, STABLE, CANARY)
    assert gate is not None and "ReferenceGrant" in gate
    plan = plan_pools(_world(route=None), [STABLE], STABLE, None, 0)
    assert plan.verdict is not None and plan.verdict.reason == Reason.HTTPROUTE_MISSING
    assert plan.route_patch is None


def _grant(namespace: str, name: str | None = None, kind: str = "InferencePool") -> dict[str, Any]:
    to: dict[str, Any] = {"group": "inference.networking.k8s.io", "kind": kind}
    if name:
        to["name"] = name
    return {
        "metadata": {"name": "g", "namespace": "team-a"},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}],
            "to": [to],
        },
    }


def test_a_route_elsewhere_needs_a_grant_covering_every_pool_in_it() -> None:
    elsewhere = InferencePoolRouting(httpRoute="chat-route", namespace="gateways")
    route = _route()
    route["metadata"]["namespace"] = "gateways"
    route["spec"]["rules"][0]["backendRefs"][0]["namespace"] = "team-a"

    def gate(grants: list[dict[str, Any]]) -> str | None:
        return traffic_gate(_world(routing=elsewhere, route=route, reference_grants=grants), STABLE, CANARY)

    assert gate([_grant("gateways")]) is None
    assert gate([_grant("gateways", f"chat-{STABLE}"), _grant("gateways", f"chat-{CANARY}")]) is None
    for grants in ([], [_grant("elsewhere")], [_grant("gateways", kind="Service")]):
        message = gate(grants)
        assert message is not None and "ReferenceGrant in team-a" in message
    message = gate([_grant("gateways", f"chat-{STABLE}")])
    assert message is not None and f"chat-{CANARY}" in message
    plan = plan_pools(_world(routing=elsewhere, route=route), [STABLE, CANARY], STABLE, CANARY, 25)
    assert plan.verdict is not None and plan.verdict.reason == NOT_PERMITTED_REASON
    assert plan.route_patch is not None and pool_weights(plan.route_patch, "chat") == {f"chat-{STABLE}": 100}


def test_a_route_the_model_may_not_use_is_neither_read_nor_written() -> None:
    denied = "HTTPRoute gateways/chat-route is in another namespace; its owner must allow it"
    elsewhere = InferencePoolRouting(
        httpRoute="chat-route", namespace="gateways", parentRefs=[{"name": "gw"}]
    )
    world = _world(routing=elsewhere, route=None, route_denied=denied)
    plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, 25)
    assert plan.route_patch is None and plan.weight == 0
    assert plan.verdict is not None and plan.verdict.reason == NOT_PERMITTED_REASON
    assert traffic_gate(world, STABLE, CANARY) == denied


def test_a_missing_route_is_created_only_in_the_models_namespace() -> None:
    here = InferencePoolRouting(httpRoute="chat-route", parentRefs=[{"name": "gw"}])
    plan = plan_pools(_world(routing=here, route=None), [STABLE], STABLE, None, 0)
    assert plan.route_patch is not None and plan.route_patch["metadata"]["ownerReferences"] == [OWNER]
    elsewhere = InferencePoolRouting(
        httpRoute="chat-route", namespace="gateways", parentRefs=[{"name": "gw"}]
    )
    plan = plan_pools(
        _world(routing=elsewhere, route=None, reference_grants=[_grant("gateways")]),
        [STABLE],
        STABLE,
        None,
        0,
    )
    assert plan.route_patch is None
    assert plan.verdict is not None and plan.verdict.reason == Reason.HTTPROUTE_MISSING


def test_users_picker_deploys_nothing() -> None:
    routing = InferencePoolRouting(httpRoute="chat-route", endpointPicker={"service": "shared-epp"})
    plan = plan_pools(_world(routing=routing, deployments=[]), [STABLE, CANARY], STABLE, CANARY, 10)
    assert {k for k, _ in _kinds(plan.apply)} == {"InferencePool"}
    assert plan.weight == 10


@given(
    st.integers(0, 100),
    st.integers(0, 3),
    st.integers(0, 1),
    st.booleans(),
    st.booleans(),
)
def test_canary_never_serves_unless_ready_and_accepted(
    weight: int, canary_ready: int, picker_ready: int, accepted: bool, pool_exists: bool
) -> None:
    conditions = (
        OK if accepted else [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners"}]
    )
    pools = [STABLE, CANARY] if pool_exists else [STABLE]
    world = _world(
        route=_route(conditions),
        ready_replicas={STABLE: 2, CANARY: canary_ready},
        deployments=[_picker(STABLE, 1), _picker(CANARY, picker_ready)],
        pools=[inference_pool(REF, "vllm", r, ROUTING.endpoint_picker, OWNER) for r in pools],
    )
    plan = plan_pools(world, [STABLE, CANARY], STABLE, CANARY, weight)
    assert plan.route_patch is not None
    weights = pool_weights(plan.route_patch, "chat")
    assert sum(weights.values()) == 100
    serves = weights.get(f"chat-{CANARY}", 0) > 0
    assert serves == (weight > 0 and canary_ready > 0 and picker_ready > 0 and accepted and pool_exists)
    blocked = traffic_gate(world, STABLE, CANARY) is not None
    assert blocked == (not (picker_ready > 0 and accepted and pool_exists))
