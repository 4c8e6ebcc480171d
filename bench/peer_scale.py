"""The same scale run as `reconcile_scale.py`, for a peer operator: KubeAI (Go, controller-runtime).

Issue 10 compares our CPU per Model and time to all Ready with KubeAI's on the same dev cluster,
node pool and machine. This script runs a KubeAI manager binary that you built yourself from its
public source (nothing of the peer is in this repository; bench/README.md says how to build it
with 32 concurrent reconciles) against one fresh namespace, creates N `kubeai.org/v1` Models with
one replica each, and measures what `reconcile_scale.py` measures for ours:

- the time from the last create until every Model reports `status.replicas.ready >= 1`,
- each Model's create-to-Ready latency (p50, p99, max),
- the manager's CPU (user + system, psutil) from the first create until all Ready, per Model,
- its peak RSS (0.2 s samples).

KubeAI's Models run on a resource profile `cpu` with the requests of our CPU Models (10m, 64Mi)
and a toleration for the GPU taint, so they spread over the same seven KWOK nodes; KWOK runs no
containers, so the image is never pulled. Every listener of the manager binds 127.0.0.1.

    KUBECONFIG=.cluster/kubeconfig python bench/peer_scale.py --binary /tmp/kubeai-manager \\
        --crd /tmp/kubeai-src/manifests/crds/kubeai.org_models.yaml --counts 100,500

Results: a table on stdout and JSON in bench/results/peer_scale.json.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from reconcile_scale import RESULTS, FirstSeen, RssSampler, create_burst, free_port, percentile, wait_until

GROUP, VERSION, PLURAL = "kubeai.org", "v1", "models"
AUTOSCALER_STATE = "kubeai-autoscaler-state"


def peer_config(metrics_port: int) -> dict[str, Any]:
    """A minimal KubeAI system config: one `cpu` profile like our CPU Models, loopback listeners."""
    return {
        "secretNames": {"alibaba": "alibaba", "aws": "aws", "gcp": "gcp", "huggingface": "huggingface"},
        "modelServers": {
            name: {"images": {"default": "bench/none:0", "cpu": "bench/none:0"}}
            for name in ("VLLM", "OLlama", "FasterWhisper", "Infinity")
        },
        "modelLoading": {"image": "bench/none:0"},
        "resourceProfiles": {
            "cpu": {
                "imageName": "cpu",
                "requests": {"cpu": "10m", "memory": "64Mi"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            }
        },
        "cacheProfiles": {},
        "metricsAddr": f"127.0.0.1:{metrics_port}",
        "healthAddress": "127.0.0.1:0",
        "modelAutoscaling": {
            "interval": "10s",
            "timeWindow": "10m",
            "stateConfigMapName": AUTOSCALER_STATE,
        },
        "messaging": {"streams": []},
    }


def model_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": f"m{index:04d}"},
        "spec": {
            "url": "hf://bench/tiny-llm",
            "engine": "VLLM",
            "features": ["TextGeneration"],
            "resourceProfile": "cpu:1",
            "minReplicas": 1,
        },
    }


@dataclass
class PeerRun:
    count: int
    namespace: str
    apply_seconds: float
    ready: int
    all_ready_after_last_apply_seconds: float | None
    latency_p50_seconds: float | None
    latency_p99_seconds: float | None
    latency_max_seconds: float | None
    cpu_seconds_to_ready: float
    cpu_ms_per_model: float
    peak_rss_mib: float
    load_average: float


def peer_ready(obj: dict[str, Any]) -> bool:
    """A KubeAI Model reporting a ready replica."""
    return ((obj.get("status") or {}).get("replicas") or {}).get("ready", 0) >= 1


@contextmanager
def peer_namespace(core: k8s.CoreV1Api, count: int) -> Iterator[str]:
    namespace = f"bench-peer-{count}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": {"llmops.dev/bench": "peer-scale"}}})
    try:
        # the peer's autoscaler keeps its state here and will not start without it
        core.create_namespaced_config_map(namespace, {"metadata": {"name": AUTOSCALER_STATE}})
        yield namespace
    finally:
        print(f"  cleanup: deleting namespace {namespace}", flush=True)
        core.delete_namespace(namespace, propagation_policy="Background")

        def gone() -> bool:
            try:
                core.read_namespace(namespace)
            except k8s.ApiException as exc:
                return exc.status == 404
            return False

        wait_until(gone, 300, f"namespace {namespace} to be deleted")


def run_once(
    args: argparse.Namespace, count: int, core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi
) -> PeerRun:
    with peer_namespace(core, count) as namespace, tempfile.TemporaryDirectory() as tmp:
        print(f"N={count}: namespace {namespace}", flush=True)
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(json.dumps(peer_config(free_port())))  # JSON is YAML
        log_path = RESULTS / f"peer_scale-{count}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "KUBECONFIG": args.kubeconfig,
            "POD_NAMESPACE": namespace,
            "CONFIG_PATH": str(config_path),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen([args.binary], env=env, stdout=log_file, stderr=subprocess.STDOUT)
        sampler = RssSampler(process.pid)
        sampler.start()
        watcher = FirstSeen(custom, namespace, peer_ready, (GROUP, VERSION, PLURAL))
        watcher.start()
        try:
            time.sleep(args.startup)  # leader election and cache sync
            if process.poll() is not None:
                raise RuntimeError(f"the peer exited with {process.returncode}; see {log_path}")
            cpu_before = sampler.cpu_seconds()
            created_at, started = create_burst(
                custom, namespace, model_body, count, args.apply_concurrency, (GROUP, VERSION, PLURAL)
            )
            last_apply = max(created_at.values())
            print(f"  applied {count} Models in {last_apply - started:.1f}s; waiting for Ready", flush=True)
            all_ready = watcher.wait_for(set(created_at), args.timeout)
            cpu = sampler.cpu_seconds() - cpu_before
            load = os.getloadavg()[0]
        finally:
            watcher.stop()
            sampler.stop()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    ready_at = dict(watcher.seen_at)
    latencies = [ready_at[n] - created_at[n] for n in created_at if n in ready_at]
    last_ready = max((ready_at[n] for n in created_at if n in ready_at), default=None)
    return PeerRun(
        count=count,
        namespace=namespace,
        apply_seconds=round(last_apply - started, 3),
        ready=len(latencies),
        all_ready_after_last_apply_seconds=round(last_ready - last_apply, 3)
        if all_ready and last_ready is not None
        else None,
        latency_p50_seconds=percentile(latencies, 50),
        latency_p99_seconds=percentile(latencies, 99),
        latency_max_seconds=max(latencies, default=None),
        cpu_seconds_to_ready=round(cpu, 2),
        cpu_ms_per_model=round(cpu * 1000 / count, 1),
        peak_rss_mib=round(sampler.peak / 2**20, 1),
        load_average=round(load, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--binary", required=True, help="the peer's manager binary (KubeAI, built locally)")
    parser.add_argument("--crd", help="the peer's Model CRD file, applied first (server-side)")
    parser.add_argument("--counts", default="100,500")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG")
        or str(Path(__file__).resolve().parent.parent / ".cluster" / "kubeconfig"),
    )
    parser.add_argument("--apply-concurrency", type=int, default=32)
    parser.add_argument("--startup", type=float, default=20, help="seconds for the peer to win its Lease")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--output", default=str(RESULTS / "peer_scale.json"))
    args = parser.parse_args(argv)
    args.kubeconfig = str(Path(args.kubeconfig).resolve())
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable: build the peer first (bench/README.md)")
    k8s_config.load_kube_config(config_file=args.kubeconfig)
    configuration = k8s.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = args.apply_concurrency + 8
    api = k8s.ApiClient(configuration)
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    if args.crd:
        kubectl = os.environ.get("KUBECTL", "kubectl")
        subprocess.run(
            [kubectl, "--kubeconfig", args.kubeconfig, "apply", "--server-side", "-f", args.crd], check=True
        )
    runs = [run_once(args, int(c), core, custom) for c in args.counts.split(",") if c.strip()]
    print(
        f"\n{'N':>5} {'all Ready s':>12} {'p50 s':>7} {'p99 s':>7} {'CPU s':>7} {'ms/Model':>9}"
        f" {'RSS MiB':>8} {'load':>5}"
    )
    for r in runs:
        ready = (
            "-"
            if r.all_ready_after_last_apply_seconds is None
            else f"{r.all_ready_after_last_apply_seconds:.1f}"
        )
        print(
            f"{r.count:>5} {ready:>12} {r.latency_p50_seconds or 0:>7.1f} {r.latency_p99_seconds or 0:>7.1f}"
            f" {r.cpu_seconds_to_ready:>7.2f} {r.cpu_ms_per_model:>9.1f} {r.peak_rss_mib:>8.1f}"
            f" {r.load_average:>5.1f}"
        )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"command": " ".join(sys.argv), "runs": [asdict(r) for r in runs]}, indent=2) + "\n"
    )
    return 0 if all(r.ready == r.count for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
