"""The node cache parses each node once per resourceVersion and hands every pass the same
inventory until a node changes (issue 10: no per-pass re-parse of every node's labels)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.gpu.inventory import inventory, parse_node
from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.runtime.store import NodeCache

H100 = "NVIDIA-H100-80GB-HBM3"


def node(
    name: str, rv: str, product: str | None = H100, gpus: str = "8", memory: str = "81559"
) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": memory} if product else {}
    return {
        "metadata": {"name": name, "resourceVersion": rv, "labels": labels},
        "status": {"allocatable": {"nvidia.com/gpu": gpus, "cpu": "8"}},
    }


def test_parse_node_keeps_version_info_and_problem() -> None:
    good = parse_node("a", node("a", "7"))
    assert good.resource_version == "7"
    assert good.info == GpuNodeInfo("a", H100, 8, 81559)
    assert good.problem is None
    bad = parse_node("b", node("b", "9", memory="80GB"))
    assert bad.info is None and bad.problem is not None and "gpu.memory" in bad.problem
    cpu_only = parse_node("c", node("c", "3", product=None))
    assert (cpu_only.info, cpu_only.problem) == (None, None)


def test_inventory_is_the_same_tuple_until_a_node_changes() -> None:
    cache = NodeCache()
    assert cache.inventory() is None, "no node known: no capacity check"
    cache["a"] = parse_node("a", node("a", "1"))
    cache["b"] = parse_node("b", node("b", "1", memory="x"))  # left out, with its problem
    first = cache.inventory()
    assert first == (GpuNodeInfo("a", H100, 8, 81559),)
    assert cache.inventory() is first, "no node changed: nothing re-parsed or rebuilt"
    cache["b"] = parse_node("b", node("b", "2"))
    second = cache.inventory()
    assert second is not None and {n.name for n in second} == {"a", "b"}
    cache.pop("a")
    cache.pop("b")
    assert cache.inventory() is None


@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.booleans(), st.sampled_from(["1", "4", "x", ""])), max_size=20
    )
)
def test_cached_inventory_equals_a_fresh_parse(changes: list[tuple[str, bool, str]]) -> None:
    cache = NodeCache()
    current: dict[str, dict[str, Any]] = {}
    for rv, (name, delete, gpus) in enumerate(changes):
        if delete:
            cache.pop(name)
            current.pop(name, None)
        else:
            current[name] = node(name, str(rv), gpus=gpus)
            cache[name] = parse_node(name, current[name])
        fresh = inventory(parse_node(n, body) for n, body in current.items())
        assert sorted(cache.inventory() or (), key=str) == sorted(fresh or (), key=str)
        assert (cache.inventory() is None) == (fresh is None)
