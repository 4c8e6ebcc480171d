"""Wake from zero: time from the first waiting request to a Ready pod, over `--runs` wakes.

On the dev cluster (`bash hack/cluster/up.sh`, Prometheus scraping every second), in a fresh
namespace watched by an operator of its own (`llmops-operator run --namespace <ns>`):

1. A metrics emitter (hack/sim) registered as a Prometheus target, kept equal to the Running
   engine pods of the namespace (idle vLLM series: nothing waiting), which also serves the
   endpoint picker's flow-control queue gauge for the Model's InferencePool (the stand-in for
   the inference gateway holding requests while the Model is at zero).
2. One Model with `autoscaling.minReplicas: 0`, `scaleToZeroAfter: --idle`, the builtin wake
   signal, one GPU per replica; it starts at one replica and idles to zero.
3. Each run: wait until the Model is at zero (Deployment at 0 replicas, the operator has looked
   since: `status.autoscaler.reason: AtZero`), then set 3 waiting requests for its pool and time
   until its Deployment reports a Ready replica (polled every 0.1 s): signal-to-Ready. The
   operator's own view is recorded too: `coldStart.signalAt` minus the signal (how long until
   it saw the request, bounded by one autoscaling interval of 15 s plus the scrape) and
   `coldStart.secondsToReady`. Then the requests are cleared and the Model idles back to zero.

Prints p50/p95/max and writes bench/results/wake_latency.json. On KWOK a pod is Ready as soon
as it is scheduled: the figures are the operator's share of a cold start (seeing the signal,
scaling, scheduling), not image pulls or weight loading, which `coldStart` shows on a real
cluster. The namespace and the operator are removed at the end.

    KUBECONFIG=.cluster/kubeconfig ~/.cache/llmops-operator/venv/bin/python \\
        bench/wake_latency.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import GPUS, GROUP, PLURAL, REPO, VERSION, ClusterBench, percentile, wait
from llmops_sim.emitter import Emitter

RESULTS = REPO / "bench" / "results" / "wake_latency.json"
NAME = "sleepy"


def model_body(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": NAME},
        "spec": {
            "source": {"uri": "hf://org/tiny-llm"},
            "engine": {"type": "vllm", "args": ["--max-num-seqs=8"]},
            "resources": {"gpus": 1, "gpuProducts": GPUS},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 2,
                "metric": "queueDepth",
                "target": 4,
                "scaleToZeroAfter": f"{args.idle:.0f}s",
                "minReplicasWhenActive": 1,
            },
        },
    }


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Bench(ClusterBench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("wake")
        self.args = args
        self.emitter = Emitter()

    def status(self) -> dict[str, Any]:
        model = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, NAME)
        return dict(model.get("status") or {})

    def deployment(self, revision: str) -> Any:
        return self.apps.read_namespaced_deployment(f"{NAME}-{revision}", self.namespace)

    def one_run(self, index: int, revision: str) -> dict[str, Any]:
        pool = f"{NAME}-{revision}"

        def parked() -> bool:
            """At zero with no pod left Ready (a terminating pod can still count as Ready)."""
            at_zero = (self.status().get("autoscaler") or {}).get("reason") == "AtZero"
            deployment = self.deployment(revision)
            return (
                at_zero
                and int(deployment.spec.replicas or 0) == 0
                and not int(deployment.status.ready_replicas or 0)
            )

        wait(parked, 120, "the Model at zero")
        signal_wall, signal = datetime.now(UTC), time.monotonic()
        self.emitter.set_pending(self.namespace, pool, 3)
        wait(lambda: int(self.deployment(revision).status.ready_replicas or 0) >= 1, 120, "a Ready pod")
        latency = time.monotonic() - signal

        def this_wake() -> dict[str, Any] | None:
            cold = (self.status().get("autoscaler") or {}).get("coldStart") or {}
            fresh = cold.get("signalAt") and parse(cold["signalAt"]) >= signal_wall - timedelta(seconds=1)
            return cold if fresh and cold.get("readyAt") else None

        cold = wait(this_wake, 30, "coldStart.readyAt of this wake")
        seen = (parse(cold["signalAt"]) - signal_wall).total_seconds()
        self.emitter.set_pending(self.namespace, pool, 0)
        run = {
            "run": index,
            "signal_to_ready_s": round(latency, 2),
            "operator_saw_after_s": round(seen, 2),
            "cold_start": cold,
        }
        print(
            f"  run {index}: Ready {latency:.1f}s after the signal (operator saw it after {seen:.1f}s)",
            flush=True,
        )
        return run

    def run(self) -> dict[str, Any]:
        args = self.args
        with self.operator_in_namespace(), self.scraped(self.emitter):
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, model_body(args)
            )
            revision = wait(lambda: self.status().get("stableRevision"), 120, "a stable revision")
            print(f"wake latency: {args.runs} runs, scaleToZeroAfter {args.idle:.0f}s", flush=True)
            runs = [self.one_run(i, revision) for i in range(args.runs)]
        latencies = [r["signal_to_ready_s"] for r in runs]
        seen = [r["operator_saw_after_s"] for r in runs]
        return {
            "runs": len(runs),
            "scale_to_zero_after_s": args.idle,
            "signal_to_ready_p50_s": percentile(latencies, 50),
            "signal_to_ready_p95_s": percentile(latencies, 95),
            "signal_to_ready_max_s": max(latencies),
            "operator_saw_p50_s": percentile(seen, 50),
            "operator_saw_p95_s": percentile(seen, 95),
            "details": runs,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle", type=float, default=5.0, help="scaleToZeroAfter, seconds")
    args = parser.parse_args()
    summary = Bench(args).run()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, default=str))
    print(
        f"signal-to-Ready p50 {summary['signal_to_ready_p50_s']:.1f}s, "
        f"p95 {summary['signal_to_ready_p95_s']:.1f}s, "
        f"max {summary['signal_to_ready_max_s']:.1f}s; operator saw the signal after p50 "
        f"{summary['operator_saw_p50_s']:.1f}s, p95 {summary['operator_saw_p95_s']:.1f}s "
        f"(autoscaling interval 15s); results in {RESULTS}"
    )


if __name__ == "__main__":
    main()
