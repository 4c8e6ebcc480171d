"""The caches keep only what the plans read of Pods, Deployments and Services
(`runtime/store.py`): every pass over the trimmed objects plans exactly what it plans over the
full ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_model_plan import SPEC, Sim, model_obj, with_spec
from test_model_plan_facts import LLAMA_70B

from llmops_operator.model_plan import ModelPlan, World, plan_model
from llmops_operator.runtime.store import Store, deployment_as_read, pod_as_read, service_as_read

SHAPES: dict[str, dict[str, Any]] = {
    "gpus": SPEC,
    "gpus-auto": with_spec("resources.gpus", "auto"),
    "canary": with_spec("rollout", {"strategy": "Canary", "canary": {"steps": [{"setWeight": 50}]}}),
}


def _pod(deployment: dict[str, Any], index: int, state: str) -> dict[str, Any]:
    """A Pod as the API server returns it: the Deployment's whole template, bound or not."""
    template = deployment["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/7"}]
    status: dict[str, Any] = {"phase": "Pending", "conditions": conditions}
    if state != "unschedulable":
        spec["nodeName"] = "h100-0"
        status["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    running = {"running": {"startedAt": "2026-01-01T11:58:00Z"}}
    status["containerStatuses"] = [
        {"name": "engine", "ready": state == "ready", "state": running if state == "ready" else waiting}
    ]
    if state == "ready":
        status["phase"] = "Running"
        status["conditions"].append(
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T11:59:00Z"}
        )
    name = f"{deployment['metadata']['name']}-{index}"
    meta = {"name": name, "namespace": "ns", "uid": name, "labels": dict(template["metadata"]["labels"])}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _lifecycle(trimmed: bool, spec: dict[str, Any]) -> list[ModelPlan]:
    """First deploy; pods unschedulable, crashing, ready; a new revision (for `gpus: auto`, the
    model's size known only now: the running revision keeps its count) rolled out to Ready."""
    sim = Sim(model_obj(spec), view=deployment_as_read if trimmed else lambda d: d)

    def pods(state: str) -> None:
        sim.ready(count=None if state == "ready" else 0)
        full = [_pod(d, i, state) for d in sim.deployments.values() for i in range(d["spec"]["replicas"])]
        sim.extra["pods"] = [pod_as_read(p) if trimmed else p for p in full]

    plans = [sim.step()]
    for state in ("unschedulable", "crashing", "ready"):
        pods(state)
        plans.append(sim.step())
    sim.edit_spec(with_spec("engine.args", ["--max-num-seqs=16"], spec))
    sim.extra["model_facts"] = LLAMA_70B
    plans.append(sim.step())
    for state in ("crashing", "ready", "ready"):
        pods(state)
        plans.append(sim.step())
    return plans


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_pass_plans_the_same_over_trimmed_objects(shape: str) -> None:
    full, trimmed = _lifecycle(False, SHAPES[shape]), _lifecycle(True, SHAPES[shape])
    assert full[-1].status["phase"] == "Ready", "the lifecycle did not reach Ready"
    assert any(p.events for p in full) and any(p.delete or p.scale for p in full)
    for step, (a, b) in enumerate(zip(full, trimmed, strict=True)):
        assert a == b, f"step {step} of {shape} planned differently over trimmed objects"


def test_the_caches_keep_the_trimmed_objects_and_far_less_of_them() -> None:
    rendered = plan_model(World(model=model_obj(), now=Sim(model_obj()).clock, operator_image="img"))
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
