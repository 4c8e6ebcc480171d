"""Keeps the metrics emitter's simulated pods equal to the engine pods running in the cluster.

Stands in for what a real engine pod does by itself: expose its metrics while it runs. KWOK pods
run no containers, so this polls the API server for Running engine pods (label
`llmops.dev/component=engine`) and registers each with the emitter under its real namespace, pod
name, engine, Model and revision. Shapes set per revision apply to new pods as they come.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from llmops_sim.emitter import Emitter, SimPod
from llmops_sim.poller import Poller

ENGINE_SELECTOR = "llmops.dev/component=engine"


def engine_of(pod: Any) -> str:
    """Engine type from the container image (vllm, tensorrt-llm or onnxruntime)."""
    image = (pod.spec.containers[0].image or "") if pod.spec and pod.spec.containers else ""
    if "tritonserver" in image:
        return "onnxruntime"
    if "tensorrt" in image or "trtllm" in image:
        return "tensorrt-llm"
    return "vllm"


def running_engine_pods(api: k8s.CoreV1Api, namespace: str | None = None) -> list[SimPod]:
    """The Running, non-terminating engine pods as emitter pods."""
    pods = (
        api.list_namespaced_pod(namespace, label_selector=ENGINE_SELECTOR)
        if namespace
        else api.list_pod_for_all_namespaces(label_selector=ENGINE_SELECTOR)
    )
    result = []
    for pod in pods.items:
        if pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
            continue
        labels = pod.metadata.labels or {}
        result.append(
            SimPod(
                namespace=pod.metadata.namespace,
                pod=pod.metadata.name,
                engine=engine_of(pod),
                model=labels.get("llmops.dev/model", ""),
                revision=labels.get("llmops.dev/revision", ""),
            )
        )
    return result


class PodMirror(Poller):
    """A background thread syncing the emitter with the cluster every `interval` seconds."""

    name = "pod-mirror"

    def __init__(
        self, emitter: Emitter, api_client: k8s.ApiClient, namespace: str | None = None, interval: float = 1.0
    ) -> None:
        super().__init__(interval)
        self.emitter = emitter
        self.api = k8s.CoreV1Api(api_client)
        self.namespace = namespace

    def poll(self) -> list[SimPod]:
        pods = running_engine_pods(self.api, self.namespace)
        self.emitter.set_pods(pods)
        return pods
