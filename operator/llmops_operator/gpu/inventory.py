"""GPUs as the cluster shows them: the nodes' inventory, and the count a running revision was
rendered with (which a revision keeps). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu.planner import GpuNodeInfo, Plan
from llmops_operator.resources import GPU_PRODUCT_LABEL, GPU_RESOURCE

GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"


def inventory(nodes: Mapping[str, Mapping[str, Any]]) -> list[GpuNodeInfo] | None:
    """GPU nodes from the node cache ({name: {labels, allocatable}}); None when no node is known
    (e.g. no permission to list nodes): then there is no capacity check."""
    if not nodes:
        return None
    found = []
    for name, node in nodes.items():
        product = node["labels"].get(GPU_PRODUCT_LABEL)
        gpus = node["allocatable"].get(GPU_RESOURCE)
        if not product or not gpus:
            continue
        memory = node["labels"].get(GPU_MEMORY_LABEL)
        found.append(
            GpuNodeInfo(
                name=name, product=product, gpus=int(gpus), memory_mib=int(memory) if memory else None
            )
        )
    return found


def deployed_gpus(deployment: Mapping[str, Any]) -> int | None:
    """The GPUs per replica a Deployment was rendered with."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        limit = ((container.get("resources") or {}).get("limits") or {}).get(GPU_RESOURCE)
        if limit is not None:
            return int(limit)
    return None


def sticky_plan(
    gpu_plan: Plan,
    spec: ModelSpec,
    deployments: Sequence[Mapping[str, Any]],
    deployment_name: str,
    revision: str,
    facts_error: str | None,
) -> Plan:
    """With `gpus: auto`, a revision keeps the GPU count it was first rendered with: model facts
    or inventory that arrive later must not resize it in place (the count is not in its hash)."""
    if spec.resources.gpus != "auto":
        return gpu_plan
    if facts_error:
        gpu_plan = replace(gpu_plan, reason=f"{gpu_plan.reason}; model metadata: {facts_error}")
    for deployment in deployments:
        if deployment["metadata"]["name"] != deployment_name:
            continue
        gpus = deployed_gpus(deployment)
        if gpus is not None and gpus != gpu_plan.gpus:
            tensor_parallel = (
                gpus if spec.serving.tensor_parallel_size == "auto" else gpu_plan.tensor_parallel_size
            )
            return replace(
                gpu_plan,
                gpus=gpus,
                tensor_parallel_size=tensor_parallel,
                reason=f"{gpus} GPUs, as revision {revision} was first planned",
            )
    return gpu_plan
