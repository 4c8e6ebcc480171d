"""InferencePool routing and wake from zero on the dev cluster (issue 12 acceptance), with the
real InferencePool and Gateway API CRDs, the real scheduler placing the pods, the operator, the
metrics emitter and a gateway stand-in that writes HTTPRoute status (llmops_sim.gateway_status).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers_canary import CanaryModel, analysis, canary_spec, parse_time, ttft_ratio, utcnow
from helpers_model import Kubectl, unique
from test_canary import BUSY, log_lines_of

from llmops_operator.rollout.traffic.inference_pool import pool_weights
from llmops_sim.gateway_status import SimGateway
from polling import wait_for

pytestmark = pytest.mark.cluster

OperatorProcess = Any
GATEWAY = "inference-gw"


@pytest.fixture
def gateway(cluster: Any, kube: Kubectl, namespace: str) -> Iterator[SimGateway]:
    """A Gateway object and the stand-in that answers for it in the test namespace."""
    kube.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY},
            "spec": {
                "gatewayClassName": "sim",
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
        },
        namespace,
    )
    sim = SimGateway(cluster.api_client, namespace, {f"{namespace}/{GATEWAY}"}).start()
    yield sim
    sim.stop()


def new_model(kube: Kubectl, namespace: str, operator: OperatorProcess) -> CanaryModel:
    return CanaryModel(kube, namespace, unique("pool"), lambda: log_lines_of(operator, namespace))


def routed_spec(
    model: CanaryModel,
    steps: list[dict[str, Any]],
    analysis_spec: dict[str, Any] | None = None,
    tag: str = "",
    **routing: Any,
) -> dict[str, Any]:
    """A canary Model whose operator-created route `<model>-route` attaches to the test Gateway."""
    pool = {"httpRoute": f"{model.name}-route", "parentRefs": [{"name": GATEWAY}], **routing}
    return canary_spec(steps, analysis_spec, replicas=2, traffic_routing={"inferencePool": pool}, tag=tag)


def weights(kube: Kubectl, model: CanaryModel) -> dict[str, int]:
    return pool_weights(kube.get("httproute", model.namespace, f"{model.name}-route") or {}, model.name)


def pools(kube: Kubectl, model: CanaryModel) -> dict[str, dict[str, Any]]:
    items = kube.items("inferencepool", model.namespace, f"llmops.dev/model={model.name}")
    return {p["metadata"]["name"]: p for p in items}


def paused_at(index: int) -> Any:
    def check(m: dict[str, Any]) -> bool:
        rollout = (m.get("status") or {}).get("rollout") or {}
        return rollout.get("stepIndex") == index and bool(rollout.get("pauseConditions"))

    return check


def assert_pools_select_only_their_revision(kube: Kubectl, model: CanaryModel) -> None:
    """Each pool's selector, run by the API server, returns exactly the pods the scheduler placed
    for that revision (and no picker pods)."""
    for name, pool in pools(kube, model).items():
        revision = name.removeprefix(f"{model.name}-")
        selector = ",".join(f"{k}={v}" for k, v in pool["spec"]["selector"]["matchLabels"].items())
        selected = kube.items("pod", model.namespace, selector)
        assert selected, f"pool {name} selects no pod"
        assert {p["metadata"]["labels"]["llmops.dev/revision"] for p in selected} == {revision}
        assert all(p["spec"].get("nodeName") for p in selected), "selected pods are placed by the scheduler"
        assert all(p["metadata"]["labels"]["llmops.dev/component"] == "engine" for p in selected)
        revision_pods = kube.items("pod", model.namespace, f"llmops.dev/revision={revision}")
        assert {p["metadata"]["name"] for p in selected} == {p["metadata"]["name"] for p in revision_pods}


def test_canary_walks_weights_across_two_pools_each_selecting_its_revision(
    kube: Kubectl, namespace: str, operator: OperatorProcess, traffic: Any, gateway: SimGateway
) -> None:
    model = new_model(kube, namespace, operator)
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    old = model.given_stable(routed_spec(model, steps))
    stable_pool = f"{model.name}-{old}"
    model.wait(lambda m: weights(kube, model) == {stable_pool: 100}, 30, "route on the stable pool")
    model.wait(lambda m: model.condition("TrafficRouting").get("status") == "True", 30, "route accepted")
    assert "accepted by 1 parent(s)" in model.condition("TrafficRouting")["message"]
    assert pools(kube, model)[stable_pool]["metadata"]["ownerReferences"][0]["kind"] == "Model"

    canary = model.when_args_change()
    canary_pool = f"{model.name}-{canary}"
    model.wait(paused_at(1), 60, "paused at step 1")
    model.wait(lambda m: weights(kube, model) == {stable_pool: 80, canary_pool: 20}, 15, "weights 80/20")
    assert set(pools(kube, model)) == {stable_pool, canary_pool}
    picker = kube.get("deployment", namespace, f"{canary_pool}-epp")
    assert picker and picker["status"].get("readyReplicas") == 1
    args = picker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == canary_pool
    assert args[args.index("--total-queued-requests-metric") + 1] == "vllm:num_requests_waiting"
    assert_pools_select_only_their_revision(kube, model)

    model.plugin("promote")
    model.wait(paused_at(3), 60, "paused at step 3")
    model.wait(lambda m: weights(kube, model) == {stable_pool: 40, canary_pool: 60}, 15, "weights 40/60")
    assert model.replicas_of(old) == 2  # stable never shrank

    model.plugin("promote")
    model.wait(lambda m: (m.get("status") or {}).get("stableRevision") == canary, 60, "promoted")
    model.wait(lambda m: weights(kube, model) == {canary_pool: 100}, 30, "route on the new stable pool")
    model.wait(lambda m: stable_pool not in pools(kube, model), 60, "the old pool removed")
    wait_for(
        lambda: kube.get("deployment", namespace, f"{stable_pool}-epp") is None, 30, message="old picker gone"
    )

    # owned by the Model: the garbage collector removes pools, pickers and their identity with it
    identity = f"{model.name}-endpoint-picker"
    assert kube.get("serviceaccount", namespace, identity) and kube.get("role", namespace, identity)
    kube.run("-n", namespace, "delete", "model", model.name, "--wait=false")

    def left() -> list[str]:
        return [
            what
            for what, gone in [
                ("pools", not pools(kube, model)),
                ("picker", kube.get("deployment", namespace, f"{canary_pool}-epp") is None),
                ("identity", kube.get("serviceaccount", namespace, identity) is None),
                ("route", kube.get("httproute", namespace, f"{model.name}-route") is None),
            ]
            if not gone
        ]

    wait_for(lambda: not left(), 90, message="collected with the Model", describe=lambda: f"left: {left()}")


def test_ttft_regression_returns_the_route_to_stable_and_removes_the_canary_pool(
    kube: Kubectl, namespace: str, operator: OperatorProcess, traffic: Any, gateway: SimGateway
) -> None:
    model = new_model(kube, namespace, operator)
    steps = [{"setWeight": 25}, {"pause": {"duration": "60s"}}, {"setWeight": 50}, {"pause": {}}]
    spec = routed_spec(model, steps, analysis_spec=analysis("4s", ttft_ratio(), failureLimit=0))
    old = model.given_stable(spec)
    traffic.set_shape("steady", revision=old, namespace=namespace, **BUSY)
    canary = model.when_args_change()
    traffic.set_shape("steady", revision=canary, namespace=namespace, **BUSY)
    stable_pool, canary_pool = f"{model.name}-{old}", f"{model.name}-{canary}"
    model.wait(lambda m: weights(kube, model) == {stable_pool: 75, canary_pool: 25}, 90, "weights 75/25")

    started = utcnow()
    traffic.set_shape("latency_regression", revision=canary, namespace=namespace, factor=1.5, **BUSY)
    model.wait(lambda m: model.rolled_back_to_stable(), 60, "rollback to stable")
    decided = (parse_time(model.rollout()["abortedAt"]) - started).total_seconds()
    print(f"\n[pool-regression] operator decided {decided:.1f}s after the regression started")
    model.wait(lambda m: weights(kube, model) == {stable_pool: 100}, 15, "route 100% on stable")
    model.wait(lambda m: canary_pool not in pools(kube, model), 60, "canary pool removed")
    wait_for(
        lambda: kube.get("deployment", namespace, f"{canary_pool}-epp") is None, 30, message="picker gone"
    )
    wait_for(
        lambda: kube.get("service", namespace, f"{canary_pool}-epp") is None,
        30,
        message="picker Service gone",
    )
    assert "ttft" in model.condition("RolledBack")["message"]
    assert set(pools(kube, model)) == {stable_pool}
    assert model.replicas_of(old) == 2


def _held(model: CanaryModel, reason: str, text: str) -> Any:
    """The canary held at step 0, weight 0, TrafficRouting naming the problem, after the operator
    looked (its rollout message says what it holds for)."""

    def check(m: dict[str, Any]) -> bool:
        status = m.get("status") or {}
        rollout = status.get("rollout") or {}
        routing = next((c for c in status.get("conditions") or [] if c["type"] == "TrafficRouting"), {})
        return (
            rollout.get("weight") == 0
            and rollout.get("stepIndex") == 0
            and "holding" in rollout.get("message", "")
            and routing.get("reason") == reason
            and text in routing.get("message", "")
        )

    return check


def test_refused_route_missing_gateway_and_picker_never_ready_hold_the_canary(
    kube: Kubectl, namespace: str, operator: OperatorProcess, traffic: Any, gateway: SimGateway
) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    # 1. a gateway that rejects InferencePool backends
    refused = new_model(kube, namespace, operator)
    old = refused.given_stable(routed_spec(refused, steps, tag="refused"))
    gateway.refuse_pools = True
    refused.when_args_change()
    refused.wait(_held(refused, "RouteRefsNotResolved", "InvalidKind"), 90, "held: route refused")
    assert weights(kube, refused) == {f"{refused.name}-{old}": 100}
    assert refused.replicas_of(old) == 2
    gateway.refuse_pools = False
    refused.wait(paused_at(1), 60, "advances once the gateway accepts")

    # 2. a parentRef to a Gateway that does not exist
    missing = new_model(kube, namespace, operator)
    spec = routed_spec(missing, steps, tag="missing")
    spec["rollout"]["canary"]["trafficRouting"]["inferencePool"]["parentRefs"] = [{"name": "no-such-gateway"}]
    missing.kube.apply(
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "Model",
            "metadata": {"name": missing.name},
            "spec": spec,
        },
        namespace,
    )
    missing.wait(lambda m: (m.get("status") or {}).get("stableRevision"), 90, "stable revision")
    missing.when_args_change()
    missing.wait(_held(missing, "GatewayNotFound", "no-such-gateway"), 90, "held: Gateway missing")

    # 3. an endpoint picker that can never be scheduled (asks for more CPU than any node has)
    stuck = new_model(kube, namespace, operator)
    stable = stuck.given_stable(routed_spec(stuck, steps, tag="stuck"))
    stuck.kube.patch(
        "model",
        namespace,
        stuck.name,
        {
            "spec": {
                "rollout": {
                    "canary": {
                        "trafficRouting": {
                            "inferencePool": {"endpointPicker": {"resources": {"requests": {"cpu": "1000"}}}}
                        }
                    }
                }
            }
        },
    )
    stuck.when_args_change()
    stuck.wait(_held(stuck, "EndpointPickerNotReady", "-epp"), 90, "held: picker not ready")
    assert weights(kube, stuck) == {f"{stuck.name}-{stable}": 100}
    events = [r for _, r, _ in stuck.events()]
    assert any(r.startswith("TrafficRouting") for r in events), events


def _grant(name: str, source: dict[str, str], target: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": name},
        "spec": {"from": [source], "to": [target]},
    }


def test_route_in_another_namespace_needs_both_reference_grants(
    kube: Kubectl, namespace: str, operator: OperatorProcess, traffic: Any, gateway: SimGateway
) -> None:
    """The operator neither reads nor writes a route elsewhere until that namespace grants the
    Model's namespace the route; then it names the grant the route needs to refer to the pools."""
    model = new_model(kube, namespace, operator)
    other = f"{namespace}-gw"
    route_name = f"{model.name}-route"
    kube.run("create", "namespace", other)
    try:
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": route_name},
            "spec": {
                "parentRefs": [{"name": GATEWAY, "namespace": namespace}],
                "rules": [{"backendRefs": [{"name": model.name, "namespace": namespace, "port": 8000}]}],
            },
        }
        kube.apply(route, other)
        steps = [{"setWeight": 50}, {"pause": {}}]
        spec = routed_spec(model, steps, tag="xns", namespace=other)
        del spec["rollout"]["canary"]["trafficRouting"]["inferencePool"]["parentRefs"]
        model.given_stable(spec)

        def routing(reason: str, text: str) -> Any:
            return lambda m: (
                model.condition("TrafficRouting").get("reason") == reason
                and text in model.condition("TrafficRouting").get("message", "")
            )

        model.wait(routing("RefNotPermitted", f"ReferenceGrant in {other} from"), 60, "Model may not use it")
        untouched = kube.get("httproute", other, route_name) or {}
        refs = untouched["spec"]["rules"][0]["backendRefs"]
        assert [(r.get("kind"), r["name"]) for r in refs] == [("Service", model.name)]

        kube.apply(
            _grant(
                "models-from-team",
                {"group": "llmops.dev", "kind": "Model", "namespace": namespace},
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route_name},
            ),
            other,
        )
        model.wait(
            routing("RefNotPermitted", f"ReferenceGrant in {namespace} from"), 60, "route may not use pools"
        )
        patched = kube.get("httproute", other, route_name) or {}
        refs = patched["spec"]["rules"][0]["backendRefs"]
        assert [(r.get("kind"), r.get("namespace")) for r in refs] == [("InferencePool", namespace)]

        kube.apply(
            _grant(
                "routes-from-gw",
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": other},
                {"group": "inference.networking.k8s.io", "kind": "InferencePool"},
            ),
            namespace,
        )
        model.wait(
            lambda m: model.condition("TrafficRouting").get("reason") not in ("RefNotPermitted", None),
            60,
            "both grants seen",
        )
    finally:
        kube.run("delete", "namespace", other, "--wait=false", check=False)


