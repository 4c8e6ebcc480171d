"""Every failure is visible and bounded, on the dev cluster: a child the API server refuses (real
admission: a ValidatingAdmissionPolicy), a node with a malformed GPU label, and a status a user
rewrote. Each ends in a condition naming the cause; other work goes on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers_canary import CanaryModel, canary_spec
from helpers_model import Kubectl, model_manifest, small_spec, unique

from polling import wait_for

pytestmark = pytest.mark.cluster


class DeploymentFreeze:
    """A ValidatingAdmissionPolicy refusing new Deployments in one namespace (real admission)."""

    def __init__(self, kube: Kubectl, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.name = f"freeze-{namespace}"[:63]
        rule = {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["deployments"],
        }
        kube.apply(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": self.name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": [rule]},
                    "validations": [{"expression": "false", "message": "new Deployments are frozen here"}],
                },
            }
        )

    def on(self) -> None:
        selector = {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
        self.kube.apply(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": self.name},
                "spec": {
                    "policyName": self.name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": selector},
                },
            }
        )
        wait_for(lambda: self._refuses(True), 30, message="the admission policy is in force")

    def off(self) -> None:
        self.kube.run("delete", "validatingadmissionpolicybinding", self.name, "--ignore-not-found")
        wait_for(lambda: self._refuses(False), 30, message="the admission policy is lifted")

    def _refuses(self, expected: bool) -> bool:
        probe = self.kube.run(
            "-n",
            self.namespace,
            "create",
            "deployment",
            "probe",
            "--image=x",
            "--dry-run=server",
            check=False,
        )
        return (probe.returncode != 0 and "frozen" in probe.stderr) == expected

    def remove(self) -> None:
        self.kube.run(
            "delete", "validatingadmissionpolicybinding", self.name, "--ignore-not-found", check=False
        )
        self.kube.run("delete", "validatingadmissionpolicy", self.name, "--ignore-not-found", check=False)


@pytest.fixture
def freeze(kube: Kubectl, namespace: str) -> Iterator[DeploymentFreeze]:
    frozen = DeploymentFreeze(kube, namespace)
    yield frozen
    frozen.remove()


def test_a_refused_canary_is_a_reconcile_error_and_an_abort_still_rolls_back(
    kube: Kubectl, namespace: str, operator: Any, freeze: DeploymentFreeze
) -> None:
    """Given a serving Model and an admission policy that refuses new Deployments, When a canary
    starts, Then ReconcileError names the refused Deployment and the server's message, the stable
    revision keeps serving, a user's abort still rolls back, and lifting the policy clears it."""
    m = CanaryModel(kube, namespace, unique("refused"), operator.log_tail)
    m.given_stable(canary_spec([{"setWeight": 50}, {"pause": {}}]))
    freeze.on()
    canary = m.when_args_change()

    error = m.wait(lambda model: _condition_if(model, "ReconcileError", "True"), 60, "ReconcileError True")
    assert error["reason"] == "ApplyFailed"
    assert f"Deployment {m.name}-{canary}" in error["message"] and "frozen" in error["message"]
    assert ("Warning", "ReconcileError") in [(t, r) for t, r, _ in m.events()]
    assert m.deployment_of(m.stable) is not None, "the stable revision keeps serving"

    kube.patch("model", namespace, m.name, {"status": {"rollout": {"abort": True}}}, "--subresource=status")
    m.wait(lambda model: _condition_if(model, "RolledBack", "True"), 60, "RolledBack after abort")
    assert m.deployment_of(m.stable) is not None

    freeze.off()
    m.wait(
        lambda model: model if not _condition_if(model, "ReconcileError", "True") else None,
        60,
        "ReconcileError cleared once the server accepts the objects",
    )


def _condition_if(model: dict[str, Any], type_: str, status: str) -> dict[str, Any] | None:
    found = next((c for c in (model.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)
    return found if found is not None and found["status"] == status else None


def test_a_node_with_a_malformed_gpu_label_is_left_out_and_other_models_reconcile(
    kube: Kubectl, namespace: str, operator: Any
) -> None:
    """Given a GPU node labelled `nvidia.com/gpu.memory=80GB`, Then that node gets a Warning
    Event and is left out of planning, and a Model applied meanwhile becomes Ready."""
    node = f"kwok-badlabel-{namespace[-6:]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok-test",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "nvidia.com/gpu.memory": "80GB",
            },
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "8", "pods": "10", "nvidia.com/gpu": "8"}},
    }
    kube.apply(manifest)
    try:

        def node_warning() -> str | None:
            for event in kube.items("events", "default"):
                involved = event.get("involvedObject") or {}
                if involved.get("name") == node and event.get("reason") == "InvalidGpuLabels":
                    return str(event.get("message"))
            return None

        message = wait_for(node_warning, 60, message=f"Warning Event on node {node}")
        assert "nvidia.com/gpu.memory='80GB'" in message and "left out of GPU planning" in message
        name = unique("beside")
        kube.apply(model_manifest(name, small_spec(replicas=1)), namespace)
        m = CanaryModel(kube, namespace, name, operator.log_tail)
        ready = m.wait_phase("Ready", 90)
        assert not _condition_if(ready, "ReconcileError", "True")
    finally:
        kube.run("delete", "node", node, "--ignore-not-found", check=False)


def test_a_bogus_stable_revision_in_status_deletes_nothing(
    kube: Kubectl, namespace: str, operator: Any
) -> None:
    """Given a canary paused halfway, When someone writes status.stableRevision to a revision that
    has no Deployment, Then the serving Deployment stays, status is corrected from the owned
    objects and StatusCorrected says so; the canary is neither promoted nor lost."""
    m = CanaryModel(kube, namespace, unique("bogus"), operator.log_tail)
    stable = m.given_stable(canary_spec([{"setWeight": 50}, {"pause": {}}]))
    canary = m.when_args_change()
    m.wait(lambda model: m.deployment_of(canary), 60, "the canary Deployment")
    kube.patch(
        "model", namespace, m.name, {"status": {"stableRevision": "bogus0000"}}, "--subresource=status"
    )

    corrected = m.wait(
        lambda model: _condition_if(model, "StatusCorrected", "True"), 60, "StatusCorrected True"
    )
    assert "bogus0000" in corrected["message"]
    status = m.status()
    assert (status["stableRevision"], status["canaryRevision"]) == (stable, canary)
    assert m.deployment_of(stable) is not None and m.deployment_of(canary) is not None
    assert m.rollout().get("stepIndex") == 1, "still paused at the pause step"
