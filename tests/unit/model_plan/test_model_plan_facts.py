"""`gpus: auto` is sized from the model's metadata, and a running revision keeps its size."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmops_operator.gpu.inventory import deployed_gpus
from llmops_operator.gpu.planner import ModelFacts
from llmops_operator.model_plan import World, plan_model

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LLAMA_70B = ModelFacts(
    parameter_count=70_553_706_496,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=131072,
    bytes_per_param=2,
)


def _model(gpus: Any = "auto") -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "source": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"},
            "engine": {"type": "vllm"},
            "resources": {"gpus": gpus, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
            "serving": {"maxModelLen": 16384},
        },
    }


def _deployment_of(plan: Any) -> dict[str, Any]:
    return next(o for o in plan.apply if o["kind"] == "Deployment")


def test_auto_gpus_follow_the_model_size() -> None:
    sized = plan_model(World(model=_model(), now=NOW, operator_image="img", model_facts=LLAMA_70B))
    unknown = plan_model(
        World(model=_model(), now=NOW, operator_image="img", model_facts_error="ConnectError: no route")
    )
    assert deployed_gpus(_deployment_of(sized)) == sized.status["plan"]["gpus"] > 1
    assert deployed_gpus(_deployment_of(unknown)) == 1
    assert "ConnectError: no route" in unknown.status["plan"]["reason"]


def test_a_running_revision_keeps_its_gpu_count_when_facts_arrive_later() -> None:
    first = plan_model(World(model=_model(), now=NOW, operator_image="img"))
    running = _deployment_of(first)
    running["status"] = {"replicas": 1, "readyReplicas": 1}
    later = plan_model(
        World(
            model={**_model(), "status": first.status},
            now=NOW,
            operator_image="img",
            deployments=[running],
            model_facts=LLAMA_70B,
        )
    )
    assert deployed_gpus(_deployment_of(later)) == 1
    assert later.status["plan"]["gpus"] == 1


def test_explicit_gpus_ignore_model_facts() -> None:
    plan = plan_model(World(model=_model(gpus=2), now=NOW, operator_image="img", model_facts=LLAMA_70B))
    assert deployed_gpus(_deployment_of(plan)) == 2


def test_a_new_revision_waits_for_a_pending_lookup_and_then_gets_its_size() -> None:
    """Given the Hub lookup still running, Then the first revision is held (no Deployment yet,
    a short requeue, a message naming the source); When the facts arrive, it is sized from them."""
    held = plan_model(World(model=_model(), now=NOW, operator_image="img", model_facts_pending=True))
    assert not any(o["kind"] == "Deployment" for o in held.apply)
    assert held.requeue_after is not None and held.requeue_after <= 2
    progressing = next(c for c in held.status["conditions"] if c["type"] == "Progressing")
    assert "Hugging Face Hub" in progressing["message"]
    sized = plan_model(
        World(model={**_model(), "status": held.status}, now=NOW, operator_image="img", model_facts=LLAMA_70B)
    )
    assert deployed_gpus(_deployment_of(sized)) > 1
