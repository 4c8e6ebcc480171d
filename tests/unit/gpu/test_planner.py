"""GPU planning: sizing from model facts, product preference, capacity, and reasons."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu.planner import DEFAULT_GPUS, GpuNodeInfo, ModelFacts, estimate_memory_gib, plan

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
LLAMA_8B = ModelFacts(8_030_000_000, 32, 32, 8, 128, 131072)
LLAMA_70B = ModelFacts(70_550_000_000, 80, 64, 8, 128, 131072)


def make_spec(gpus: Any = "auto", products: list[str] | None = None, **serving: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "source": {"uri": "hf://org/repo"},
            "engine": {"type": "vllm"},
            "resources": {"gpus": gpus, "gpuProducts": products or []},
            "serving": {"maxModelLen": 8192, **serving},
        }
    )


def nodes(*specs: tuple[str, int]) -> list[GpuNodeInfo]:
    return [GpuNodeInfo(f"node-{i}", product, count) for i, (product, count) in enumerate(specs)]


def test_llama_8b_bf16_fits_one_h100() -> None:
    assert estimate_memory_gib(make_spec(dtype="bfloat16"), LLAMA_8B) == pytest.approx(19.2, abs=0.2)
    result = plan(make_spec(products=[H100]), nodes((H100, 8)), LLAMA_8B)
    assert (result.gpus, result.gpu_product, result.tensor_parallel_size, result.fits) == (1, H100, 1, True)


@pytest.mark.parametrize(
    ("spec", "inventory", "facts", "expected"),
    [
        # 70B bf16 + 16k context ~ 164 GiB -> 3 x 71.6 GiB usable -> next power of two: 4
        (make_spec(products=[H100], maxModelLen=16384), nodes((H100, 8)), LLAMA_70B, (4, H100, 4, True)),
        # first preference absent, second present
        (make_spec(products=[H100, A100]), nodes((A100, 8)), LLAMA_70B, (4, A100, 4, True)),
        # explicit count, capacity only
        (make_spec(gpus=2, products=[H100]), nodes((H100, 2)), None, (2, H100, 2, True)),
        # explicit tensor parallel smaller than the GPU count
        (
            make_spec(gpus=4, products=[H100], tensorParallelSize=2),
            nodes((H100, 8)),
            None,
            (4, H100, 2, True),
        ),
        # unknown facts: documented default
        (make_spec(products=[H100]), nodes((H100, 8)), None, (DEFAULT_GPUS, H100, DEFAULT_GPUS, True)),
        # unknown inventory: no capacity check, first preference
        (make_spec(products=[H100, A100]), None, LLAMA_70B, (4, H100, 4, True)),
        # no preference: the inventory's largest-memory product first
        (make_spec(), nodes((L4, 4), (H100, 8)), LLAMA_8B, (1, H100, 1, True)),
        # no preference, no inventory
        (make_spec(), None, None, (DEFAULT_GPUS, None, DEFAULT_GPUS, True)),
    ],
)
def test_plan_table(spec: ModelSpec, inventory: Any, facts: Any, expected: tuple[Any, ...]) -> None:
    result = plan(spec, inventory, facts)
    assert (result.gpus, result.gpu_product, result.tensor_parallel_size, result.fits) == expected, (
        result.reason
    )


@pytest.mark.parametrize(
    ("spec", "inventory", "facts", "reason"),
    [
        (
            make_spec(gpus=9, products=[H100]),
            nodes((H100, 8), (H100, 4)),
            None,
            f"no node offers 9 x {H100}; the largest has 8",
        ),
        (make_spec(products=[H100]), nodes((A100, 8)), None, f"no node has {H100}"),
        (
            make_spec(products=[L4]),
            nodes((L4, 8)),
            ModelFacts(400_000_000_000, 126, 128, 8, 128),
            "does not fit 8 x NVIDIA-L4",
        ),
        (make_spec(), [], None, "no node has allocatable nvidia.com/gpu"),
        (
            make_spec(products=["Made-Up-GPU"]),
            nodes(("Made-Up-GPU", 8)),
            LLAMA_8B,
            "memory of Made-Up-GPU unknown",
        ),
    ],
)
def test_nothing_fits_says_why(spec: ModelSpec, inventory: Any, facts: Any, reason: str) -> None:
    result = plan(spec, inventory, facts)
    assert not result.fits
    assert result.gpu_product is None
    assert reason in result.reason


def test_node_memory_label_overrides_the_table() -> None:
    inventory = [GpuNodeInfo("n", "Made-Up-GPU", 8, memory_mib=16 * 1024)]
    result = plan(make_spec(products=["Made-Up-GPU"]), inventory, LLAMA_8B)
    assert result.fits and result.gpus == 2


def test_cpu_plan_for_onnxruntime() -> None:
    spec = ModelSpec.model_validate(
        {"source": {"uri": "pvc://models/repo"}, "engine": {"type": "onnxruntime"}, "resources": {"gpus": 0}}
    )
    result = plan(spec, [], None)
    assert (result.gpus, result.gpu_product, result.fits) == (0, None, True)


def test_plan_to_status() -> None:
    status = plan(make_spec(products=[H100]), nodes((H100, 8)), LLAMA_8B).to_status()
    assert status.to_wire()["gpuProduct"] == H100
    assert status.to_wire()["estimatedMemoryGiB"] > 0


inventories = st.lists(
    st.builds(GpuNodeInfo, st.just("n"), st.sampled_from([H100, A100, L4]), st.integers(0, 8)), max_size=6
)
facts_strategy = st.builds(
    ModelFacts,
    st.integers(100_000_000, 500_000_000_000),
    st.integers(1, 128),
    st.sampled_from([8, 16, 32, 64, 128]),
    st.sampled_from([1, 4, 8]),
    st.sampled_from([64, 128]),
)


@given(
    inventory=inventories,
    facts=facts_strategy,
    products=st.lists(st.sampled_from([H100, A100, L4]), unique=True, max_size=3),
)
def test_a_fitting_plan_is_always_schedulable(
    inventory: list[GpuNodeInfo], facts: ModelFacts, products: list[str]
) -> None:
    result = plan(make_spec(products=products), inventory, facts)
    if result.fits:
        assert any(n.product == result.gpu_product and n.gpus >= result.gpus for n in inventory)
        assert not products or result.gpu_product in products
        assert facts.num_attention_heads % result.tensor_parallel_size == 0
    else:
        assert result.reason


@given(small=st.integers(10**8, 10**11), extra=st.integers(0, 10**11))
def test_more_parameters_never_need_fewer_gpus(small: int, extra: int) -> None:
    inventory = nodes((H100, 8))
    spec = make_spec(products=[H100])
    a = plan(spec, inventory, ModelFacts(small, 32, 32, 8, 128))
    b = plan(spec, inventory, ModelFacts(small + extra, 32, 32, 8, 128))
    if a.fits and b.fits:
        assert b.gpus >= a.gpus
    assert a.fits or not b.fits
