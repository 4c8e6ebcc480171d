"""References are names, never paths; durations, counts and sizes are bounded in the schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api import crdgen
from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.api.common import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, SecretKeyRef
from llmops_operator.api.durations import parse_duration
from llmops_operator.api.model import ModelSpec, SourceSpec
from llmops_operator.api.rollout import PauseStep
from llmops_operator.kube.client import InvalidName, object_path

REFERENCE_FIELDS = {
    # (CRD file, dotted path under spec) -> the name rule of the kind it names
    ("models.llmops.dev.yaml", "source.credentialsSecretRef.name"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "engine.env[].valueFrom.secretKeyRef.name"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "engine.env[].valueFrom.configMapKeyRef.name"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "placement.priorityClassName"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "cache.storageClassName"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "prompts[].name"): DNS_LABEL_PATTERN,
    ("models.llmops.dev.yaml", "rollout.canary.steps[].evalGate.name"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "rollout.canary.trafficRouting.gatewayAPI.httpRoute"): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "rollout.canary.trafficRouting.gatewayAPI.namespace"): DNS_LABEL_PATTERN,
    (
        "models.llmops.dev.yaml",
        "rollout.canary.trafficRouting.inferencePool.httpRoute",
    ): DNS_SUBDOMAIN_PATTERN,
    ("models.llmops.dev.yaml", "rollout.canary.trafficRouting.inferencePool.namespace"): DNS_LABEL_PATTERN,
    (
        "models.llmops.dev.yaml",
        "rollout.canary.trafficRouting.inferencePool.parentRefs[].name",
    ): DNS_SUBDOMAIN_PATTERN,
    (
        "models.llmops.dev.yaml",
        "rollout.canary.trafficRouting.inferencePool.parentRefs[].namespace",
    ): DNS_LABEL_PATTERN,
    (
        "models.llmops.dev.yaml",
        "rollout.canary.trafficRouting.inferencePool.parentRefs[].sectionName",
    ): DNS_SUBDOMAIN_PATTERN,
    (
        "models.llmops.dev.yaml",
        "rollout.canary.trafficRouting.inferencePool.endpointPicker.service",
    ): DNS_LABEL_PATTERN,
    ("evalgates.llmops.dev.yaml", "prompt.name"): DNS_LABEL_PATTERN,
    ("evalgates.llmops.dev.yaml", "dataset.configMapRef.name"): DNS_SUBDOMAIN_PATTERN,
    ("evalgates.llmops.dev.yaml", "assertions[].judge.model"): DNS_SUBDOMAIN_PATTERN,
    ("evalgates.llmops.dev.yaml", "assertions[].judge.apiKeySecretRef.name"): DNS_SUBDOMAIN_PATTERN,
    ("evalruns.llmops.dev.yaml", "gate"): DNS_SUBDOMAIN_PATTERN,
    ("evalruns.llmops.dev.yaml", "model"): DNS_SUBDOMAIN_PATTERN,
    ("evalruns.llmops.dev.yaml", "revision"): DNS_LABEL_PATTERN,
}


def _at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.split("."):
        many = part.endswith("[]")
        node = node["properties"][part.removesuffix("[]")]
        if many:
            node = node["items"]
    return node


@pytest.mark.parametrize(("crd_file", "path"), sorted(REFERENCE_FIELDS))
def test_every_reference_carries_the_name_rule_and_a_max_length(crd_file: str, path: str) -> None:
    spec = crdgen.generate_all()[crd_file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    node = _at(spec["properties"]["spec"], path)
    assert node["pattern"] == REFERENCE_FIELDS[(crd_file, path)]
    limit = 63 if node["pattern"] == DNS_LABEL_PATTERN else 253
    assert node["maxLength"] <= limit


def test_every_secret_and_config_map_key_is_a_key_not_a_path() -> None:
    """Any `key` next to a reference `name` carries the data key rule."""
    found = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal found
        props = node.get("properties", {})
        if "name" in props and "key" in props:
            assert "pattern" in props["key"] and props["key"]["maxLength"] <= 253
            found += 1
        for child in props.values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])

    for manifest in crdgen.generate_all().values():
        walk(manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert found >= 5


@pytest.mark.parametrize("name", ["../../kube-system/secrets/admin", "a/b", "..", "UPPER", "x" * 254, ""])
def test_a_path_is_not_a_secret_name(name: str) -> None:
    with pytest.raises(ValidationError):
        SecretKeyRef(name=name)


def test_a_claim_path_cannot_climb_out() -> None:
    with pytest.raises(ValidationError, match=r"\.\."):
        SourceSpec(uri="pvc://weights/../../etc")
    assert SourceSpec(uri="pvc://weights/models/llama..v2").location == "weights/models/llama..v2"


@given(st.text(min_size=1, max_size=80))
def test_object_path_quotes_every_segment(name: str) -> None:
    try:
        path = object_path("Secret", "tenant-a", name, "status")
    except InvalidName:
        assert name in (".", "..")
        return
    segments = path.split("/")
    assert segments[:6] == ["", "api", "v1", "namespaces", "tenant-a", "secrets"]
    assert len(segments) == 8 and unquote(segments[6]) == name and segments[7] == "status"


@pytest.mark.parametrize("name", ["..", ".", ""])
def test_dot_segments_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        object_path("Secret", "tenant-a", name)
    with pytest.raises(InvalidName):
        object_path("Secret", name, "x")


# --- bounded inputs ---------------------------------------------------------------------------


def test_an_absurd_pause_is_rejected_at_apply_time() -> None:
    with pytest.raises(ValidationError, match="at most 168h"):
        PauseStep(duration="80000000h")
    assert PauseStep(duration="168h").duration == "168h"
    with pytest.raises(ValidationError, match="at most 1h"):
        AnalysisSpec(interval="2h")


def test_the_crd_carries_the_duration_bound_as_cel() -> None:
    schema = crdgen.generate_all()["models.llmops.dev.yaml"]["spec"]["versions"][0]["schema"]
    pause = _at(schema["openAPIV3Schema"]["properties"]["spec"], "rollout.canary.steps[].pause.duration")
    assert pause["x-kubernetes-validations"][0]["rule"] == "duration(self) <= duration('168h')"


@given(st.from_regex(r"\A([0-9]{1,20}(ms|s|m|h)){1,3}\Z"))
def test_parse_duration_never_overflows(text: str) -> None:
    """Any text the pattern admits parses or fails with a ValueError, never an OverflowError."""
    try:
        delta = parse_duration(text)
    except ValueError:
        return
    assert delta.total_seconds() <= 30 * 86400


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"replicas": 100_000}, "less than or equal"),
        ({"resources": {"gpus": 1000}}, "less than or equal"),
        ({"serving": {"maxModelLen": 1 << 30}}, "less than or equal"),
        ({"autoscaling": {"maxReplicas": 10**6, "target": 1}}, "less than or equal"),
    ],
)
def test_counts_are_bounded(patch: dict[str, Any], match: str) -> None:
    base = {"source": {"uri": "hf://org/repo"}, "engine": {"type": "vllm"}}
    with pytest.raises(ValidationError, match=match):
        ModelSpec.model_validate({**base, **patch})
