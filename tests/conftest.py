"""Fixtures for tests that need the dev cluster, Prometheus or the metrics emitter.

The dev cluster is real: kube-apiserver, etcd, controller-manager, scheduler and KWOK (simulated GPU
nodes) started by ``hack/cluster/up.sh``, plus Prometheus. Nothing here skips: a missing
prerequisite fails the test with the command that fixes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
from hypothesis import settings

from llmops_sim.emitter import Emitter
from polling import wait_for

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LLMOPS_CLUSTER_DIR", REPO / ".cluster"))
UP_SCRIPT = REPO / "hack" / "cluster" / "up.sh"
CRD_DIR = REPO / "crds"
SESSION = uuid.uuid4().hex[:4]
"""Prefix of this test session's namespaces, so the session's operator (watching `t<SESSION>-*`)
never touches namespaces of another session sharing the dev cluster."""
NAMESPACE_PREFIX = f"t{SESSION}-"
os.environ["LLMOPS_TEST_NAMESPACE_PREFIX"] = NAMESPACE_PREFIX

settings.register_profile("llmops", deadline=None)
settings.load_profile("llmops")
"""No hypothesis deadline for any property: speed lives in bench/, and on a loaded 2-core machine
a 200 ms deadline failed a correct example (test_monitoring_cost, 2026-12-02)."""


def _fail(cause: str, fix: str) -> None:
    pytest.fail(f"{cause}\nFix: {fix}", pytrace=False)


def _cluster_var(name: str) -> str:
    """A path or port from hack/cluster/lib.sh, so tests and scripts never disagree."""
    out = subprocess.run(
        ["bash", "-c", f'source "{REPO}/hack/cluster/lib.sh" && printf %s "${name}"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


@dataclass
class Cluster:
    """A running dev cluster: its kubeconfig, an API client and kubectl."""

    kubeconfig: Path
    api_client: kubernetes.client.ApiClient
    kubectl_path: Path

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api_client)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def extensions(self) -> kubernetes.client.ApiextensionsV1Api:
        return kubernetes.client.ApiextensionsV1Api(self.api_client)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the cluster's own kubectl against this cluster."""
        result = subprocess.run(
            [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    @staticmethod
    def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
        """Poll ``check`` until it returns something truthy (see :func:`wait_until`)."""
        return wait_until(check, timeout, what, interval)

    def apply_dir(self, directory: Path) -> list[str]:
        """Server-side apply every manifest in ``directory`` (not kustomization.yaml); wait for CRDs."""
        files = sorted(
            p for p in directory.glob("*.y*ml") if p.is_file() and not p.name.startswith("kustomization")
        )
        if not files:
            return []
        applied = []
        for path in files:
            out = self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), "-o", "name")
            applied += out.stdout.split()
        crds = [name for name in applied if name.startswith("customresourcedefinition")]
        if crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
        return applied


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check`` through transient API errors until it returns something truthy."""
    return wait_for(check, timeout, interval, what, tolerate_errors=True)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """Start (or reuse) the dev cluster, install the project's CRDs, return a client for it."""
    try:
        up = subprocess.run(["bash", str(UP_SCRIPT)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        _fail(
            "hack/cluster/up.sh did not finish in 600s", f"look at {STATE}/logs/, then run `make dev-cluster`"
        )
    if up.returncode != 0:
        lines = [line for line in up.stderr.splitlines() if "error:" in line] or up.stderr.splitlines()[-5:]
        _fail(
            "the dev cluster is not running and could not be started:\n  " + "\n  ".join(lines),
            "the line above says how (usually `bash hack/cluster/deps.sh && bash hack/cluster/build.sh`, "
            "then `make dev-cluster`)",
        )
    kubeconfig = STATE / "kubeconfig"
    api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    result = Cluster(kubeconfig, api_client, Path(_cluster_var("KUBECTL")))
    if CRD_DIR.is_dir():
        result.apply_dir(CRD_DIR)
    return result


def _namespace_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"{NAMESPACE_PREFIX}{base}-{uuid.uuid4().hex[:6]}"[:63].rstrip("-")


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount ready) deleted after the test."""
    name = _namespace_name(request)
    cluster.core.create_namespace({"metadata": {"name": name, "labels": {"llmops.dev/test": "true"}}})
    wait_until(
        lambda: cluster.core.read_namespaced_service_account("default", name),
        30,
        f"ServiceAccount default in {name} (kube-controller-manager creates it)",
    )
    yield name
    try:
        cluster.core.delete_namespace(name, propagation_policy="Background")
    except kubernetes.client.ApiException as err:
        if err.status != 404:
            raise


@dataclass
class Prometheus:
    """The dev cluster's Prometheus: query it and register scrape targets by writing files."""

    url: str
    targets_dir: Path
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def add_target(self, name: str, address: str, labels: dict[str, str] | None = None) -> Path:
        """Add a scrape target (``host:port``); Prometheus picks the file up within a second or two."""
        path = self.targets_dir / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address], "labels": {"job": name, **(labels or {})}}]))
        tmp.replace(path)
        return path

    def remove_target(self, name: str) -> None:
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)

    def targets(self) -> list[dict[str, Any]]:
        response = self.client.get(f"{self.url}/api/v1/targets", params={"state": "active"})
        response.raise_for_status()
        return list(response.json()["data"]["activeTargets"])

    def wait_target_up(self, address: str, timeout: float = 30) -> None:
        """Wait until Prometheus has scraped ``address`` successfully."""
        wait_until(
            lambda: any(
                t["scrapeUrl"].split("/")[2] == address and t["health"] == "up" for t in self.targets()
            ),
            timeout,
            f"Prometheus target {address} to be up",
        )

    def query(self, promql: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """Instant query (now, or evaluated at `at`); returns the result vector."""
        params = {"query": promql, **({"time": f"{at.timestamp():.3f}"} if at is not None else {})}
        response = self.client.get(f"{self.url}/api/v1/query", params=params)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def wait_scalar(self, promql: str, ok: Callable[[float], bool], timeout: float = 30) -> float:
        """Poll a one-series query until its value satisfies ``ok``; return that value."""

        def check() -> tuple[float] | None:  # a tuple, so that a value of 0 still counts as found
            value = self.scalar(promql)
            return (value,) if value is not None and ok(value) else None

        return float(wait_until(check, timeout, f"{promql} to satisfy the check")[0])

    def scalar(self, promql: str) -> float | None:
        """The single value of a query that returns one series, or None when it returns none."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) != 1:
            raise AssertionError(f"query {promql!r} returned {len(result)} series, expected 1")
        return float(result[0]["value"][1])


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster) -> Prometheus:
    """Prometheus started by hack/cluster/up.sh (scrape interval 1s, file-based targets)."""
    port = _cluster_var("PROMETHEUS_PORT")
    prom = Prometheus(url=f"http://127.0.0.1:{port}", targets_dir=STATE / "prometheus" / "targets")
    try:
        prom.client.get(f"{prom.url}/-/ready").raise_for_status()
    except httpx.HTTPError as err:
        _fail(f"Prometheus is not answering at {prom.url}: {err}", "run `make dev-cluster`")
    return prom


@pytest.fixture
def emitter(prometheus: Prometheus, request: pytest.FixtureRequest) -> Iterator[Emitter]:
    """A running metrics emitter (no pods yet) registered as a Prometheus target."""
    sim = Emitter().start()
    name = f"emitter-{sim.port}"
    prometheus.add_target(name, sim.address, {"test": request.node.name[:60]})
    try:
        prometheus.wait_target_up(sim.address)
        yield sim
    finally:
        prometheus.remove_target(name)
        sim.stop()
