"""The dev cluster behaves like a real GPU cluster: scheduling, garbage collection, CEL validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import kubernetes
import pytest

if TYPE_CHECKING:
    from tests.conftest import Cluster

pytestmark = pytest.mark.cluster

GPU_PRODUCTS = {"NVIDIA-H100-80GB-HBM3": 2, "NVIDIA-A100-SXM4-80GB": 2, "NVIDIA-L4": 2}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_pod_spec(gpus: int, product: str | None = None) -> dict:
    spec: dict = {
        "tolerations": [GPU_TOLERATION],
        "containers": [
            {
                "name": "engine",
                "image": "vllm/vllm-openai:latest",
                "resources": {
                    "limits": {"nvidia.com/gpu": str(gpus)},
                    "requests": {"cpu": "1", "memory": "1Gi"},
                },
            }
        ],
    }
    if product:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}
                            ]
                        }
                    ]
                }
            }
        }
    return spec


def test_gpu_nodes_are_ready_with_product_labels(cluster: Cluster) -> None:
    nodes = cluster.core.list_node(label_selector="type=kwok").items
    ready = {
        n.metadata.name: n
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    }
    assert len(ready) == len(nodes) >= 7
    products: dict[str, int] = {}
    for node in ready.values():
        product = node.metadata.labels.get("nvidia.com/gpu.product")
        if product is None:
            assert "nvidia.com/gpu" not in (node.status.allocatable or {})
            continue
        products[product] = products.get(product, 0) + 1
        gpus = node.status.allocatable["nvidia.com/gpu"]
        assert (
            gpus == node.metadata.labels["nvidia.com/gpu.count"] == ("4" if product == "NVIDIA-L4" else "8")
        )
        assert int(node.metadata.labels["nvidia.com/gpu.memory"]) > 20000
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
            ("nvidia.com/gpu", "present", "NoSchedule")
        ]
    assert products == GPU_PRODUCTS


def test_gpu_deployment_runs_on_h100(cluster: Cluster, namespace: str) -> None:
    labels = {"app": "h100-engine"}
    cluster.apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "h100-engine"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": gpu_pod_spec(2, "NVIDIA-H100-80GB-HBM3"),
                },
            },
        },
    )

    def running_pods() -> list:
        pods = cluster.core.list_namespaced_pod(namespace, label_selector="app=h100-engine").items
        ok = [
            p
            for p in pods
            if p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return ok if len(ok) == 2 else []

    pods = cluster.wait_until(running_pods, 60, "2 Running and Ready pods of the H100 Deployment")
    for pod in pods:
        node = cluster.core.read_node(pod.spec.node_name)
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    deployment = cluster.wait_until(
        lambda: (
            (d := cluster.apps.read_namespaced_deployment("h100-engine", namespace)).status.ready_replicas
            == 2
            and d
        ),
        60,
        "Deployment readyReplicas == 2",
    )
    assert deployment.status.available_replicas == 2


def test_pod_asking_for_nine_gpus_stays_pending_with_scheduler_reason(
    cluster: Cluster, namespace: str
) -> None:
    cluster.core.create_namespaced_pod(namespace, {"metadata": {"name": "too-big"}, "spec": gpu_pod_spec(9)})

    def unschedulable() -> object:
        pod = cluster.core.read_namespaced_pod("too-big", namespace)
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                return pod, cond
        return None

    pod, cond = cluster.wait_until(unschedulable, 60, "PodScheduled=False/Unschedulable on the 9-GPU pod")
    assert "Insufficient nvidia.com/gpu" in cond.message
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_deleting_an_owner_garbage_collects_what_it_owns(cluster: Cluster, namespace: str) -> None:
    owner = cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    cluster.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owned-cm", "ownerReferences": [ref]}, "data": {"a": "b"}}
    )
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "owned-secret", "ownerReferences": [ref]}, "stringData": {"k": "v"}}
    )
    cluster.core.delete_namespaced_config_map("owner", namespace)

    def gone(read: object, name: str) -> bool:
        try:
            read(name, namespace)  # type: ignore[operator]
        except kubernetes.client.ApiException as err:
            return err.status == 404
        return False

    cluster.wait_until(
        lambda: gone(cluster.core.read_namespaced_config_map, "owned-cm"), 60, "owned ConfigMap GC"
    )
    cluster.wait_until(
        lambda: gone(cluster.core.read_namespaced_secret, "owned-secret"), 60, "owned Secret GC"
    )


CEL_MESSAGE = "maxReplicas must be at least minReplicas"


@pytest.fixture
def cel_crd(cluster: Cluster) -> object:
    group = "celtest.llmops.dev"
    name = f"widgets.{group}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "minReplicas": {"type": "integer"},
                                        "maxReplicas": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.maxReplicas >= self.minReplicas",
                                            "message": CEL_MESSAGE,
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    try:
        cluster.extensions.create_custom_resource_definition(crd)
    except kubernetes.client.ApiException as err:
        if err.status != 409:
            raise
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    return group


def test_crd_cel_rule_rejects_a_bad_object_with_its_message(
    cluster: Cluster, namespace: str, cel_crd: str
) -> None:
    def widget(name: str, lo: int, hi: int) -> dict:
        return {
            "apiVersion": f"{cel_crd}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"minReplicas": lo, "maxReplicas": hi},
        }

    create = cluster.custom.create_namespaced_custom_object
    # Discovery of a just-Established CRD can lag by a moment; the good object proves it is served.
    cluster.wait_until(
        lambda: create(cel_crd, "v1", namespace, "widgets", widget("good", 1, 3)), 30, "good Widget"
    )
    with pytest.raises(kubernetes.client.ApiException) as err:
        create(cel_crd, "v1", namespace, "widgets", widget("bad", 3, 1))
    assert err.value.status == 422
    assert CEL_MESSAGE in err.value.body
