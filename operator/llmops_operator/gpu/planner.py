"""GPU planning: how many GPUs of which product one replica needs, or why nothing fits. Pure.

Memory estimate per replica (engines.md §5), in GiB:

    weights  = parameter_count x bytes_per_param(dtype)
    kv_cache = 2 x layers x kv_heads x head_dim x bytes_per_param x context     (one full sequence)
    required = (weights + kv_cache) x OVERHEAD                                  (activations, CUDA graphs)

A GPU offers `memory x gpuMemoryUtilization` (engine default 0.9). `gpus: auto` becomes the
smallest power of two (tensor parallel sizes engines accept; at most `MAX_GPUS_PER_REPLICA`)
whose GPUs hold `required` and that divides the attention heads. Without model facts it is
`DEFAULT_GPUS`. The product is the first of `resources.gpuProducts` (or, when that is empty, of
the inventory's products, largest memory first) on which some node has that many GPUs.
Capacity means allocatable GPUs of one node, not free ones: waiting for room is the scheduler's
job, a replica no node can ever hold is ours to report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import PlanStatus

DEFAULT_GPUS = 1
"""GPUs per replica for `gpus: auto` when the model's size is unknown."""
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
OVERHEAD = 1.2
MAX_GPUS_PER_REPLICA = 8
DEFAULT_CONTEXT = 4096
"""Context assumed when neither `serving.maxModelLen` nor the model's own limit is known."""
GIB = 1024**3

BYTES_PER_DTYPE = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}

GPU_MEMORY_GIB: dict[str, float] = {
    "NVIDIA-H100-80GB-HBM3": 79.6,
    "NVIDIA-H100-PCIe": 79.6,
    "NVIDIA-H200": 131.0,
    "NVIDIA-B200": 167.0,
    "NVIDIA-A100-SXM4-80GB": 79.2,
    "NVIDIA-A100-80GB-PCIe": 79.2,
    "NVIDIA-A100-SXM4-40GB": 38.6,
    "NVIDIA-A100-PCIE-40GB": 38.6,
    "NVIDIA-L40S": 45.0,
    "NVIDIA-L4": 22.0,
    "NVIDIA-A10G": 22.5,
    "Tesla-T4": 15.0,
}
"""Usable memory of common GPUs (`nvidia.com/gpu.memory` MiB / 1024), used when nodes carry no
memory label. Spec-sheet values for H200, B200 and L4."""


@dataclass(frozen=True)
class GpuNodeInfo:
    """What the planner needs to know about one GPU node (from its labels and allocatable)."""

    name: str
    product: str
    """`nvidia.com/gpu.product` label."""
    gpus: int
    """Allocatable `nvidia.com/gpu`."""
    memory_mib: int | None = None
    """`nvidia.com/gpu.memory` label, per GPU."""


@dataclass(frozen=True)
class ModelFacts:
    """Size facts of the model (safetensors header and config.json)."""

    parameter_count: int
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    max_position_embeddings: int | None = None
    bytes_per_param: float | None = None
    """Bytes per parameter as stored (e.g. 2 for BF16); used when `serving.dtype` is auto."""


@dataclass(frozen=True)
class Plan:
    """The planner's answer for one revision."""

    gpus: int
    gpu_product: str | None
    tensor_parallel_size: int
    estimated_memory_gib: float | None
    reason: str
    fits: bool = True
    """False when no node can hold a replica; `reason` says why."""

    def to_status(self) -> PlanStatus:
        """`status.plan`."""
        return PlanStatus(
            gpus=self.gpus,
            gpu_product=self.gpu_product,
            tensor_parallel_size=self.tensor_parallel_size,
            estimated_memory_gib=self.estimated_memory_gib,
            reason=self.reason,
        )


def estimate_memory_gib(spec: ModelSpec, facts: ModelFacts) -> float:
    """Estimated GPU memory one replica needs (weights + one full-length KV cache + overhead)."""
    dtype = spec.serving.dtype
    bytes_per_param = BYTES_PER_DTYPE.get(dtype) or facts.bytes_per_param or 2
    weights = facts.parameter_count * bytes_per_param
    kv = 0.0
    kv_heads = facts.num_key_value_heads or facts.num_attention_heads
    if facts.num_hidden_layers and kv_heads and facts.head_dim:
        context = spec.serving.max_model_len or facts.max_position_embeddings or DEFAULT_CONTEXT
        kv = 2 * facts.num_hidden_layers * kv_heads * facts.head_dim * bytes_per_param * context
    return round((weights + kv) * OVERHEAD / GIB, 1)


