"""The reconcile pass with inferencePool traffic routing and with scale to zero: the canary walks
its steps across two pools, waits for pods and pickers, returns to stable on abort, and a Model
at zero wakes on waiting requests (the cluster is played between passes)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmops_operator.autoscaling.scale_to_zero import Pending
from llmops_operator.model_plan import ModelPlan, World, plan_model
from llmops_operator.rollout.traffic.inference_pool import pool_weights

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "r", "namespace": "ns", "generation": 1},
    "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "m", "port": 8000}]}]},
    "status": {
        "parents": [
            {
                "parentRef": {"name": "gw"},
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted"},
                    {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"},
                ],
            }
        ]
    },
}


def _spec(args: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "source": {"uri": "hf://org/model"},
        "engine": {"type": "vllm", "args": args},
        "resources": {"gpus": 1},
        "replicas": 2,
        "rollout": {
            "strategy": "Canary",
            "canary": {
                "steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
                "trafficRouting": {"inferencePool": {"httpRoute": "r"}},
            },
        },
        **extra,
    }


@dataclass
class Cluster:
    """Objects land as the plan says; Deployments report ready only when told."""

    model: dict[str, Any]
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    route: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(ROUTE))
    clock: datetime = NOW
    pending: float | None = None

    def step(self) -> ModelPlan:
        self.clock += timedelta(seconds=5)
        deployments = [o for (k, _), o in self.objects.items() if k == "Deployment"]
        pools = [o for (k, _), o in self.objects.items() if k == "InferencePool"]
        world = World(
            model=self.model,
            now=self.clock,
            operator_image="img",
            deployments=deployments,
            inference_pools=pools,
            http_route=self.route,
            wake_pending=None if self.pending is None else Pending(self.pending, self.clock),
        )
        plan = plan_model(world)
        for obj in plan.apply:
            key = (obj["kind"], obj["metadata"]["name"])
            status = self.objects.get(key, {}).get("status", {"readyReplicas": 0})
            self.objects[key] = {**copy.deepcopy(obj), "status": status}
        for name, replicas in plan.scale.items():
            self.objects[("Deployment", name)]["spec"]["replicas"] = replicas
        for kind, name in plan.delete:
            self.objects.pop((kind, name), None)
        if plan.route_patch is not None:
            self.route["spec"]["rules"] = copy.deepcopy(plan.route_patch["spec"]["rules"])
        self.model = {**self.model, "status": plan.status}
        return plan

    def ready(self, *names: str) -> None:
        for (kind, name), obj in self.objects.items():
            if kind == "Deployment" and (not names or name in names):
                obj["status"] = {
                    "readyReplicas": obj["spec"]["replicas"],
                    "replicas": obj["spec"]["replicas"],
                }

    def weights(self) -> dict[str, int]:
        return pool_weights(self.route, "m")

    def names(self, kind: str) -> set[str]:
        return {n for k, n in self.objects if k == kind}

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.model["status"]["conditions"] if c["type"] == type_)


def _model(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": spec}


def _stable_cluster() -> tuple[Cluster, str]:
    c = Cluster(_model(_spec(["--a"])))
    c.step()
    c.ready()
    c.step()
    stable = c.model["status"]["stableRevision"]
    return c, stable


def test_stable_gets_its_pool_and_picker_and_the_route_points_at_it() -> None:
    c, stable = _stable_cluster()
    assert c.names("InferencePool") == {f"m-{stable}"}
    assert f"m-{stable}-epp" in c.names("Deployment")
    assert c.weights() == {f"m-{stable}": 100}
    assert c.condition("TrafficRouting")["status"] == "True"
    # the picker's Deployment is not mistaken for a revision
    assert c.model["status"]["stableRevision"] == stable and "canaryRevision" not in c.model["status"]


def test_canary_walks_weights_across_pools_only_once_pods_and_picker_are_ready() -> None:
    c, stable = _stable_cluster()
    c.model["spec"] = _spec(["--b"])
    c.step()
    canary = c.model["status"]["canaryRevision"]
    assert f"m-{canary}" in c.names("InferencePool")
    assert c.weights() == {f"m-{stable}": 100}  # canary pods not ready
    c.ready(f"m-{canary}")
    c.step()
    assert c.weights() == {f"m-{stable}": 100}  # its picker is not ready
    assert c.model["status"]["rollout"]["weight"] == 0
    assert f"m-{canary}-epp" in c.model["status"]["rollout"]["message"]
    assert c.condition("TrafficRouting")["reason"] == "EndpointPickerNotReady"
    assert c.objects[("Deployment", f"m-{stable}")]["spec"]["replicas"] == 2  # stable never shrinks
    c.ready(f"m-{canary}-epp")
    c.step()
    c.step()
    assert c.weights() == {f"m-{stable}": 75, f"m-{canary}": 25}
    assert c.condition("TrafficRouting")["status"] == "True"
    # abort: all weight back at once; the pool stays while the revision's Deployment does
    c.model["status"]["rollout"]["abort"] = True
    c.step()
    assert c.weights() == {f"m-{stable}": 100}
    assert c.objects[("Deployment", f"m-{canary}")]["spec"]["replicas"] == 0
    assert f"m-{canary}" in c.names("InferencePool")  # its pods are still draining
    c.ready(f"m-{canary}")  # scaled to zero: no ready pod left
    c.step()
    assert f"m-{canary}" not in c.names("InferencePool")
    assert f"m-{canary}-epp" not in c.names("Deployment") and f"m-{canary}-epp" not in c.names("Service")
    assert c.names("InferencePool") == {f"m-{stable}"}


def test_refused_route_holds_the_canary_and_shows_on_the_model() -> None:
    c, stable = _stable_cluster()
    c.route["status"]["parents"][0]["conditions"][1] = {
        "type": "ResolvedRefs",
        "status": "False",
        "reason": "InvalidKind",
        "message": "backend kind InferencePool is not supported",
    }
    c.model["spec"] = _spec(["--b"])
    c.step()
    c.ready()
    for _ in range(3):
        c.step()
    assert c.weights() == {f"m-{stable}": 100}
    assert c.model["status"]["rollout"]["stepIndex"] == 0
    routing = c.condition("TrafficRouting")
    assert routing["status"] == "False" and "InvalidKind" in routing["message"]


def test_model_at_zero_wakes_on_waiting_requests_and_records_the_cold_start() -> None:
    autoscaling = {
        "minReplicas": 0,
        "maxReplicas": 4,
        "target": 4,
        "scaleToZeroAfter": "30s",
        "minReplicasWhenActive": 1,
    }
    c = Cluster(_model({**_spec(["--a"]), "autoscaling": autoscaling}))
    c.pending = 0.0
    c.step()
    c.ready()
    c.step()
    stable = c.model["status"]["stableRevision"]
    # no load signal read: never parked (no data holds)
    assert c.objects[("Deployment", f"m-{stable}")]["spec"]["replicas"] == 1
    # parked by the user's earlier history: status says 0, Deployment at 0
    c.model["status"]["autoscaler"] = {"desiredReplicas": 0, "reason": "ScaledToZero"}
    c.objects[("Deployment", f"m-{stable}")]["spec"]["replicas"] = 0
    c.step()
    assert c.objects[("Deployment", f"m-{stable}")]["spec"]["replicas"] == 0
    assert c.model["status"]["autoscaler"]["reason"] == "AtZero"
    c.pending = 2.0
    plan = c.step()
    assert c.objects[("Deployment", f"m-{stable}")]["spec"]["replicas"] == 1
    autoscaler = c.model["status"]["autoscaler"]
    assert autoscaler["reason"] == "WokenFromZero"
    assert autoscaler["coldStart"]["signalAt"] and autoscaler["coldStart"]["pendingRequests"] == 2.0
    assert "WokenFromZero" in [r for _, r, _ in plan.events]
