"""What the canary and autoscaling benchmarks share: a namespace watched by an operator of its own,
and an emitter scraped by the dev cluster's Prometheus with its pods mirrored from the namespace.

The benches run one operator per namespace (`llmops-operator run --namespace`), so they do not
disturb, and are not disturbed by, an operator or test session on the same cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
from kubernetes import client as k8s

from llmops_sim.emitter import Emitter
from llmops_sim.pod_mirror import PodMirror

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LLMOPS_CLUSTER_DIR", REPO / ".cluster"))  # as hack/cluster/lib.sh
GROUP, VERSION, PLURAL = "llmops.dev", "v1alpha1", "models"
GPUS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"]


def wait(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; API errors are retried (a shared API
    server may restart)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except k8s.ApiException:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(q * len(ordered)) // 100)))
    return ordered[rank - 1]


class ClusterBench:
    """Clients for the dev cluster, a fresh namespace name `bench-<job>-<random>` and the URL of
    the dev cluster's Prometheus."""

    def __init__(self, job: str) -> None:
        self.job = job
        self.kubeconfig = os.environ.get("KUBECONFIG", str(STATE / "kubeconfig"))
        self.api_client = kubernetes.config.new_client_from_config(config_file=self.kubeconfig)
        self.core = k8s.CoreV1Api(self.api_client)
        self.apps = k8s.AppsV1Api(self.api_client)
        self.custom = k8s.CustomObjectsApi(self.api_client)
        self.namespace = f"bench-{job}-{uuid.uuid4().hex[:6]}"
        self.prometheus_url = f"http://127.0.0.1:{os.environ.get('LLMOPS_PROMETHEUS_PORT', '19090')}"

    def model(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def operator_in_namespace(self) -> Iterator[None]:
        """The namespace, and an operator watching only it (its log in the cluster's logs/);
        both removed after."""
        self.core.create_namespace(
            {"metadata": {"name": self.namespace, "labels": {"llmops.dev/bench": self.job}}}
        )
        log_path = STATE / "logs" / f"operator-{self.namespace}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "LLMOPS_PROMETHEUS_URL": self.prometheus_url,
            "HF_HUB_OFFLINE": "1",
            "LLMOPS_METRICS_PORT": "0",
            "LLMOPS_HEALTH_PORT": "0",
            "LLMOPS_LEADER_ELECTION_ID": f"llmops-{uuid.uuid4().hex[:8]}",  # a Lease of its own
            "LLMOPS_RESYNC_SECONDS": "5",
        }
        with open(log_path, "ab") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "llmops_operator.cli.main", "run", "--namespace", self.namespace],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        try:
            httpx.get(f"{self.prometheus_url}/-/ready", timeout=5).raise_for_status()
            yield
        finally:
            operator.terminate()
            try:
                operator.wait(timeout=15)
            except subprocess.TimeoutExpired:
                operator.kill()
            try:
                self.core.delete_namespace(self.namespace, propagation_policy="Background")
            except k8s.ApiException as err:
                print(f"  cleanup: could not delete namespace {self.namespace}: {err.reason}")

    @contextlib.contextmanager
    def scraped(self, emitter: Emitter) -> Iterator[Emitter]:
        """`emitter` serving, registered as the Prometheus target `bench-<job>`, with the
        namespace's Running engine pods mirrored into it; stopped and unregistered after."""
        emitter.start()
        target = STATE / "prometheus" / "targets" / f"bench-{self.job}-{emitter.port}.json"
        labels = {"job": f"bench-{self.job}"}
        target.write_text(json.dumps([{"targets": [emitter.address], "labels": labels}]))
        mirror = PodMirror(emitter, self.api_client, self.namespace, interval=0.5).start()
        try:
            yield emitter
        finally:
            mirror.stop()
            target.unlink(missing_ok=True)
            emitter.stop()
