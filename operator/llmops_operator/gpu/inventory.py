"""GPUs as the cluster shows them: the nodes' inventory, and the count a running revision was
rendered with (which a revision keeps). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu.planner import GpuNodeInfo, Plan
from llmops_operator.resources import GPU_PRODUCT_LABEL, GPU_RESOURCE

GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"


def gpu_node(name: str, node: Mapping[str, Any]) -> tuple[GpuNodeInfo | None, str | None]:
    """(the node as the planner sees it, what is wrong with its labels). A node without GPUs is
    (None, None); a node whose GPU labels or count do not parse is left out, with the reason,
    so one mislabelled node never stops the planning of every Model."""
    labels, allocatable = node.get("labels") or {}, node.get("allocatable") or {}
    product, gpus = labels.get(GPU_PRODUCT_LABEL), allocatable.get(GPU_RESOURCE)
    if not product or not gpus:
        return None, None
    memory = labels.get(GPU_MEMORY_LABEL)
    if not _whole(gpus):
        return None, f"allocatable {GPU_RESOURCE}={str(gpus)[:64]!r} is not a whole number"
    if memory and not _whole(memory):
        return None, (
            f"label {GPU_MEMORY_LABEL}={str(memory)[:64]!r} is not a whole number of MiB "
            "(e.g. 81920); GPU Feature Discovery writes it that way"
        )
    return GpuNodeInfo(
        name=name, product=product, gpus=int(gpus), memory_mib=int(memory) if memory else None
    ), None


def _whole(value: object) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 12


@dataclass(frozen=True)
class ParsedNode:
    """One node as the node cache keeps it: parsed once per resourceVersion, not once per pass."""

    resource_version: str | None
    info: GpuNodeInfo | None
    """None: no GPUs, or labels that do not parse (then `problem` says why)."""
    problem: str | None


def parse_node(name: str, node: Mapping[str, Any]) -> ParsedNode:
    """A Node object (metadata.labels, status.allocatable) as the node cache keeps it."""
    meta = node.get("metadata") or {}
    info, problem = gpu_node(
        name,
        {"labels": meta.get("labels"), "allocatable": (node.get("status") or {}).get("allocatable")},
    )
    return ParsedNode(meta.get("resourceVersion"), info, problem)


def inventory(nodes: Iterable[ParsedNode]) -> tuple[GpuNodeInfo, ...] | None:
    """GPU nodes of the parsed nodes; None when no node is known (e.g. no permission to list
    nodes): then there is no capacity check. Nodes whose labels do not parse are left out (the
    node's own Warning Event says why)."""
    nodes = list(nodes)
    if not nodes:
        return None
    return tuple(node.info for node in nodes if node.info is not None)


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
