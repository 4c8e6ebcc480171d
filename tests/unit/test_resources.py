"""Owned-object builders: complete objects, labels, GPU scheduling, mounts, loader Job."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_operator import resources
from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu.planner import Plan
from llmops_operator.revisions import cache_key

MODEL_OBJ = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "support-llama", "namespace": "team-a", "uid": "uid-1"},
}
MODEL = resources.ModelRef.from_obj(MODEL_OBJ)
OWNER = resources.owner_reference(MODEL_OBJ)
PLAN = Plan(2, "NVIDIA-H100-80GB-HBM3", 2, 19.0, "")


def make_spec(**extra: Any) -> ModelSpec:
    body: dict[str, Any] = {
        "source": {
            "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
            "credentialsSecretRef": {"name": "hf-token"},
        },
        "engine": {"type": "vllm"},
        "resources": {
            "gpus": 2,
            "gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"],
            "cpu": "8",
            "memory": "64Gi",
        },
        **extra,
    }
    return ModelSpec.model_validate(body)


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def assert_complete(obj: dict[str, Any], kind: str, name: str) -> None:
    assert obj["kind"] == kind and obj["apiVersion"]
    assert obj["metadata"]["name"] == name
    assert obj["metadata"]["namespace"] == "team-a"
    labels = obj["metadata"]["labels"]
    assert labels["llmops.dev/model"] == "support-llama"
    assert labels["app.kubernetes.io/managed-by"] == "llmops-operator"
    assert obj["metadata"]["ownerReferences"] == [OWNER]


def test_owner_reference_is_a_controller_reference() -> None:
    assert OWNER == {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "Model",
        "name": "support-llama",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_deployment_gpu_scheduling() -> None:
    spec = make_spec(
        placement={
            "nodeSelector": {"pool": "inference"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "priorityClassName": "llm-high",
        }
    )
    deployment = resources.render_revision(MODEL, spec, "abc1234567", PLAN, 3, owner=OWNER)
    assert_complete(deployment, "Deployment", "support-llama-abc1234567")
    assert deployment["metadata"]["labels"]["llmops.dev/revision"] == "abc1234567"
    assert deployment["spec"]["replicas"] == 3
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    pod = pod_spec(deployment)
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["cpu"] == "8"
    node_affinity = pod["affinity"]["nodeAffinity"]
    required = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert required["matchExpressions"][0] == {
        "key": "nvidia.com/gpu.product",
        "operator": "In",
        "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"],
    }
    preferred = node_affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    weights = [p["weight"] for p in preferred]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == 2
    assert preferred[0]["preference"]["matchExpressions"][0]["values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["priorityClassName"] == "llm-high"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
    ]


def test_cpu_deployment_has_no_gpu_scheduling() -> None:
    spec = ModelSpec.model_validate(
        {
            "source": {"uri": "pvc://onnx-models/repository"},
            "engine": {"type": "onnxruntime"},
            "resources": {"gpus": 0},
        }
    )
    deployment = resources.render_revision(MODEL, spec, "r", Plan(0, None, 1, None, ""), 1)
    pod = pod_spec(deployment)
    assert "affinity" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in str(pod["containers"][0].get("resources", {}))
    volume = next(v for v in pod["volumes"] if v["name"] == "weights-source")
    assert volume["persistentVolumeClaim"] == {"claimName": "onnx-models", "readOnly": True}
    assert "--model-repository=/mnt/source/repository" in pod["containers"][0]["args"]


def test_cache_and_prompts_are_mounted_read_only() -> None:
    spec = make_spec(cache={"enabled": True, "size": "40Gi"})
    deployment = resources.render_revision(
        MODEL, spec, "r", PLAN, 1, prompts_configmap="support-llama-prompts-r"
    )
    pod = pod_spec(deployment)
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["weights-cache"] == {"name": "weights-cache", "mountPath": "/cache", "readOnly": True}
    assert mounts["prompts"]["mountPath"] == resources.PROMPTS_MOUNT and mounts["prompts"]["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["weights-cache"]["persistentVolumeClaim"]["readOnly"] is True
    assert volumes["prompts"]["configMap"]["name"] == "support-llama-prompts-r"
    assert pod["containers"][0]["args"][0] == f"/cache/{cache_key(spec)}"


@pytest.mark.parametrize(
    ("uri", "cache", "expected"),
    [
        ("hf://org/repo", False, None),
        ("pvc://claim/some/dir", False, "/mnt/source/some/dir"),
        ("pvc://claim", False, "/mnt/source"),
    ],
)
def test_weights_path(uri: str, cache: bool, expected: str | None) -> None:
    spec = ModelSpec.model_validate(
        {"source": {"uri": uri}, "engine": {"type": "vllm"}, "cache": {"enabled": cache}}
    )
    assert resources.weights_path(spec) == expected


def test_services() -> None:
    spec = make_spec()
    shared = resources.shared_service(MODEL, spec, owner=OWNER)
    assert_complete(shared, "Service", "support-llama")
    assert shared["spec"]["selector"] == {
        "llmops.dev/model": "support-llama",
        "llmops.dev/component": "engine",
    }
    assert shared["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    per_revision = resources.revision_service(MODEL, spec, "abc", owner=OWNER)
    assert_complete(per_revision, "Service", "support-llama-abc")
    assert per_revision["spec"]["selector"]["llmops.dev/revision"] == "abc"
    assert per_revision["spec"]["clusterIP"] == "None"  # headless; the shared Service has the IP
    assert "clusterIP" not in shared["spec"]
    assert resources.endpoint(MODEL, spec) == "http://support-llama.team-a.svc:8000/v1"


def test_triton_service_exposes_metrics_port() -> None:
    spec = ModelSpec.model_validate(
        {"source": {"uri": "pvc://m/r"}, "engine": {"type": "onnxruntime"}, "resources": {"gpus": 0}}
    )
    ports = {p["name"]: p["port"] for p in resources.shared_service(MODEL, spec)["spec"]["ports"]}
    assert ports == {"http": 8000, "metrics": 8002}


def test_cache_pvc_and_loader_job() -> None:
    spec = make_spec(
        source={
            "uri": "hf://org/repo",
            "revision": "abc",
            "credentialsSecretRef": {"name": "hf-token", "key": "tok"},
        },
        cache={"enabled": True, "size": "40Gi", "storageClassName": "fast", "accessMode": "ReadWriteOnce"},
    )
    pvc = resources.cache_pvc(MODEL, spec, owner=OWNER)
    assert_complete(pvc, "PersistentVolumeClaim", "support-llama-cache")
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "40Gi"}},
        "storageClassName": "fast",
    }
    job = resources.cache_loader_job(MODEL, spec, "ghcr.io/llmops/operator:0.1.0", owner=OWNER)
    key = cache_key(spec)
    assert_complete(job, "Job", f"support-llama-load-{key}")
    assert job["spec"]["backoffLimit"] > 0
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/llmops/operator:0.1.0"
    assert container["command"] == ["llmops-operator"]
    assert container["args"] == [
        "load-weights",
        "--uri",
        "hf://org/repo",
        "--dest",
        f"/cache/{key}",
        "--revision",
        "abc",
    ]
    token = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert token == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "tok"}}}
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "support-llama-cache"


def test_prompts_configmap_is_immutable_and_labelled() -> None:
    cm = resources.prompts_configmap(MODEL, "abc", {"support-bot.json": "{}"}, owner=OWNER)
    assert_complete(cm, "ConfigMap", "support-llama-prompts-abc")
    assert cm["immutable"] is True and cm["data"] == {"support-bot.json": "{}"}
