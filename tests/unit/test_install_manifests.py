"""The install paths users take (Helm chart, kustomize base and dev overlay, container image) render
valid objects that agree with each other and with their single sources: crds/ for the CRDs and
manifests/base/clusterrole.yaml for the operator's RBAC rules.

Needs helm (``bash hack/tools/build-helm.sh``) and kubectl (``bash hack/cluster/build.sh``), both
built from the Go module proxy into ${LLMOPS_CACHE:-~/.cache/llmops-operator}.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops_operator.evals.job import role_rules

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmops-operator"
CRDS = ROOT / "crds"
SOURCE_CLUSTERROLE = ROOT / "manifests" / "base" / "clusterrole.yaml"
CACHE = Path(os.environ.get("LLMOPS_CACHE", Path.home() / ".cache" / "llmops-operator"))
RELEASE_NAMESPACE = "llmops-system"
CLUSTER_SCOPED = {"nodes", "customresourcedefinitions"}
SYNC_HINT = "run hack/sync-chart-crds.sh"

Rule = dict[str, Any]
Manifest = dict[str, Any]


def _gomod_version(gomod: Path, module: str) -> str:
    """The version a wrapper go.mod pins, the way hack/tools/build-helm.sh reads it."""
    for line in gomod.read_text().splitlines():
        words = line.replace("require ", "").split()
        if len(words) >= 2 and words[0] == module and words[1].startswith("v"):
            return words[1]
    raise AssertionError(f"{gomod} does not pin {module}")


def _binary(path: Path, build_command: str) -> Path:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing; build it with `{build_command}`", pytrace=False)
    return path


@pytest.fixture(scope="module")
def helm() -> Path:
    version = _gomod_version(ROOT / "hack/tools/gomod/helm/go.mod", "helm.sh/helm/v3")
    return _binary(CACHE / f"helm-{version}" / "bin" / "helm", "bash hack/tools/build-helm.sh")


@pytest.fixture(scope="module")
def kubectl() -> Path:
    version = _gomod_version(ROOT / "hack/cluster/gomod/k8s/go.mod", "k8s.io/kubernetes")
    return _binary(CACHE / f"k8s-{version}" / "bin" / "kubectl", "bash hack/cluster/build.sh")


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stderr}"
    return done.stdout


def _docs(text: str) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(text) if d]


def helm_template(
    helm: Path, values: dict[str, Any] | None = None, *, include_crds: bool = False
) -> list[Manifest]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        json.dump(values or {}, f)
        f.flush()
        args = [helm, "template", "llmops", CHART, "--namespace", RELEASE_NAMESPACE, "--values", f.name]
        if include_crds:
            args.append("--include-crds")
        return _docs(_run(*args))


def kustomize(kubectl: Path, directory: str) -> list[Manifest]:
    return _docs(_run(kubectl, "kustomize", ROOT / directory))


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def source_rules() -> list[Rule]:
    return yaml.safe_load(SOURCE_CLUSTERROLE.read_text())["rules"]


def permissions(rules: Iterable[Rule]) -> set[tuple[str, str, str]]:
    """Rules flattened to (apiGroup, resource, verb): equal sets grant exactly the same."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def container(deployment: Manifest) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env(deployment: Manifest) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(deployment)["env"]}


def crd_files() -> list[str]:
    return sorted(p.name for p in CRDS.glob("*.yaml") if p.name != "kustomization.yaml")


# --- the single sources and their copies --------------------------------------------------------

