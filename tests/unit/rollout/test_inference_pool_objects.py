"""InferencePool routing builders: one pool per revision, its picker, and the weighted route."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers_pools import CANARY, OWNER, REF, STABLE
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.rollout import EndpointPickerSpec, InferencePoolRouting, TrafficRouting
from llmops_operator.revisions import revision_selector
from llmops_operator.rollout.traffic.inference_pool import (
    LABEL_POOL,
    POOL_GROUP,
    POOL_KIND,
    endpoint_picker,
    inference_pool,
    picker_args,
    pool_route,
    pool_weights,
)


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_pool_selects_exactly_one_revisions_engine_pods() -> None:
    pool = inference_pool(REF, "vllm", STABLE, EndpointPickerSpec(), OWNER)
    selector = pool["spec"]["selector"]["matchLabels"]
    assert selector == revision_selector("chat", STABLE)
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == f"chat-{STABLE}"
    assert pool["metadata"]["ownerReferences"] == [OWNER]
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    picker = pool["spec"]["endpointPickerRef"]
    assert picker == {
        "group": "",
        "kind": "Service",
        "name": f"chat-{STABLE}-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
    # neither the canary's engine pods nor the picker's own pods match
    canary_pod = revision_selector("chat", CANARY)
    assert not _labels_match(selector, canary_pod)
    deployment, _service = endpoint_picker(REF, "vllm", STABLE, EndpointPickerSpec(), OWNER)
    assert not _labels_match(selector, deployment["spec"]["template"]["metadata"]["labels"])


def test_user_picker_is_named_and_none_deployed() -> None:
    picker = EndpointPickerSpec(service="shared-epp", port=9100, failureMode="FailOpen")
    pool = inference_pool(REF, "vllm", STABLE, picker, OWNER)
    assert pool["spec"]["endpointPickerRef"]["name"] == "shared-epp"
    assert pool["spec"]["endpointPickerRef"]["port"] == {"number": 9100}
    assert pool["spec"]["endpointPickerRef"]["failureMode"] == "FailOpen"
    assert endpoint_picker(REF, "vllm", STABLE, picker, OWNER) == []


@pytest.mark.parametrize(
    ("engine", "queue"),
    [("vllm", "vllm:num_requests_waiting"), ("tensorrt-llm", "trtllm_num_requests_waiting")],
)
def test_picker_gets_the_engines_metric_names(engine: str, queue: str) -> None:
    deployment, service = endpoint_picker(REF, engine, STABLE, EndpointPickerSpec(), OWNER)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--total-queued-requests-metric"] == queue
    assert flags["--pool-name"] == f"chat-{STABLE}"
    assert flags["--pool-namespace"] == "team-a"
    assert flags["--grpc-port"] == "9002"
    assert deployment["metadata"]["ownerReferences"] == [OWNER]
    assert service["metadata"]["ownerReferences"] == [OWNER]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["metadata"]["labels"][LABEL_POOL] == f"chat-{STABLE}"
    assert "llmops.dev/revision" not in deployment["metadata"]["labels"]  # not a revision's Deployment


def test_user_flags_replace_ours_in_either_spelling() -> None:
    args = picker_args("vllm", "p", "ns", 9002, ["--total-queued-requests-metric=my_queue", "--v", "3"])
    assert "--total-queued-requests-metric" not in args
    assert args[-3:] == ["--total-queued-requests-metric=my_queue", "--v", "3"]
    assert args.count("--pool-name") == 1


def _user_route(namespace: str = "team-a") -> dict[str, Any]:
    model_ref = {"name": "chat", "port": 8000} | ({} if namespace == "team-a" else {"namespace": "team-a"})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat-route", "namespace": namespace, "generation": 3},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [model_ref],
                },
                {"backendRefs": [{"name": "other", "port": 80}]},
            ],
        },
    }


def _routing(**kw: Any) -> InferencePoolRouting:
    return InferencePoolRouting(httpRoute="chat-route", **kw)


def test_existing_route_gets_pools_and_keeps_the_users_fields() -> None:
    route = _user_route()
    before = copy.deepcopy(route)
    patch = pool_route(route, _routing(), "team-a", "chat", STABLE, CANARY, 30)
    assert route == before  # input untouched
    assert patch is not None and patch.rules_changed == 1
    rules = patch.body["spec"]["rules"]
    assert rules[0]["matches"] == before["spec"]["rules"][0]["matches"]
    assert rules[1] == before["spec"]["rules"][1]
    assert rules[0]["backendRefs"] == [
        {"group": POOL_GROUP, "kind": POOL_KIND, "name": f"chat-{STABLE}", "weight": 70},
        {"group": POOL_GROUP, "kind": POOL_KIND, "name": f"chat-{CANARY}", "weight": 30},
    ]
    assert pool_weights(patch.body, "chat") == {f"chat-{STABLE}": 70, f"chat-{CANARY}": 30}
    # the body carries only what the operator manages
    assert set(patch.body["spec"]) == {"rules"}


def test_canary_at_weight_zero_or_aborted_is_not_in_the_route() -> None:
    route = _user_route()
    first = pool_route(route, _routing(), "team-a", "chat", STABLE, CANARY, 40)
    assert first is not None
    route["spec"]["rules"] = first.body["spec"]["rules"]
    back = pool_route(route, _routing(), "team-a", "chat", STABLE, CANARY, 0)
    assert back is not None
    assert pool_weights(back.body, "chat") == {f"chat-{STABLE}": 100}


def test_missing_route_is_created_with_parent_refs_or_not_at_all() -> None:
    assert pool_route(None, _routing(), "team-a", "chat", STABLE, None, 0) is None
    routing = _routing(parentRefs=[{"name": "gw", "namespace": "infra"}])
    patch = pool_route(None, routing, "team-a", "chat", STABLE, None, 0, owner=OWNER)
    assert patch is not None
    assert patch.body["spec"]["parentRefs"] == [{"name": "gw", "namespace": "infra"}]
    assert patch.body["metadata"]["ownerReferences"] == [OWNER]
    assert pool_weights(patch.body, "chat") == {f"chat-{STABLE}": 100}


def test_parent_refs_and_ownership_are_carried_on_every_apply_of_a_created_route() -> None:
    routing = _routing(parentRefs=[{"name": "gw"}])
    created = pool_route(None, routing, "team-a", "chat", STABLE, None, 0, owner=OWNER)
    assert created is not None
    later = pool_route(created.body, routing, "team-a", "chat", STABLE, CANARY, 10, owner=OWNER)
    assert later is not None and later.body["spec"]["parentRefs"] == [{"name": "gw"}]
    # server-side apply would drop the owner our first apply set: it is carried on
    assert later.body["metadata"]["ownerReferences"] == [OWNER]
    assert later.body["metadata"]["labels"] == created.body["metadata"]["labels"]
    users = pool_route(_user_route(), routing, "team-a", "chat", STABLE, CANARY, 10, owner=OWNER)
    assert users is not None and "ownerReferences" not in users.body["metadata"]  # never claims a user's
    assert (
        "parentRefs"
        not in (pool_route(_user_route(), _routing(), "team-a", "chat", STABLE, None, 0)).body["spec"]
    )


def test_route_in_another_namespace_is_patched_never_created() -> None:
    routing = _routing(namespace="gateways", parentRefs=[{"name": "gw"}])
    assert pool_route(None, routing, "team-a", "chat", STABLE, CANARY, 50, owner=OWNER) is None
    patch = pool_route(_user_route("gateways"), routing, "team-a", "chat", STABLE, CANARY, 50, owner=OWNER)
    assert patch is not None
    refs = patch.body["spec"]["rules"][0]["backendRefs"]
    assert {r["namespace"] for r in refs} == {"team-a"}
    assert "ownerReferences" not in patch.body["metadata"]  # no cross-namespace owners


def test_gateway_api_and_inference_pool_are_exclusive() -> None:
    with pytest.raises(ValueError, match="at most one"):
        TrafficRouting.model_validate({"gatewayAPI": {"httpRoute": "r"}, "inferencePool": {"httpRoute": "r"}})


@given(
    st.integers(0, 100),
    st.sampled_from([None, CANARY, STABLE]),
    st.sets(st.sampled_from(["cccccccccc", "dddddddddd"])),
)
def test_route_weights_always_sum_to_100_and_drop_old_pools(
    weight: int, canary: str | None, old: set[str]
) -> None:
    route = _user_route()
    route["spec"]["rules"][0]["backendRefs"] = [
        {"group": POOL_GROUP, "kind": POOL_KIND, "name": f"chat-{r}", "weight": 50} for r in sorted(old)
    ] + [{"name": "chat", "port": 8000}, {"name": "keep-me", "port": 1}]
    patch = pool_route(route, _routing(), "team-a", "chat", STABLE, canary, weight, known_revisions=old)
    assert patch is not None
    weights = pool_weights(patch.body, "chat")
    assert sum(weights.values()) == 100
    assert set(weights) <= {f"chat-{STABLE}", f"chat-{CANARY}"}
    assert {"name": "keep-me", "port": 1} in patch.body["spec"]["rules"][0]["backendRefs"]
    if weight == 0 or canary in (None, STABLE):
        assert weights == {f"chat-{STABLE}": 100}