def product_memory_gib(product: str, inventory: Sequence[GpuNodeInfo] | None) -> float | None:
    """Per-GPU memory of a product: a node's label if any, else the known table."""
    for node in inventory or ():
        if node.product == product and node.memory_mib:
            return round(node.memory_mib / 1024, 1)
    return GPU_MEMORY_GIB.get(product)


def gpus_needed(required_gib: float, gpu_gib: float, utilization: float, heads: int | None) -> int | None:
    """Smallest power-of-two GPU count that holds `required_gib` and divides `heads`; None if
    even `MAX_GPUS_PER_REPLICA` is not enough."""
    minimum = max(1, math.ceil(required_gib / (gpu_gib * utilization)))
    count = 1
    while count <= MAX_GPUS_PER_REPLICA:
        if count >= minimum and (not heads or heads % count == 0):
            return count
        count *= 2
    return None


def _candidates(spec: ModelSpec, inventory: Sequence[GpuNodeInfo] | None) -> list[str]:
    if spec.resources.gpu_products:
        return list(spec.resources.gpu_products)
    products = {node.product for node in inventory or ()}
    return sorted(products, key=lambda p: (-(product_memory_gib(p, inventory) or 0), p))


def _largest_node(product: str, inventory: Sequence[GpuNodeInfo]) -> int:
    return max((node.gpus for node in inventory if node.product == product), default=0)


def plan(
    spec: ModelSpec, inventory: Sequence[GpuNodeInfo] | None = None, model_facts: ModelFacts | None = None
) -> Plan:
    """Resolve `gpus`, `tensorParallelSize` and the GPU product for one replica.

    `inventory` None means unknown (no capacity check); an empty list means no GPU nodes.
    """
    requested = spec.resources.gpus
    tp_requested = spec.serving.tensor_parallel_size
    estimate = estimate_memory_gib(spec, model_facts) if model_facts else None
    if requested == 0:
        return Plan(0, None, 1, estimate, "gpus: 0, the replica runs on CPU")

    def tensor_parallel(gpus: int) -> int:
        return gpus if tp_requested == "auto" else tp_requested

    utilization = spec.serving.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
    heads = model_facts.num_attention_heads if model_facts else None
    candidates = _candidates(spec, inventory)
    problems: list[str] = []
    first_need: int | None = None
    for product in candidates:
        if requested != "auto":
            need, how = requested, f"{requested} GPUs requested"
        elif estimate is None:
            need, how = DEFAULT_GPUS, f"model size unknown, default {DEFAULT_GPUS} GPU"
        else:
            memory = product_memory_gib(product, inventory)
            if memory is None:
                problems.append(f"memory of {product} unknown (nodes carry no nvidia.com/gpu.memory label)")
                continue
            need = gpus_needed(estimate, memory, utilization, heads)
            if need is None:
                problems.append(
                    f"{estimate} GiB does not fit {MAX_GPUS_PER_REPLICA} x {product} ({memory} GiB each)"
                )
                continue
            how = f"~{estimate} GiB over {need} x {memory} GiB at {utilization:.0%}"
        first_need = first_need or need
        if inventory is not None:
            largest = _largest_node(product, inventory)
            if largest == 0:
                problems.append(f"no node has {product}")
                continue
            if largest < need:
                problems.append(f"no node offers {need} x {product}; the largest has {largest}")
                continue
        return Plan(need, product, tensor_parallel(need), estimate, f"{how} on {product}")

    if not candidates:
        need = requested if requested != "auto" else DEFAULT_GPUS
        if inventory is None:
            how = f"{need} GPUs requested" if requested != "auto" else f"default {DEFAULT_GPUS} GPU"
            return Plan(need, None, tensor_parallel(need), estimate, f"{how}, any GPU product")
        problems.append("no node has allocatable nvidia.com/gpu")
    gpus = first_need or (requested if requested != "auto" else DEFAULT_GPUS)
    return Plan(gpus, None, tensor_parallel(gpus), estimate, "; ".join(problems), fits=False)