# ---------------------------------------------------------------------------------------------
# wake from zero
# ---------------------------------------------------------------------------------------------

AUTOSCALE_INTERVAL = 15.0
"""model_plan.replicas.AUTOSCALE_SECONDS: how often a Model at zero looks for waiting requests."""
SCRAPE_ALLOWANCE = 3.0
"""The emitter scrape (1 s) and Prometheus' evaluation on top of one autoscaling interval."""


def zero_spec(model: CanaryModel) -> dict[str, Any]:
    spec = routed_spec(model, [{"setWeight": 50}, {"pause": {}}], tag="zero")
    spec.pop("replicas", None)
    spec["autoscaling"] = {
        "minReplicas": 0,
        "maxReplicas": 2,
        "metric": "queueDepth",
        "target": 4,
        "scaleToZeroAfter": "10s",
        "minReplicasWhenActive": 1,
    }
    return spec


def test_model_at_zero_wakes_on_pending_requests_and_goes_back_after_the_idle_delay(
    kube: Kubectl, namespace: str, operator: OperatorProcess, traffic: Any, gateway: SimGateway
) -> None:
    model = new_model(kube, namespace, operator)
    stable = model.given_stable(zero_spec(model), timeout=120)
    pool = f"{model.name}-{stable}"
    autoscaler = lambda: model.status().get("autoscaler") or {}  # noqa: E731

    def parked(m: dict[str, Any]) -> bool:
        reason = ((m.get("status") or {}).get("autoscaler") or {}).get("reason")
        return reason in ("ScaledToZero", "AtZero") and model.replicas_of(stable) == 0

    model.wait(parked, 90, "idle to zero")
    assert pool in pools(kube, model)  # the pool stays for the gateway to queue requests on
    # the operator looked at zero and saw nothing waiting
    model.wait(lambda m: autoscaler().get("reason") == "AtZero", 30, "at zero, nothing waiting")

    signal = utcnow()
    traffic.set_pending(namespace, pool, 3)
    model.wait(
        lambda m: autoscaler().get("reason") == "WokenFromZero" or model.replicas_of(stable) == 1, 60, "woken"
    )
    cold = model.wait(
        lambda m: (autoscaler().get("coldStart") or {}).get("readyAt") and autoscaler()["coldStart"],
        60,
        "cold start Ready",
    )
    seen = (parse_time(cold["signalAt"]) - signal).total_seconds()
    print(
        f"\n[wake] seen {seen:.1f}s after the signal; ready {cold['secondsToReady']:.1f}s after that: {cold}"
    )
    assert seen <= AUTOSCALE_INTERVAL + SCRAPE_ALLOWANCE
    assert cold["pendingRequests"] == 3
    assert cold["scheduledAt"] and cold["startedAt"]
    assert parse_time(cold["signalAt"]) <= parse_time(cold["readyAt"]) or cold["secondsToReady"] == 0
    assert "ColdStartReady" in [r for _, r, _ in model.events()]

    traffic.set_pending(namespace, pool, 0)
    idle_from = time.monotonic()
    model.wait(lambda m: model.replicas_of(stable) == 0, 90, "back to zero")
    assert time.monotonic() - idle_from >= 10.0 - 1.0  # not before scaleToZeroAfter (10 s)