# What the operator needs, per (apiGroup, resource): the contract in docs/install.md. Any change to
# manifests/base/clusterrole.yaml must be a deliberate change to this table too.
REQUIRED = {
    ("llmops.dev", "models"): "get list watch",
    ("llmops.dev", "promptversions"): "list watch",
    ("llmops.dev", "evalgates"): "get list watch",
    ("llmops.dev", "models/status"): "patch",
    ("llmops.dev", "promptversions/status"): "patch",
    ("llmops.dev", "evalgates/status"): "patch",
    ("llmops.dev", "evalruns"): "get list watch create patch delete",
    ("llmops.dev", "evalruns/status"): "get patch",
    ("apps", "deployments"): "get list watch create patch delete",
    ("", "services"): "list watch create patch delete",
    ("", "configmaps"): "get list watch create patch delete",
    ("", "persistentvolumeclaims"): "list watch create patch",
    ("batch", "jobs"): "list watch create patch delete",
    ("", "pods"): "get list watch",
    ("", "nodes"): "list watch",
    ("", "secrets"): "get create patch delete",
    ("", "events"): "create patch",
    ("", "serviceaccounts"): "create patch delete",
    ("rbac.authorization.k8s.io", "roles"): "create patch delete",
    ("rbac.authorization.k8s.io", "rolebindings"): "create patch delete",
    ("coordination.k8s.io", "leases"): "get create update",
    ("gateway.networking.k8s.io", "httproutes"): "get create patch",
    ("gateway.networking.k8s.io", "gateways"): "get",
    ("gateway.networking.k8s.io", "referencegrants"): "list",
    ("inference.networking.k8s.io", "inferencepools"): "get list watch create patch delete",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "list watch",
}

# The evaluation Job's Role (created by the operator per run, eval_jobs.role_rules): Kubernetes
# only lets the operator grant what it holds itself.
EVAL_JOB_GRANTS = permissions(
    role_rules(
        {"metadata": {"name": "r", "namespace": "n"}, "spec": {"gate": "g"}},
        {"spec": {"dataset": {"configMapRef": {"name": "d"}}, "assertions": [{"judge": {"model": "j"}}]}},
    )
)


def test_source_clusterrole_grants_exactly_what_the_operator_needs() -> None:
    expected = {(g, r, v) for (g, r), verbs in REQUIRED.items() for v in verbs.split()}
    assert permissions(source_rules()) == expected


def test_operator_holds_every_permission_it_grants_to_the_eval_job() -> None:
    assert permissions(source_rules()) >= EVAL_JOB_GRANTS


def test_source_keeps_cluster_scoped_resources_in_rules_of_their_own() -> None:
    """The chart splits rules by scope per rule, so a rule must not mix pods with nodes."""
    for rule in source_rules():
        scoped = {r in CLUSTER_SCOPED for r in rule["resources"]}
        assert len(scoped) == 1, f"rule mixes cluster-scoped and namespaced resources: {rule}"


def test_chart_crds_are_a_copy_of_repo_crds() -> None:
    chart_files = sorted(p.name for p in (CHART / "crds").glob("*"))
    assert crd_files(), "crds/ holds no CRDs; run make crds"
    assert chart_files == crd_files(), f"chart CRDs differ from crds/; {SYNC_HINT}"
    for name in chart_files:
        same = (CHART / "crds" / name).read_bytes() == (CRDS / name).read_bytes()
        assert same, f"charts/llmops-operator/crds/{name} differs from crds/{name}; {SYNC_HINT}"


def test_crds_kustomization_lists_every_crd() -> None:
    listed = yaml.safe_load((CRDS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == crd_files(), f"crds/kustomization.yaml is out of date; {SYNC_HINT}"


def test_chart_rules_file_is_a_copy_of_the_source() -> None:
    copy = CHART / "files" / "clusterrole.yaml"
    assert copy.read_bytes() == SOURCE_CLUSTERROLE.read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from manifests/base/clusterrole.yaml; {SYNC_HINT}"
    )


# --- Helm ---------------------------------------------------------------------------------------

LINT_VALUES = [
    pytest.param({}, id="defaults"),
    pytest.param({"watchNamespaces": ["team-a", "team-b"]}, id="watchNamespaces"),
    pytest.param({"metrics": {"serviceMonitor": {"enabled": True}}}, id="serviceMonitor"),
    pytest.param({"cost": {"currency": "EUR", "gpuHourPrices": {"NVIDIA-L4": 0.7}}}, id="prices"),
    pytest.param(
        {
            "monitoring": {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}},
            "argocd": {"healthChecks": {"enabled": True}},
        },
        id="monitoring-and-argocd",
    ),
]


