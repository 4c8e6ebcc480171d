"""Every examples/model-*.yaml is valid: for the pydantic model and for the generated CRD schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from llmops_operator.api import crdgen
from llmops_operator.api.model import ModelSpec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("model-*.yaml"))
SCHEMA = crdgen.generate_all()["models.llmops.dev.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_the_three_engine_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "model-vllm.yaml",
        "model-tensorrt-llm.yaml",
        "model-onnxruntime.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    models = [d for d in documents if d.get("kind") == "Model"]
    assert models, f"{path.name} holds no Model"
    for obj in models:
        assert obj["apiVersion"] == "llmops.dev/v1alpha1"
        ModelSpec.model_validate(obj["spec"])
        jsonschema.Draft4Validator(SCHEMA).validate(obj)


def test_vllm_example_asks_for_two_h100s() -> None:
    obj = yaml.safe_load((EXAMPLES[0].parent / "model-vllm.yaml").read_text())
    spec = ModelSpec.model_validate(obj["spec"])
    assert spec.engine.type == "vllm"
    assert spec.resources.gpus == 2
    assert spec.resources.gpu_products[0] == "NVIDIA-H100-80GB-HBM3"
