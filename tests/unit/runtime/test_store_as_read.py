"""The caches keep only what the plans read of Pods, Deployments and Services: every pass over
the trimmed objects plans exactly what it plans over the full ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmops_operator.gpu.planner import ModelFacts
from llmops_operator.model_plan import ModelPlan, World, plan_model
from llmops_operator.runtime.store import Store, deployment_as_read, pod_as_read, service_as_read

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"
FACTS = ModelFacts(
    parameter_count=70_553_706_496,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=131072,
    bytes_per_param=2,
)
SPECS: dict[str, dict[str, Any]] = {
    "gpus": {
        "source": {"uri": "hf://org/tiny-llm"},
        "engine": {"type": "vllm"},
        "resources": {"gpus": 2, "gpuProducts": [H100]},
        "replicas": 2,
    },
    "gpus-auto": {
        "source": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"},
        "engine": {"type": "vllm"},
        "resources": {"gpus": "auto", "gpuProducts": [H100]},
        "serving": {"maxModelLen": 16384},
    },
    "canary": {
        "source": {"uri": "hf://org/tiny-llm"},
        "engine": {"type": "vllm"},
        "resources": {"gpus": 1, "gpuProducts": [H100]},
        "rollout": {"strategy": "Canary", "canary": {"steps": [{"setWeight": 50}]}},
    },
}


def _model(spec: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    meta = {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": generation}
    return {"metadata": meta, "spec": copy.deepcopy(spec), "status": {}}


def _pod(deployment: dict[str, Any], index: int, state: str) -> dict[str, Any]:
    """A Pod as the API server returns it: the Deployment's template, bound or not, in `state`."""
    template = deployment["spec"]["template"]
    status: dict[str, Any] = {"phase": "Pending", "conditions": []}
    spec = copy.deepcopy(template["spec"])
    if state == "unschedulable":
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/7 nodes"}
        ]
    else:
        spec["nodeName"] = "h100-0"
        status["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    if state == "crashing":
        status["containerStatuses"] = [
            {"name": "engine", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]
    if state == "ready":
        status["phase"] = "Running"
        status["conditions"].append(
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T11:59:00Z"}
        )
        status["containerStatuses"] = [
            {"name": "engine", "ready": True, "state": {"running": {"startedAt": "2026-01-01T11:58:00Z"}}}
        ]
    labels = dict(template["metadata"].get("labels") or {})
    name = f"{deployment['metadata']['name']}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": f"pod-{name}", "labels": labels},
        "spec": spec,
        "status": status,
    }


class Cluster:
    """The cluster between passes, holding full objects; `view` is what a cache hands the plan."""

    def __init__(self, spec: dict[str, Any], trimmed: bool, facts: ModelFacts | None = None) -> None:
        self.model = _model(spec)
        self.trimmed = trimmed
        self.facts = facts
        self.deployments: dict[str, dict[str, Any]] = {}
        self.pod_state = "none"
        self.clock = NOW

    def _view(self, obj: dict[str, Any], as_read: Any) -> dict[str, Any]:
        return as_read(copy.deepcopy(obj)) if self.trimmed else copy.deepcopy(obj)

    def step(self) -> ModelPlan:
        self.clock += timedelta(seconds=5)
        deployments = [self._view(d, deployment_as_read) for d in self.deployments.values()]
        pods = [
            self._view(_pod(d, i, self.pod_state), pod_as_read)
            for d in self.deployments.values()
            for i in range(d["spec"]["replicas"] if self.pod_state != "none" else 0)
        ]
        plan = plan_model(
            World(
                model=self.model,
                now=self.clock,
                operator_image="img",
                deployments=deployments,
                pods=pods,
                model_facts=self.facts,
            )
        )
        for obj in plan.apply:
            if obj["kind"] == "Deployment":
                previous = self.deployments.get(obj["metadata"]["name"], {}).get("status", {})
                self.deployments[obj["metadata"]["name"]] = {**copy.deepcopy(obj), "status": previous}
        for name, replicas in plan.scale.items():
            if name in self.deployments:
                self.deployments[name]["spec"]["replicas"] = replicas
        for kind, name in plan.delete:
            if kind == "Deployment":
                self.deployments.pop(name, None)
        self.model = {**self.model, "status": plan.status}
        return plan

    def pods(self, state: str) -> None:
        self.pod_state = state
        for d in self.deployments.values():
            want = d["spec"]["replicas"]
            d["status"] = {"replicas": want, "readyReplicas": want if state == "ready" else 0}

    def edit(self, path: str, value: Any) -> None:
        spec = copy.deepcopy(self.model["spec"])
        node = spec
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        meta = {**self.model["metadata"], "generation": self.model["metadata"]["generation"] + 1}
        self.model = {**self.model, "spec": spec, "metadata": meta}