@pytest.mark.parametrize("values", LINT_VALUES)
def test_helm_lint_passes(helm: Path, values: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "values.json").write_text(json.dumps(values))
    _run(
        helm,
        "lint",
        "--strict",
        CHART,
        "--namespace",
        RELEASE_NAMESPACE,
        "--values",
        tmp_path / "values.json",
    )


def test_chart_metadata_versions(helm: Path) -> None:
    chart = yaml.safe_load(_run(helm, "show", "chart", CHART))
    assert (chart["version"], chart["appVersion"]) == ("0.1.0", "0.1.0")


def test_cluster_wide_chart_renders_the_source_rules(helm: Path) -> None:
    rendered = helm_template(helm)
    (role,) = of_kind(rendered, "ClusterRole")
    assert role["rules"] == source_rules()
    assert not of_kind(rendered, "Role")
    binding = one(rendered, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(rendered, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": RELEASE_NAMESPACE}
    ]


def test_namespaced_chart_grants_the_source_rules_only_in_watched_namespaces(helm: Path) -> None:
    rendered = helm_template(helm, {"watchNamespaces": ["team-a", "team-b"]})
    (cluster_role,) = of_kind(rendered, "ClusterRole")
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == CLUSTER_SCOPED

    roles = {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in of_kind(rendered, "Role")}
    watched = [roles[k] for k in roles if k[0] in {"team-a", "team-b"}]
    assert len(watched) == 2
    for role in watched:
        assert permissions(cluster_role["rules"]) | permissions(role["rules"]) == permissions(source_rules())
        assert not {r for rule in role["rules"] for r in rule["resources"]} & CLUSTER_SCOPED

    own = [m for (ns, _), m in roles.items() if ns == RELEASE_NAMESPACE]
    lease = {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")}
    secrets = {("", "secrets", "create"), ("", "secrets", "get")}
    assert [permissions(m["rules"]) for m in own] == [secrets | lease]
    bindings = {(m["metadata"]["namespace"], m["roleRef"]["name"]) for m in of_kind(rendered, "RoleBinding")}
    assert bindings == {(ns, name) for ns, name in roles}


def test_chart_deployment_defaults(helm: Path) -> None:
    rendered = helm_template(helm)
    deployment = one(rendered, "Deployment")
    main = container(deployment)
    assert main["image"] == "ghcr.io/llmops-dev/llmops-operator:0.1.0"
    assert main["command"] == ["llmops-operator", "run"]
    assert env(deployment) == {
        "LLMOPS_NAMESPACES": "",
        "LLMOPS_PROMETHEUS_URL": "http://prometheus.monitoring.svc:9090",
        "LLMOPS_LOG_FORMAT": "json",
        "LLMOPS_METRICS_PORT": "8080",
        "LLMOPS_OPERATOR_IMAGE": main["image"],
        "LLMOPS_RESYNC_SECONDS": "300",
        "LLMOPS_FULL_RESYNC_SECONDS": "3600",
        "LLMOPS_LEADER_ELECT": "true",
        "LLMOPS_LEASE_DURATION_SECONDS": "15",
        "LLMOPS_RENEW_DEADLINE_SECONDS": "10",
        "LLMOPS_RETRY_PERIOD_SECONDS": "2",
        "LLMOPS_HEALTH_PORT": "8081",
        "LLMOPS_STALL_SECONDS": "300",
        "LLMOPS_EVAL_RUN_HISTORY": "5",
        "POD_NAME": "",
        "POD_NAMESPACE": "",
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert one(rendered, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_chart_values_reach_the_deployment(helm: Path) -> None:
    values = {
        "image": {"tag": "0.2.0-rc1", "pullPolicy": "Always"},
        "prometheusUrl": "http://prom.example:9090",
        "logFormat": "plain",
        "metrics": {"port": 9100},
        "nodeSelector": {"node-role": "infra"},
        "resync": {"seconds": 120, "fullSeconds": 7200},
    }
    rendered = helm_template(helm, values)
    deployment = one(rendered, "Deployment")
    main = container(deployment)
    assert main["image"] == "ghcr.io/llmops-dev/llmops-operator:0.2.0-rc1"
    assert main["imagePullPolicy"] == "Always"
    assert main["ports"][0] == {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}
    assert env(deployment)["LLMOPS_OPERATOR_IMAGE"] == main["image"]
    assert env(deployment)["LLMOPS_METRICS_PORT"] == "9100"
    assert env(deployment)["LLMOPS_PROMETHEUS_URL"] == "http://prom.example:9090"
    assert env(deployment)["LLMOPS_LOG_FORMAT"] == "plain"
    assert env(deployment)["LLMOPS_RESYNC_SECONDS"] == "120"
    assert env(deployment)["LLMOPS_FULL_RESYNC_SECONDS"] == "7200"
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"node-role": "infra"}
    service = one(rendered, "Service")
    assert service["spec"]["ports"][0]["port"] == 9100


def test_service_monitor_is_optional(helm: Path) -> None:
    assert not of_kind(helm_template(helm), "ServiceMonitor")
    rendered = helm_template(helm, {"metrics": {"serviceMonitor": {"enabled": True}}})
    monitor = one(rendered, "ServiceMonitor")
    service = one(rendered, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_monitoring_and_argocd_health_are_optional_and_copy_their_sources(helm: Path) -> None:
    defaults = helm_template(helm)
    assert not of_kind(defaults, "PrometheusRule")
    assert [m["metadata"]["name"] for m in of_kind(defaults, "ConfigMap")] == []
    rendered = helm_template(
        helm,
        {
            "monitoring": {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}},
            "argocd": {"healthChecks": {"enabled": True}},
        },
    )
    rules = yaml.safe_load((ROOT / "manifests/monitoring/llmops-alerts.rules.yaml").read_text())
    assert one(rendered, "PrometheusRule")["spec"]["groups"] == rules["groups"]
    dashboard = one(rendered, "ConfigMap", "llmops-llmops-operator-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["llmops-operator.json"]) == json.loads(
        (ROOT / "manifests/monitoring/llmops-dashboard.json").read_text()
    )
    argocd = one(rendered, "ConfigMap", "argocd-cm")
    assert argocd["metadata"]["namespace"] == "argocd"
    health = CHART / "files/resource_customizations/llmops.dev"
    assert argocd["data"] == {
        f"resource.customizations.health.llmops.dev_{kind}": (health / kind / "health.lua").read_text()
        for kind in ("Model", "EvalRun", "PromptVersion", "EvalGate")
    }


def test_helm_installs_exactly_the_repo_crds(helm: Path) -> None:
    rendered = of_kind(helm_template(helm, include_crds=True), "CustomResourceDefinition")
    expected = [yaml.safe_load((CRDS / name).read_text()) for name in crd_files()]
    assert sorted(rendered, key=lambda m: m["metadata"]["name"]) == sorted(
        expected, key=lambda m: m["metadata"]["name"]
    )


DNS_LABEL = st.from_regex(re.compile(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?"), fullmatch=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(namespaces=st.lists(DNS_LABEL, min_size=1, max_size=4))
def test_watch_namespaces_become_env_and_one_role_each(helm: Path, namespaces: list[str]) -> None:
    rendered = helm_template(helm, {"watchNamespaces": namespaces})
    unique = list(dict.fromkeys(namespaces))
    assert env(one(rendered, "Deployment"))["LLMOPS_NAMESPACES"] == ",".join(unique)
    full = [m for m in of_kind(rendered, "Role") if not m["metadata"]["name"].endswith("-verdict-key")]
    assert sorted(m["metadata"]["namespace"] for m in full) == sorted(unique)


# --- kustomize ----------------------------------------------------------------------------------


def test_kustomize_base_renders_crds_rbac_and_operator(kubectl: Path) -> None:
    rendered = kustomize(kubectl, "manifests/base")
    crds = sorted(m["metadata"]["name"] for m in of_kind(rendered, "CustomResourceDefinition"))
    assert crds == sorted(yaml.safe_load((CRDS / n).read_text())["metadata"]["name"] for n in crd_files())
    assert one(rendered, "ClusterRole")["rules"] == source_rules()
    assert one(rendered, "Namespace")["metadata"]["name"] == RELEASE_NAMESPACE
    deployment = one(rendered, "Deployment")
    assert env(deployment)["LLMOPS_NAMESPACES"] == ""
    assert env(deployment)["LLMOPS_OPERATOR_IMAGE"] == container(deployment)["image"]
    assert one(rendered, "Service")["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_kustomize_dev_overlay_is_namespace_scoped(kubectl: Path) -> None:
    rendered = kustomize(kubectl, "manifests/overlays/dev")
    deployment = one(rendered, "Deployment")
    assert env(deployment)["LLMOPS_NAMESPACES"] == "llmops-dev"
    assert env(deployment)["LLMOPS_PROMETHEUS_URL"].startswith("http://")
    assert env(deployment)["LLMOPS_OPERATOR_IMAGE"] == container(deployment)["image"]
    assert container(deployment)["image"].endswith(":dev")

    (cluster_binding,) = of_kind(rendered, "ClusterRoleBinding")
    cluster_role = one(rendered, "ClusterRole", cluster_binding["roleRef"]["name"])
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == CLUSTER_SCOPED
    assert permissions(cluster_role["rules"]) <= permissions(source_rules())

    dev_binding = one(
        [m for m in of_kind(rendered, "RoleBinding") if m["metadata"]["namespace"] == "llmops-dev"],
        "RoleBinding",
    )
    assert dev_binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "llmops-operator",
    }


def test_helm_and_kustomize_run_the_same_operator(helm: Path, kubectl: Path) -> None:
    """Both install paths give the container the same command, env names, probes and hardening."""
    by_helm = one(helm_template(helm), "Deployment")
    by_kustomize = one(kustomize(kubectl, "manifests/base"), "Deployment")
    for field in ("command", "securityContext", "resources", "livenessProbe", "readinessProbe", "ports"):
        assert container(by_helm)[field] == container(by_kustomize)[field], field
    assert env(by_helm) == env(by_kustomize)
    assert container(by_helm)["image"] == container(by_kustomize)["image"]
    assert (
        by_helm["spec"]["template"]["spec"]["securityContext"].items()
        >= by_kustomize["spec"]["template"]["spec"]["securityContext"].items()
    )


# --- container image ----------------------------------------------------------------------------


def test_containerfile_runs_the_cli_as_the_chart_user() -> None:
    text = (ROOT / "Containerfile").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid = values["podSecurityContext"]["runAsUser"]
    assert re.search(rf"^USER {uid}:{uid}$", text, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["llmops-operator"\]$', text, re.MULTILINE)
    assert "python:3.11-slim" in text


def test_dockerignore_keeps_what_the_image_build_copies() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    }
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Containerfile").read_text(), re.MULTILINE)
    sources = {s.rstrip("/") for line in copied for s in line.split()}
    assert sources == {"pyproject.toml", "README.md", "operator", "hack/sim"}
    for source in sources:
        parts = source.split("/")
        prefixes = {"/".join(parts[: i + 1]) for i in range(len(parts))}
        assert not prefixes & ignored, f"{source} is excluded by .dockerignore"


def test_gpu_prices_reach_the_operator_as_one_json_env(helm: Path) -> None:
    values = {"cost": {"currency": "EUR", "gpuHourPrices": {"NVIDIA-H100-80GB-HBM3": 2.5}}}
    deployment = one(helm_template(helm, values), "Deployment")
    assert json.loads(env(deployment)["LLMOPS_GPU_PRICES"]) == values["cost"]
    assert "LLMOPS_GPU_PRICES" not in env(one(helm_template(helm), "Deployment"))


@pytest.mark.parametrize(
    "prices",
    [{"NVIDIA-L4": -1}, {"NVIDIA-L4": "cheap"}, {"not a label value": 1.0}],
    ids=["negative", "not-a-number", "bad-product"],
)
def test_bad_gpu_prices_are_rejected_at_install(helm: Path, prices: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "values.json").write_text(json.dumps({"cost": {"gpuHourPrices": prices}}))
    result = subprocess.run(
        [str(helm), "template", "llmops", str(CHART), "--values", str(tmp_path / "values.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "/cost" in result.stderr, result.stderr
