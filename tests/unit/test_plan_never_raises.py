"""No object the CRDs accept, with any status, makes a pass raise.

Objects are generated from the generated CRD schemas themselves (`crd_strategies`), so a new
field is covered the moment it is in `crds/`. Status is generated from the status schema (the API
server validates status writes against it too: that is what a user who may patch status can
write). The observed world holds Deployments for the revisions the status names, so planning
runs past "first deploy" into rollouts, deletes and scaling.

`EXAMPLES` per kind: found, when reintroduced, the unbounded pause (OverflowError), a deep
template (RecursionError) and a malformed node label (ValueError) that the issue reproduced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crd_strategies import from_crd_schema
from llmops_operator.api.common import LABEL_MODEL, LABEL_REVISION
from llmops_operator.evals.gate import eval_gate_status
from llmops_operator.gpu.inventory import ParsedNode, inventory, parse_node
from llmops_operator.model_plan import SecretCheck, World, plan_model
from llmops_operator.prompts import prompt_version_status

CRDS = Path(__file__).resolve().parents[2] / "crds"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
EXAMPLES = 300
PASSES = 4
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@cache
def _schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{plural}.llmops.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]


def _part(plural: str, part: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_crd_schema(_schema(plural).get(part, {"type": "object"}))


@cache
def _example_specs() -> list[dict[str, Any]]:
    """Model specs of examples/ (valid as written): bases the generated parts are mixed into."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    docs = [d for f in sorted(examples.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    return [d["spec"] for d in docs if isinstance(d, dict) and d.get("kind") == "Model"]


def _model_specs() -> st.SearchStrategy[dict[str, Any]]:
    """Half wholly generated (mostly invalid: CEL rules are not applied), half an example with
    some top-level fields replaced by generated ones, so planning gets past validation into
    rollouts, autoscaling and monitoring."""
    generated = _part("models", "spec")
    fields = sorted(_schema("models")["spec"]["properties"])
    mixed = st.builds(
        lambda base, parts, keys: copy.deepcopy(base) | {k: parts[k] for k in keys if k in parts},
        st.sampled_from(_example_specs()),
        generated,
        st.sets(st.sampled_from([f for f in fields if f != "source"]), max_size=3),
    )
    rollout = _schema("models")["spec"]["properties"]["rollout"]
    canary_schema = rollout["properties"]["canary"]
    step = canary_schema["properties"]["steps"]["items"]["properties"]
    one_action = st.one_of(
        *(from_crd_schema({"type": "object", "properties": {k: v}, "required": [k]}) for k, v in step.items())
    )  # the CEL rule: each step sets exactly one action
    canary = st.builds(
        lambda base, c, steps: (
            copy.deepcopy(base) | {"rollout": {"strategy": "Canary", "canary": c | {"steps": steps}}}
        ),
        st.sampled_from(_example_specs()),
        from_crd_schema(canary_schema),
        st.lists(one_action, min_size=1, max_size=4),
    )
    return st.one_of(generated, mixed, canary, canary)  # rollouts are where the state machine is


def _model_status() -> st.SearchStrategy[dict[str, Any]]:
    """Generated status, often naming a stable revision whose Deployment exists (a rollout then
    starts from it on the first pass)."""
    return st.builds(
        lambda status, stable: status | ({"stableRevision": "stable0000"} if stable else {}),
        _part("models", "status"),
        st.booleans(),
    )


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "team-a", "uid": "uid-1", "generation": 2, "resourceVersion": "9"}


def _deployment(model: str, revision: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_meta(f"{model}-{revision}"),
            "labels": {LABEL_MODEL: model, LABEL_REVISION: revision},
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


NODE_LABELS = st.dictionaries(
    st.sampled_from(
        ["nvidia.com/gpu.product", "nvidia.com/gpu.memory", "nvidia.com/gpu.count", "nvidia.com/gpu.family"]
    ),
    st.one_of(st.sampled_from(["80GB", "-1", "NVIDIA-A100-SXM4-80GB", "", "1e400"]), st.text(max_size=12)),
)


def _node(labels: Mapping[str, str], gpus: str) -> ParsedNode:
    """A node cache entry as the Node watch stores it."""
    allocatable = {"nvidia.com/gpu": gpus, "cpu": "8", "memory": "64Gi"}
    return parse_node(
        "gpu-node", {"metadata": {"labels": dict(labels)}, "status": {"allocatable": allocatable}}
    )


@PROPERTY
@given(
    spec=_model_specs(),
    status=_model_status(),
    ready=st.sampled_from([2, 2, 1, 0, 4]),
    labels=st.just({}) | NODE_LABELS,
    gpus=st.sampled_from(["8", "0", "x", "-3"]),
    secret=st.sampled_from(
        [SecretCheck(True, True), SecretCheck(True, True), SecretCheck(False, False), None]
    ),
)
def test_a_model_pass_never_raises(
    spec: dict[str, Any],
    status: dict[str, Any],
    ready: int,
    labels: dict[str, str],
    gpus: str,
    secret: SecretCheck | None,
) -> None:
    model = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Model", "metadata": _meta("chat")}
    model |= {"spec": spec, "status": status}
    named = {status.get("stableRevision"), status.get("canaryRevision")} - {None, ""}
    deployments = {str(r): _deployment("chat", str(r), ready) for r in named}
    nodes = inventory([_node(labels, gpus)]) if labels else None  # None: no capacity check
    for step in range(PASSES):  # later passes start from the status the previous one wrote
        world = World(
            model=copy.deepcopy(model),
            now=NOW + timedelta(minutes=10 * step),
            operator_image="operator:test",
            deployments=list(deployments.values()),
            inventory=nodes,
            secret=secret,
        )
        plan = plan_model(world)
        assert isinstance(plan.status, dict)
        assert model["spec"] == spec, "planning never writes the user's spec"
        for obj in plan.apply:
            if obj["kind"] == "Deployment" and LABEL_REVISION in obj["metadata"]["labels"]:
                # a revision's engine (an InferencePool's endpoint picker has no revision label)
                revision = obj["metadata"]["labels"][LABEL_REVISION]
                deployments[revision] = _deployment("chat", revision, ready)
        for kind, name in plan.delete:
            if kind == "Deployment":
                deployments = {r: d for r, d in deployments.items() if d["metadata"]["name"] != name}
        model = {**model, "status": plan.status}


@PROPERTY
@given(spec=_part("promptversions", "spec"), status=_part("promptversions", "status"))
def test_a_prompt_version_status_never_raises(spec: dict[str, Any], status: dict[str, Any]) -> None:
    obj = {"kind": "PromptVersion", "metadata": _meta("greeting-v1"), "spec": spec, "status": status}
    result = prompt_version_status(obj, [], NOW)
    assert isinstance(result.get("valid"), bool)


@PROPERTY
@given(spec=_part("evalgates", "spec"), status=_part("evalgates", "status"))
def test_an_eval_gate_status_never_raises(spec: dict[str, Any], status: dict[str, Any]) -> None:
    obj = {"kind": "EvalGate", "metadata": _meta("quality"), "spec": spec, "status": status}
    result = eval_gate_status(obj, NOW, [])
    assert any(c["type"] == "Valid" for c in result["conditions"])
