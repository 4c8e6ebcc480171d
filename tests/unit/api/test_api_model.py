"""Model spec validation: the pydantic mirror of the CRD's CEL rules, with the same messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import ModelStatus


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "engine": {"type": "vllm"},
    }
    for path, value in overrides.items():
        node = body
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return body


def test_minimal_spec_gets_documented_defaults() -> None:
    model = ModelSpec.model_validate(spec())
    assert model.resources.gpus == "auto"
    assert model.serving.tensor_parallel_size == "auto"
    assert model.replicas == 1
    assert model.cache.enabled is False
    assert model.rollout.strategy == "RollingUpdate"
    assert model.rollout.revision_history_limit == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resources__gpus": 0}, "only onnxruntime can run on CPU"),
        ({"engine__type": "tensorrt-llm", "resources__gpus": 0}, "only onnxruntime can run on CPU"),
        ({"resources__gpus": -1}, "greater than or equal to 0"),
        ({"resources__gpus": "many"}, "auto"),
        ({"engine__type": "tgi"}, "vllm"),
        ({"source__uri": "http://example.com/model"}, "must start with hf://, s3:// or pvc://"),
        ({"source__uri": "hf://only-org"}, "hf://<org>/<repo>"),
        ({"source__uri": "s3://B/x", "cache__enabled": True}, "s3://<bucket>/<prefix>"),
        ({"source__uri": "pvc://Claim/x"}, "pvc://<claim>/<path>"),
        ({"source__uri": "s3://bucket/llama"}, "set cache.enabled: true"),
        ({"source__uri": "pvc://models/x", "source__revision": "abc"}, "hf:// URIs only"),
        ({"engine__type": "onnxruntime"}, "with an hf:// source set cache.enabled"),
        ({"resources__gpus": 4, "serving__tensorParallelSize": 3}, "must divide resources.gpus"),
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2, "target": 1}},
            "maxReplicas must be >= minReplicas",
        ),
        ({"engine__env": [{"name": "HF_TOKEN", "value": "hf_secret"}]}, "HF_TOKEN must not be a literal"),
        (
            {"engine__env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
            "not both",
        ),
        ({"engine__env": [{"name": "A", "valueFrom": {}}]}, "exactly one of"),
        ({"resources__memory": "64 GB"}, "not a Kubernetes quantity"),
        ({"replicas": -1}, "greater than or equal to 0"),
        ({"unknownField": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_rejected_with_an_actionable_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelSpec.model_validate(spec(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {"engine__type": "onnxruntime", "resources__gpus": 0, "source__uri": "pvc://models/repo"},
        {"source__uri": "s3://my-bucket/llama/8b", "cache__enabled": True},
        {"resources__gpus": 4, "serving__tensorParallelSize": 2},
        {"resources__gpus": "auto", "serving__tensorParallelSize": 4},
        {"engine__env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 2, "target": 4}},
    ],
)
def test_good_input_is_accepted(overrides: dict[str, Any]) -> None:
    ModelSpec.model_validate(spec(**overrides))


@pytest.mark.parametrize(
    ("given_value", "wire"), [(8, "8"), ("500m", "500m"), (1.5, "1.5"), ("64Gi", "64Gi")]
)
def test_quantities_accept_numbers_and_keep_strings_on_the_wire(given_value: Any, wire: str) -> None:
    model = ModelSpec.model_validate(spec(resources__cpu=given_value))
    assert model.to_wire()["resources"]["cpu"] == wire


@given(
    org=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    repo=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True),
    gpus=st.one_of(st.just("auto"), st.integers(1, 16)),
    replicas=st.integers(0, 50),
)
def test_valid_specs_round_trip_through_the_wire_form(org: str, repo: str, gpus: Any, replicas: int) -> None:
    model = ModelSpec.model_validate(
        spec(source__uri=f"hf://{org}/{repo}", resources__gpus=gpus, replicas=replicas)
    )
    assert ModelSpec.model_validate(model.to_wire()) == model


def test_status_tolerates_fields_from_newer_operators() -> None:
    status = ModelStatus.model_validate(
        {"phase": "Ready", "plan": {"gpus": 2, "estimatedMemoryGiB": 19.5}, "somethingNew": 1}
    )
    assert status.plan is not None
    assert status.plan.estimated_memory_gib == 19.5
    assert status.to_wire()["plan"]["estimatedMemoryGiB"] == 19.5
