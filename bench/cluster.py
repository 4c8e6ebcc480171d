"""Benchmark the dev cluster: warm `make dev-cluster` start, and time until 1000 pods run on KWOK nodes.

Usage: python bench/cluster.py [--pods 1000] [--deployments 10] [--timeout 600] [--no-restart]

The benchmark runs its own cluster (state in $TMPDIR/llmops-bench-cluster, ports 2xxxx), so other
test sessions on the shared .cluster/ are not disturbed.
1. Unless --no-restart: time hack/cluster/up.sh (what `make dev-cluster` runs) from a warm build
   cache with fresh state, then down.sh, then up.sh again with existing state (the usual restart),
   then up.sh on a running cluster (the idempotent no-op).
2. Create `--deployments` Deployments that together ask for `--pods` cheap pods (10m CPU, tolerating
   the GPU taint so they spread over all simulated nodes), then time until every pod is scheduled
   and until every pod is Running and Ready. Gives up after --timeout seconds and reports how far
   it got. The benchmark cluster is stopped and removed afterwards unless --keep.
Figures are printed and written to bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes

REPO = Path(__file__).resolve().parents[1]
# A cluster of its own (state dir and ports), so the benchmark's down/up does not pull the shared
# .cluster/ out from under other test sessions.
BENCH_ENV = {
    "LLMOPS_CLUSTER_DIR": str(Path(tempfile.gettempdir()) / "llmops-bench-cluster"),
    "LLMOPS_ETCD_PORT": "22379",
    "LLMOPS_ETCD_PEER_PORT": "22380",
    "LLMOPS_APISERVER_PORT": "26543",
    "LLMOPS_KCM_PORT": "26257",
    "LLMOPS_SCHEDULER_PORT": "26259",
    "LLMOPS_KWOK_PORT": "26247",
    "LLMOPS_PROMETHEUS_PORT": "29090",
}
KUBECONFIG = Path(BENCH_ENV["LLMOPS_CLUSTER_DIR"]) / "kubeconfig"


def run_script(name: str, *args: str) -> float:
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "cluster" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **BENCH_ENV},
    )
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr}")
    return elapsed


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name, "bench": "cluster"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "type", "operator": "In", "values": ["kwok"]}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "containers": [
                        {
                            "name": "app",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


def count_pods(core: kubernetes.client.CoreV1Api, namespace: str) -> tuple[int, int, int]:
    """(existing, scheduled, running and ready) pods in the namespace."""
    pods = core.list_namespaced_pod(namespace, label_selector="bench=cluster", resource_version="0").items
    scheduled = sum(1 for p in pods if p.spec.node_name)
    ready = sum(
        1
        for p in pods
        if p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )
    return len(pods), scheduled, ready


def bench_pods(total: int, deployments: int, timeout: float) -> dict[str, Any]:
    client = kubernetes.config.new_client_from_config(config_file=str(KUBECONFIG))
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    deadline = time.monotonic() + 30
    while True:  # pods need the namespace's default ServiceAccount
        try:
            core.read_namespaced_service_account("default", namespace)
            break
        except kubernetes.client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    per = [total // deployments + (1 if i < total % deployments else 0) for i in range(deployments)]
    result: dict[str, Any] = {"pods": total, "deployments": deployments}
    start = time.monotonic()
    try:
        for i, replicas in enumerate(per):
            apps.create_namespaced_deployment(namespace, deployment(f"bench-{i}", replicas))
        result["create_seconds"] = round(time.monotonic() - start, 2)
        marks: dict[str, float] = {}
        last = (0, 0, 0)
        while time.monotonic() - start < timeout:
            last = count_pods(core, namespace)
            now = time.monotonic() - start
            for key, value in zip(("all_created", "all_scheduled", "all_running"), last, strict=True):
                if value >= total and key not in marks:
                    marks[key] = round(now, 2)
            if "all_running" in marks:
                break
            time.sleep(0.5)
        result.update({f"{k}_seconds": v for k, v in marks.items()})
        result["reached"] = dict(zip(("created", "scheduled", "running"), last, strict=True))
        result["finished"] = "all_running" in marks
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600, help="give up on the pod phase after this")
    parser.add_argument("--no-restart", action="store_true", help="skip the down/up timing")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark cluster running")
    args = parser.parse_args()

    figures: dict[str, Any] = {"state_dir": BENCH_ENV["LLMOPS_CLUSTER_DIR"]}
    if not args.no_restart:
        run_script("down.sh", "--purge")
        figures["up_fresh_state_seconds"] = round(run_script("up.sh"), 2)
        figures["down_seconds"] = round(run_script("down.sh"), 2)
        figures["up_warm_seconds"] = round(run_script("up.sh"), 2)
        figures["up_already_running_seconds"] = round(run_script("up.sh"), 2)
    else:
        run_script("up.sh")
    try:
        figures["pods"] = bench_pods(args.pods, args.deployments, args.timeout)
    finally:
        if not args.keep:
            run_script("down.sh", "--purge")

    out = REPO / "bench" / "results" / "cluster.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
