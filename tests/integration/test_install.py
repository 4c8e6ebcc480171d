"""The install paths are accepted by a real API server: Helm and kustomize output, server-side
dry run against the dev cluster (the operator image cannot run here, so nothing is started)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmops-operator"


def _helm(cluster: Any) -> Path:
    gomod = (ROOT / "hack/tools/gomod/helm/go.mod").read_text()
    version = next(w.split()[1] for w in gomod.splitlines() if w.strip().startswith("helm.sh/helm/v3 "))
    helm = cluster.kubectl_path.parents[2] / f"helm-{version}" / "bin" / "helm"
    if not helm.is_file():
        pytest.fail(f"{helm} is missing; build it with `bash hack/tools/build-helm.sh`", pytrace=False)
    return helm


def _dry_run(cluster: Any, manifests: str) -> str:
    """Server-side dry run of a multi-document manifest; returns what the server said."""
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=manifests, check=False
    )
    assert result.returncode == 0, f"the API server rejected the manifests:\n{result.stderr}"
    return result.stdout


@pytest.mark.cluster
@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaced"])
def test_helm_chart_is_accepted_by_the_api_server(cluster: Any, namespace: str, namespaced: bool) -> None:
    values = ["--set", f"watchNamespaces={{{namespace}}}"] if namespaced else []
    rendered = subprocess.run(
        [str(_helm(cluster)), "template", "llmops", str(CHART), "--namespace", namespace, *values],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out = _dry_run(cluster, rendered)
    assert "deployment.apps/" in out and "(server dry run)" in out
    assert "clusterrole.rbac.authorization.k8s.io/" in out
    if namespaced:
        assert "role.rbac.authorization.k8s.io/" in out


@pytest.mark.cluster
@pytest.mark.parametrize("directory", ["manifests/base", "manifests/overlays/dev"])
def test_kustomize_manifests_are_accepted_by_the_api_server(cluster: Any, directory: str) -> None:
    rendered = cluster.kubectl("kustomize", str(ROOT / directory)).stdout
    # namespaced objects need their namespace to exist for a dry run; create them for real
    for line in rendered.splitlines():
        if line.startswith("  namespace: "):
            cluster.kubectl("create", "namespace", line.split(": ", 1)[1].strip(), check=False)
    out = _dry_run(cluster, rendered)
    assert "customresourcedefinition.apiextensions.k8s.io/models.llmops.dev" in out
    assert "deployment.apps/" in out


@pytest.mark.cluster
def test_argocd_health_snippet_merges_into_an_existing_argocd_cm(cluster: Any, namespace: str) -> None:
    """docs/install.md's command, with the ConfigMap in the test namespace: Argo CD's own keys stay,
    the four health keys are added."""
    cluster.kubectl(
        "-n", namespace, "create", "configmap", "argocd-cm", "--from-literal=url=https://argocd.example.com"
    )
    rendered = subprocess.run(
        [
            str(_helm(cluster)),
            "template",
            "llmops-operator",
            str(CHART),
            "--set",
            "argocd.healthChecks.enabled=true",
            "--set",
            f"argocd.healthChecks.namespace={namespace}",
            "--show-only",
            "templates/argocd-health.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=llmops-health-checks", "-f", "-", input=rendered
    )
    data = cluster.core.read_namespaced_config_map("argocd-cm", namespace).data
    assert data["url"] == "https://argocd.example.com"
    health = CHART / "files/resource_customizations/llmops.dev"
    for kind in ("Model", "EvalRun", "PromptVersion", "EvalGate"):
        assert (
            data[f"resource.customizations.health.llmops.dev_{kind}"]
            == (health / kind / "health.lua").read_text()
        )
