"""The cluster's own floor for issue 10's "N Models all Ready": the same objects, and no operator.

Whatever an operator does, for each Model the cluster still has to store a Deployment and a
Service, run the Deployment, ReplicaSet, EndpointSlice and Endpoints controllers, schedule a pod
and (in KWOK) make it Ready. This benchmark measures that part alone, on the dev cluster:

1. Render, for each of the N Models that `reconcile_scale.py` creates, the objects our operator's
   first pass applies (`model_plan.plan_model`, the pure planner the operator runs), without the
   ownerReference (there is no Model here).
2. Server-side apply them all at once from `--concurrency` threads (32, like the operator's
   workers) under the operator's field manager.
3. Time from the first apply until every Deployment has an available replica (a watch on
   Deployments), and take each cluster component's CPU (psutil) over that window.

No operator writes Model status here and none of its passes wait for anything, so this is a
lower bound for any operator on the same cluster, ours or a peer. Compare it with
`reconcile_scale.py`'s "all Ready s", which starts later (at the last Model create).

    KUBECONFIG=.cluster/kubeconfig ~/.cache/llmops-operator/venv/bin/python \\
        bench/cluster_floor.py --counts 1000

Results: a table on stdout and JSON in bench/results/cluster_floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from cluster_cpu import component_cpu, used_since
from llmops_operator.cli.plan_cmd import world_from
from llmops_operator.kube.client import Kube
from llmops_operator.model_plan import plan_model
from reconcile_scale import (
    GOAL_COUNT,
    GOAL_READY_SECONDS,
    RESULTS,
    FirstSeen,
    bench_namespace,
    model_body,
    percentile,
    print_aligned,
)


@dataclass
class FloorResult:
    count: int
    namespace: str
    objects: int
    apply_seconds: float
    available: int
    all_available_seconds: float | None
    """From the first apply until every Deployment has an available replica."""
    latency_p50_seconds: float | None
    cluster_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU (user + system) of each cluster process over the same window."""
    load_average: float | None = None


def first_pass_objects(namespace: str, index: int, gpu_models: int) -> list[dict[str, Any]]:
    """What the operator's first pass applies for `reconcile_scale.py`'s Model number `index`."""
    model = model_body(index, gpu_models)
    model["metadata"]["namespace"] = namespace
    plan = plan_model(world_from([model], [], False, datetime.now(UTC)))
    objects = []
    for obj in plan.apply:
        meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
        objects.append({**obj, "metadata": meta})
    return objects


def deployment_available(obj: dict[str, Any]) -> bool:
    return ((obj.get("status") or {}).get("availableReplicas") or 0) >= 1


def run_once(
    args: argparse.Namespace, count: int, core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi
) -> FloorResult:
    gpu_models = min(args.gpu_models, count)
    kube = Kube()
    with bench_namespace(core, count) as namespace:
        print(f"N={count}: namespace {namespace}", flush=True)
        batches = [first_pass_objects(namespace, i, gpu_models) for i in range(count)]
        deployments = {o["metadata"]["name"] for b in batches for o in b if o["kind"] == "Deployment"}
        watcher = FirstSeen(custom, namespace, deployment_available, ("apps", "v1", "deployments"))
        watcher.start()
        watcher.started.wait(30)
        cpu = component_cpu()
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(args.concurrency) as pool:
                write = kube.create if args.create else kube.apply
                list(pool.map(lambda batch: [write(obj) for obj in batch], batches))
            applied = time.monotonic() - started
            print(f"  applied {sum(map(len, batches))} objects in {applied:.1f}s; waiting", flush=True)
            all_available = watcher.wait_for(deployments, args.timeout)
            used = used_since(cpu)
            load_average = os.getloadavg()[0]
        finally:
            watcher.stop()
        available_at = dict(watcher.seen_at)
    latencies = [available_at[n] - started for n in deployments if n in available_at]
    return FloorResult(
        count=count,
        namespace=namespace,
        objects=sum(map(len, batches)),
        apply_seconds=round(applied, 3),
        available=len(latencies),
        all_available_seconds=round(max(latencies), 3) if all_available and latencies else None,
        latency_p50_seconds=percentile(latencies, 50),
        cluster_cpu_seconds=used,
        load_average=round(load_average, 1),
    )


def print_table(results: list[FloorResult]) -> None:
    components = sorted({c for r in results for c in r.cluster_cpu_seconds})
    headers = ["N", "objects", "apply s", "available", "all available s", "p50 s", *components, "load"]
    rows = [
        [
            str(r.count),
            str(r.objects),
            f"{r.apply_seconds:.1f}",
            f"{r.available}/{r.count}",
            "-" if r.all_available_seconds is None else f"{r.all_available_seconds:.1f}",
            "-" if r.latency_p50_seconds is None else f"{r.latency_p50_seconds:.1f}",
            *(f"{r.cluster_cpu_seconds.get(c, 0.0):.1f}" for c in components),
            str(r.load_average),
        ]
        for r in results
    ]
    print_aligned(headers, rows)
    print(
        "\nall available s: first apply -> every Deployment has an available replica (no operator)."
        "\nComponent columns: CPU-seconds (user + system) of each cluster process over that window."
        f"\nIssue 10 asks {GOAL_COUNT} Models all Ready within {GOAL_READY_SECONDS:.0f}s of the last"
        " apply: above that here, no operator can meet it on this cluster and machine."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1000", help="comma-separated Model counts (default 1000)")
    parser.add_argument("--gpu-models", type=int, default=12, help="as in reconcile_scale.py (default 12)")
    parser.add_argument("--concurrency", type=int, default=32, help="threads applying (default 32)")
    parser.add_argument(
        "--create", action="store_true", help="POST each object instead of server-side apply (to compare)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all available")
    parser.add_argument("--output", default=str(RESULTS / "cluster_floor.json"), help="JSON results file")
    args = parser.parse_args(argv)
    k8s_config.load_kube_config()
    configuration = k8s.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = args.concurrency + 8
    api_client = k8s.ApiClient(configuration)
    core, custom = k8s.CoreV1Api(api_client), k8s.CustomObjectsApi(api_client)
    results = [run_once(args, int(c), core, custom) for c in args.counts.split(",") if c.strip()]
    print_table(results)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    output.write_text(json.dumps({"command": command, "runs": [asdict(r) for r in results]}, indent=2) + "\n")
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
