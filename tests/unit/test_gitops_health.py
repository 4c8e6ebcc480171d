"""Argo CD health scripts and Flux's kstatus agree with what the operator writes.

The Lua scripts (charts/llmops-operator/files/resource_customizations/llmops.dev/<Kind>/) run in
gopher-lua, the interpreter Argo CD embeds, against their testdata: objects the integration tests
recorded from the dev cluster (tests/gitops_health.py). kstatus (sigs.k8s.io/cli-utils) computes
the status of the same objects and of statuses built by the operator's pure functions. Both run
through hack/tools/health (built by hack/tools/build-health.sh).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from gitops_health import GROUP_DIR, HEALTH_ROOT, KINDS, argocd_health, health_binary, kstatus
from llmops_operator.api.evals import EvalGateStatus, EvalRunStatus
from llmops_operator.api.model_status import ModelStatus
from llmops_operator.api.prompt import PromptVersionStatus
from llmops_operator.conditions import eval_run_conditions
from llmops_operator.evals.gate import eval_gate_status
from llmops_operator.prompts import prompt_version_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STATUS_MODELS = {
    "Model": ModelStatus,
    "EvalRun": EvalRunStatus,
    "PromptVersion": PromptVersionStatus,
    "EvalGate": EvalGateStatus,
}
KSTATUS_OF = {
    "Healthy": "Current",
    "Progressing": "InProgress",
    "Suspended": "InProgress",
    "Degraded": "Failed",
}
"""What Flux sees for each Argo CD health of a recorded object."""


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in KINDS:
        spec = yaml.safe_load((GROUP_DIR / kind / "health_test.yaml").read_text())
        cases += [(kind, test) for test in spec["tests"]]
    return cases


def test_every_kind_has_recorded_healthy_and_degraded_objects() -> None:
    """Progressing EvalRuns, PromptVersions and EvalGates are short-lived; the tests below build
    them with the operator's own functions."""
    for kind in KINDS:
        statuses = {test["healthStatus"]["status"] for k, test in _cases() if k == kind}
        expected = {"Healthy", "Degraded"} | ({"Progressing", "Suspended"} if kind == "Model" else set())
        assert expected <= statuses, f"{kind}: tests cover {sorted(statuses)}"


def test_health_scripts_pass_their_argo_cd_tests_in_gopher_lua() -> None:
    out = subprocess.run(
        [str(health_binary()), "lua-test", str(HEALTH_ROOT)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(_cases())} health checks passed" in out.stdout


@pytest.mark.parametrize(
    ("kind", "test"), _cases(), ids=lambda v: v if isinstance(v, str) else v["inputPath"]
)
def test_recorded_objects_are_real_statuses_and_kstatus_agrees(kind: str, test: dict[str, Any]) -> None:
    obj = yaml.safe_load((GROUP_DIR / kind / test["inputPath"]).read_text())
    assert obj["kind"] == kind
    STATUS_MODELS[kind].model_validate(obj["status"])  # a shape the operator writes
    assert (
        obj["status"].get("observedGeneration", obj["metadata"]["generation"])
        == obj["metadata"]["generation"]
    )
    assert kstatus(obj)["status"] == KSTATUS_OF[test["healthStatus"]["status"]]


def _object(kind: str, status: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "status": status,
    }


@pytest.mark.parametrize(
    ("phase", "flux", "argo"),
    [
        ("Pending", "InProgress", "Progressing"),
        ("Running", "InProgress", "Progressing"),
        ("Passed", "Current", "Healthy"),
        ("Failed", "Failed", "Degraded"),
        ("Error", "Failed", "Degraded"),
    ],
)
def test_eval_run_conditions_of_each_phase(phase: str, flux: str, argo: str) -> None:
    conditions = [
        c.model_dump(by_alias=True, exclude_none=True, mode="json")
        for c in eval_run_conditions(phase, "", NOW)
    ]
    obj = _object("EvalRun", {"phase": phase, "conditions": conditions})
    assert kstatus(obj)["status"] == flux
    assert argocd_health(obj)["status"] == argo


PROMPT = {"prompt": "bot", "version": 1, "messages": [{"role": "user", "content": "{{ q }}"}]}


@pytest.mark.parametrize(
    ("spec", "flux", "argo"),
    [
        ({**PROMPT, "variables": [{"name": "q"}]}, "Current", "Healthy"),
        ({**PROMPT, "variables": []}, "Failed", "Degraded"),  # undeclared variable
    ],
)
def test_prompt_version_status(spec: dict[str, Any], flux: str, argo: str) -> None:
    pv = {**_object("PromptVersion", {}), "spec": spec}
    pv["status"] = prompt_version_status(pv, [], NOW)
    assert kstatus(pv)["status"] == flux
    assert argocd_health(pv)["status"] == argo


def test_eval_gate_status_and_a_new_generation_not_yet_observed() -> None:
    gate = _object("EvalGate", {}, generation=2)
    gate["spec"] = {
        "prompt": {"name": "bot"},
        "dataset": {"inline": [{"id": "a", "vars": {"q": "x"}, "expected": "y"}]},
        "assertions": [{"type": "regex", "value": "([unclosed"}],
    }
    gate["status"] = eval_gate_status(gate, NOW)
    assert (kstatus(gate)["status"], argocd_health(gate)["status"]) == ("Failed", "Degraded")
    gate["metadata"]["generation"] = 3  # edited, not yet seen by the operator
    assert (kstatus(gate)["status"], argocd_health(gate)["status"]) == ("InProgress", "Progressing")
