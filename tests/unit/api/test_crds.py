"""crds/ is generated from the pydantic models, is structural, and agrees with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api import crdgen
from llmops_operator.api.model import ModelSpec, ResourcesSpec, RolloutSpec

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "crds"
GENERATED = crdgen.generate_all()


def schema_of(plural: str) -> dict[str, Any]:
    manifest = GENERATED[f"{plural}.llmops.dev.yaml"]
    return manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


def test_committed_crds_match_the_models() -> None:
    stale = crdgen.stale_files(CRDS)
    assert not stale, f"crds/ is stale ({', '.join(stale)}): run make crds"
    committed = {p.name for p in CRDS.glob("*.llmops.dev.yaml")}
    assert committed == set(GENERATED), (
        f"unexpected CRDs in crds/: {committed - set(GENERATED)}; run make crds"
    )


def test_check_mode_fails_on_a_stale_directory(tmp_path: Path) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "models.llmops.dev.yaml").write_text("stale\n")
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("filename", sorted(GENERATED))
def test_schemas_are_structural(filename: str) -> None:
    root = GENERATED[filename]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in nodes(root):
        assert "$ref" not in node and "$defs" not in node, path
        assert "title" not in node and "const" not in node, path
        assert "nullable" not in node, path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path} has no type"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        assert not ("properties" in node and "additionalProperties" in node), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), f"{path}.{bound} must be boolean"
        if node.get("type") == "array" and node["items"].get("x-kubernetes-validations"):
            assert "maxItems" in node, f"{path}: CEL on list items needs maxItems (cost limit)"


@pytest.mark.parametrize("filename", sorted(GENERATED))
def test_cel_rules_only_use_typed_fields(filename: str) -> None:
    """kube-apiserver refuses the CRD otherwise ("undefined field"): untyped fields are
    invisible to CEL. Check such rules in pydantic validators instead."""
    root = GENERATED[filename]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert crdgen.cel_blind_spots(root) == []


def test_cel_blind_spot_detector_finds_untyped_fields() -> None:
    node = {
        "type": "object",
        "properties": {"value": {"x-kubernetes-preserve-unknown-fields": True}, "n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "has(self.value) || self.n > 0", "message": "m"}],
    }
    assert len(crdgen.cel_blind_spots(node)) == 1


def test_model_crd_names_columns_and_subresources() -> None:
    manifest = GENERATED["models.llmops.dev.yaml"]
    names = manifest["spec"]["names"]
    assert names["shortNames"] == ["llm"] and names["categories"] == ["llmops"]
    version = manifest["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Engine"] == ".spec.engine.type"
    assert columns["Weight"] == ".status.rollout.weight"
    assert columns["Ready"] == ".status.readyReplicas"
    assert [c["name"] for c in version["additionalPrinterColumns"]][:7] == [
        "Engine",
        "Stable",
        "Canary",
        "Weight",
        "Ready",
        "Phase",
        "Age",
    ]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in version["subresources"]


@pytest.mark.parametrize(
    ("plural", "short"), [("promptversions", "pv"), ("evalgates", "eg"), ("evalruns", "er")]
)
def test_other_kinds_are_generated(plural: str, short: str) -> None:
    manifest = GENERATED[f"{plural}.llmops.dev.yaml"]
    assert manifest["spec"]["names"]["shortNames"] == [short]
    assert "status" in manifest["spec"]["versions"][0]["subresources"]


def test_prompt_version_spec_is_immutable() -> None:
    rules = schema_of("promptversions")["properties"]["spec"]["x-kubernetes-validations"]
    assert any(r["rule"] == "self == oldSelf" for r in rules)


def test_model_schema_spot_checks() -> None:
    spec = schema_of("models")["properties"]["spec"]
    props = spec["properties"]
    assert props["engine"]["properties"]["type"]["enum"] == ["vllm", "tensorrt-llm", "onnxruntime"]
    gpus = props["resources"]["properties"]["gpus"]
    assert gpus["x-kubernetes-int-or-string"] and gpus["default"] == "auto"
    assert "self == 'auto'" in gpus["x-kubernetes-validations"][0]["rule"]
    assert (
        props["autoscaling"]["x-kubernetes-validations"][0]["rule"] == "self.maxReplicas >= self.minReplicas"
    )
    assert any("onnxruntime" in r["rule"] for r in spec["x-kubernetes-validations"])
    assert props["resources"]["default"] == ResourcesSpec().to_wire()
    assert props["rollout"]["default"] == RolloutSpec().to_wire()
    assert props["source"]["properties"]["uri"]["maxLength"] == 1024
    assert all(r.get("message") for _, n in nodes(spec) for r in n.get("x-kubernetes-validations", []))
    assert "description" in props["serving"]["properties"]["maxModelLen"]
    root_rules = schema_of("models")["x-kubernetes-validations"]
    assert any("metadata.name" in r["rule"] for r in root_rules)


def test_descriptions_join_wrapped_docstring_lines() -> None:
    for _, node in nodes(schema_of("models")):
        for paragraph in node.get("description", "").split("\n\n"):
            assert "\n" not in paragraph, node["description"]


def test_union_without_structural_form_is_refused() -> None:
    with pytest.raises(ValueError, match="no structural form"):
        crdgen._convert({"anyOf": [{"type": "string"}, {"type": "object", "properties": {}}]})


@settings(max_examples=50)
@given(
    gpus=st.one_of(st.just("auto"), st.integers(1, 8)),
    replicas=st.integers(0, 20),
    args=st.lists(st.text(min_size=1, max_size=30), max_size=5),
    dtype=st.sampled_from(["auto", "bfloat16", "float16"]),
    max_len=st.one_of(st.none(), st.integers(1, 1 << 20)),
)
def test_valid_specs_validate_against_the_crd_schema(
    gpus: Any, replicas: int, args: list[str], dtype: str, max_len: int | None
) -> None:
    model = ModelSpec.model_validate(
        {
            "source": {"uri": "hf://org/repo", "revision": "main"},
            "engine": {"type": "vllm", "args": args},
            "resources": {"gpus": gpus, "cpu": 4},
            "serving": {"dtype": dtype, "maxModelLen": max_len},
            "replicas": replicas,
        }
    )
    # OpenAPI v3.0 bounds (boolean exclusiveMinimum) are draft-4 JSON Schema
    jsonschema.Draft4Validator(schema_of("models")["properties"]["spec"]).validate(model.to_wire())


def test_generated_yaml_loads_back_to_the_same_manifest() -> None:
    for name, manifest in GENERATED.items():
        assert yaml.safe_load(crdgen.render(manifest)) == manifest, name