def _lifecycle(cluster: Cluster) -> list[ModelPlan]:
    """First deploy, pods unschedulable, crashing, ready; a new revision rolled out to Ready."""
    plans = [cluster.step()]
    for state in ("unschedulable", "crashing", "ready"):
        cluster.pods(state)
        plans.append(cluster.step())
    cluster.edit("engine.args", ["--enable-prefix-caching"])
    plans.append(cluster.step())
    cluster.facts = FACTS  # gpus: auto learns the model's size only now: the running revision keeps its count
    for state in ("crashing", "ready", "ready"):
        cluster.pods(state)
        plans.append(cluster.step())
    return plans


@pytest.mark.parametrize("shape", sorted(SPECS))
def test_every_pass_plans_the_same_over_trimmed_objects(shape: str) -> None:
    full = _lifecycle(Cluster(SPECS[shape], trimmed=False))
    trimmed = _lifecycle(Cluster(SPECS[shape], trimmed=True))
    assert [p.status.get("phase") for p in full][-1] == "Ready", "the lifecycle did not reach Ready"
    assert any(p.events for p in full) and any(p.delete or p.scale for p in full)
    for step, (a, b) in enumerate(zip(full, trimmed, strict=True)):
        assert a == b, f"step {step} of {shape} planned differently over trimmed objects"


def test_the_caches_keep_the_trimmed_objects_and_far_less_of_them() -> None:
    rendered = plan_model(World(model=_model(SPECS["gpus"]), now=NOW, operator_image="img"))
    deployment = {
        **next(o for o in rendered.apply if o["kind"] == "Deployment"),
        "status": {"readyReplicas": 1},
    }
    deployment["metadata"] = {
        **deployment["metadata"],
        "resourceVersion": "7",
        "managedFields": [{"manager": "x"}],
    }
    service = {**next(o for o in rendered.apply if o["kind"] == "Service"), "status": {"loadBalancer": {}}}
    pod = _pod(deployment, 0, "ready")
    store = Store()
    for kind, obj in (("Deployment", deployment), ("Service", service), ("Pod", pod)):
        store.on_event(kind, "ADDED", obj)
    kept_dep = store.deployments.get("ns", deployment["metadata"]["name"])
    kept_pod = store.pods.get("ns", pod["metadata"]["name"])
    kept_svc = store.services.get("ns", "m")
    assert kept_dep is not None and kept_pod is not None and kept_svc is not None
    assert kept_dep["spec"]["replicas"] == deployment["spec"]["replicas"]
    assert (
        kept_dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    )
    assert kept_dep["status"] == {"readyReplicas": 1} and "managedFields" not in kept_dep["metadata"]
    assert kept_pod["spec"] == {"nodeName": "h100-0"} and kept_pod["status"] == pod["status"]
    assert set(kept_svc) == {"apiVersion", "kind", "metadata"}
    assert len(repr(kept_dep)) < len(repr(deployment)) / 2 and len(repr(kept_pod)) < len(repr(pod)) / 2
    assert pod["spec"]["containers"], "the event's own object was changed"


def test_an_unbound_pod_keeps_no_node() -> None:
    assert pod_as_read({"metadata": {"name": "p"}, "spec": {"containers": [{}]}})["spec"] == {}
    assert service_as_read({"metadata": {"name": "s"}, "spec": {"ports": []}}) == {"metadata": {"name": "s"}}
    assert deployment_as_read({"metadata": {"name": "d"}}) == {"metadata": {"name": "d"}, "spec": {}}
